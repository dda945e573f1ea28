"""A fake upstream hub that behaves like huggingface.co on the wire, and counts what it serves.

- `repos.py`: the in-memory repos (commits, branches, tags, files, LFS pointers).
- `hub.py`: the hub origin (API, `/resolve/` with 307 and off-origin 302, errors).
- `cdn.py`: the CDN origin (signed expiring URLs, ranges, per-connection rate cap).
- `server.py`: runs both with real uvicorn servers in a background thread.
"""

from tests.fake_upstream.repos import FakeHub, GeneratedFile, RequestRecord
from tests.fake_upstream.server import FakeHubServer

__all__ = ["FakeHub", "FakeHubServer", "GeneratedFile", "RequestRecord"]
