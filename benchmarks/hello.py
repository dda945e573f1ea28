"""The baseline of the metadata benchmark: a hello-world starlette endpoint, served by uvicorn
with the same HTTP implementation as `hubproxy serve`.

    python -m benchmarks.hello PORT
"""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


app = Starlette(routes=[Route("/{path:path}", hello, methods=["GET", "HEAD"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", http="httptools")
