"""The one place `HubError`s become HTTP responses, and unknown errors become a bare 500."""

import json
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hubproxy.constants import HEADER_ERROR_CODE, HEADER_ERROR_MESSAGE
from hubproxy.errors import BadRequest, HubError, MethodNotAllowed, NotFound
from hubproxy.hf_api.middleware import request_facts

logger = logging.getLogger(__name__)


def _header_safe(text: str) -> str:
    """Header values must be one latin-1 line."""
    return " ".join(text.split()).encode("latin-1", "replace").decode("latin-1")[:1024]


def request_id(request: Request) -> str:
    return request_facts(request.scope).request_id


def error_response(error: HubError, request_id_value: str) -> Response:
    headers = {HEADER_ERROR_MESSAGE: _header_safe(error.message), **error.headers}
    if error.code is not None:
        headers[HEADER_ERROR_CODE] = error.code
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="hubproxy"')
    body: dict[str, str] = {**error.details, "error": error.message}
    if error.status >= 500 and request_id_value:
        body["request_id"] = request_id_value
    return Response(
        json.dumps(body), status_code=error.status, headers=headers, media_type="application/json"
    )


async def handle_hub_error(request: Request, exception: Exception) -> Response:
    assert isinstance(exception, HubError)
    if exception.status >= 500:
        logger.warning(
            "%s %s -> %d %s (request %s)",
            request.method,
            request.url.path,
            exception.status,
            exception.message,
            request_id(request),
        )
    return error_response(exception, request_id(request))


async def handle_http_exception(request: Request, exception: Exception) -> Response:
    """Starlette's own 404/405 (health routes), given the same error shape as everything else."""
    assert isinstance(exception, HTTPException)
    kinds: dict[int, type[HubError]] = {404: NotFound, 405: MethodNotAllowed}
    kind = kinds.get(exception.status_code, BadRequest if exception.status_code < 500 else HubError)
    error = kind(exception.detail, headers=dict(exception.headers or {}))
    return error_response(error, request_id(request))


async def handle_unexpected_error(request: Request, exception: Exception) -> Response:
    logger.error(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.url.path,
        request_id(request),
        exc_info=exception,
    )
    return error_response(HubError(), request_id(request))
