"""The one error hierarchy, and its mapping to the Hub's wire format.

Every error a client can see is a `HubError` subclass carrying the HTTP status, the
`X-Error-Code` that huggingface_hub keys its exception classes on (hf-protocol.md §1.6) and a
default message. `hf_api/errors.py` turns them into responses in one place; `cache/upstream.py`
is the one place that turns upstream responses back into them. Nothing else builds error
responses.
"""

from typing import ClassVar


class HubError(Exception):
    """Base class: HTTP `status`, `X-Error-Code` (`code`, None for none) and a readable message."""

    status: ClassVar[int] = 500
    code: ClassVar[str | None] = None
    default_message: ClassVar[str] = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, str] | None = None,
    ):
        self.message = message or self.default_message
        # Extra response headers, e.g. X-Repo-Commit on EntryNotFound or Retry-After on 429.
        self.headers = dict(headers or {})
        # Extra fields of the JSON body, e.g. the `url` of the repo a 409 says exists.
        self.details = dict(details or {})
        super().__init__(self.message)


class BadRequest(HubError):
    """400 `BadRequest`: malformed repo id, path, revision, range or body."""

    status = 400
    code = "BadRequest"
    default_message = "Bad request"


class Unauthorized(HubError):
    """401 `Unauthorized`: no usable credentials (sent with a `WWW-Authenticate` challenge)."""

    status = 401
    code = "Unauthorized"
    default_message = "Authentication required"


class AuthenticationRequired(Unauthorized):
    """401 `Unauthorized`: this hubproxy (or this action) needs a token."""

    default_message = "Authentication required: set HF_TOKEN to a hubproxy token"


class InvalidCredentials(HubError):
    """401 with no code and the exact message the client recognises as a bad token."""

    status = 401
    code = None
    default_message = "Invalid credentials in Authorization header"


class Forbidden(HubError):
    """403 `Forbidden`: authenticated, but the role does not allow the action."""

    status = 403
    code = "Forbidden"
    default_message = "You don't have the rights to perform this action"


class RefProtected(Forbidden):
    """403 `RefProtected`: a protection rule (or an alias, which moves only by promotion)
    forbids this change of a branch or tag (`auth.protections`)."""

    code = "RefProtected"
    default_message = "This ref is protected"


class RepoNotFound(HubError):
    """404 `RepoNotFound`: missing, or not visible to the caller (same answer on purpose)."""

    status = 404
    code = "RepoNotFound"
    default_message = "Repository not found"


class RepoNotFoundUnauthenticated(RepoNotFound):
    """401 `RepoNotFound`: what an anonymous caller gets for a repo it may not see."""

    status = 401


class RepoMoved(RepoNotFound):
    """Upstream answered for another repo than the one asked (a rename's redirect, or repo
    info naming another id). The dispatcher authorizes the new id and asks again; should it
    ever reach a client it is a plain 404 `RepoNotFound`."""

    def __init__(self, repo_type: str, repo_id: str) -> None:
        super().__init__()
        self.repo_type = repo_type
        self.repo_id = repo_id


class RevisionNotFound(HubError):
    """404 `RevisionNotFound`: unknown branch, tag or commit."""

    status = 404
    code = "RevisionNotFound"
    default_message = "Revision not found"


class EntryNotFound(HubError):
    """404 `EntryNotFound`: the path is not in the tree (sent with `X-Repo-Commit`)."""

    status = 404
    code = "EntryNotFound"
    default_message = "Entry not found"


class GatedRepo(HubError):
    """403 `GatedRepo` (401 when anonymous): access to the repo must be requested upstream."""

    status = 403
    code = "GatedRepo"
    default_message = "Access to this repository is restricted"


class GatedRepoUnauthenticated(GatedRepo):
    """401 `GatedRepo`: a gated repo asked for without a token."""

    status = 401


class DisabledRepo(HubError):
    """403 with the exact message huggingface_hub maps to DisabledRepoError."""

    status = 403
    code = "DisabledRepo"
    default_message = "Access to this resource is disabled."


class MethodNotAllowed(HubError):
    """405 `MethodNotAllowed`."""

    status = 405
    code = "MethodNotAllowed"
    default_message = "Method not allowed"


class NotFound(HubError):
    """404 `NotFound`: no such endpoint."""

    status = 404
    code = "NotFound"
    default_message = "Not found"


class Conflict(HubError):
    """409 `Conflict`: the thing to create already exists."""

    status = 409
    code = "Conflict"
    default_message = "Already exists"


class PreconditionFailed(HubError):
    """412: the branch is no longer at the parent commit the client built on."""

    status = 412
    code = "PreconditionFailed"


class PayloadTooLarge(HubError):
    """413 `PayloadTooLarge`: the request body is larger than the endpoint accepts (refused by
    its Content-Length before a byte is read, or as soon as a chunked body passes the cap)."""

    status = 413
    code = "PayloadTooLarge"
    default_message = "Request body too large"


class UploadRejected(HubError):
    """422: uploaded content does not match what it claims to be, or was never uploaded."""

    status = 422
    code = "UploadRejected"


class UploadTooLarge(HubError):
    """413 `UploadTooLarge`: an uploaded object above the configured `max_upload_bytes`."""

    status = 413
    code = "UploadTooLarge"
    default_message = "Upload larger than this hub accepts"


class NotImplementedYet(HubError):
    """501 `NotImplemented`: an endpoint this version of hubproxy does not serve yet."""

    status = 501
    code = "NotImplemented"
    default_message = "Not implemented in this version of hubproxy"


class RangeNotSatisfiable(HubError):
    """416 `RangeNotSatisfiable` (sent with `Content-Range: bytes */size`)."""

    status = 416
    code = "RangeNotSatisfiable"
    default_message = "Requested range not satisfiable"


class RateLimited(HubError):
    """429 `RateLimited` (sent with `Retry-After`)."""

    status = 429
    code = "RateLimited"
    default_message = "Too many requests"


class UpstreamUnavailable(HubError):
    """502 `UpstreamUnavailable`: upstream is down or failing and nothing usable is cached."""

    status = 502
    code = "UpstreamUnavailable"
    default_message = "The upstream hub is unavailable and the content is not cached"


class UpstreamTimeout(UpstreamUnavailable):
    """504 `UpstreamTimeout`: upstream did not answer in time and nothing usable is cached."""

    status = 504
    code = "UpstreamTimeout"
    default_message = "The upstream hub did not answer in time and the content is not cached"


class OfflineMiss(HubError):
    """504 `OfflineMiss`: offline mode, and the content is not cached."""

    status = 504
    code = "OfflineMiss"
    default_message = "hubproxy is offline and the content is not cached"


class StorageUnavailable(HubError):
    """503 `StorageUnavailable`: the storage backend failed (details are logged, not sent)."""

    status = 503
    code = "StorageUnavailable"
    default_message = "Storage is unavailable"


class DatabaseUnavailable(HubError):
    """503 `DatabaseUnavailable`: the metadata database (PostgreSQL) cannot be reached."""

    status = 503
    code = "DatabaseUnavailable"
    default_message = "The metadata database is unavailable; retry"


class InsufficientStorage(HubError):
    """507 `InsufficientStorage`: the storage backend is full."""

    status = 507
    code = "InsufficientStorage"
    default_message = "Storage is full"


class IntegrityError(HubError):
    """502 `IntegrityError`: upstream bytes did not match their announced size or hash."""

    status = 502
    code = "IntegrityError"
    default_message = "Upstream content failed verification"


# Xet objects (`hubproxy.xet`).


class InvalidXorb(BadRequest):
    """400 `InvalidXorb`: an uploaded xorb is malformed or does not hash to its name."""

    code = "InvalidXorb"
    default_message = "Invalid xorb"


class InvalidShard(BadRequest):
    """400 `InvalidShard`: an uploaded shard is malformed, or what it says does not check out
    (a missing xorb, a wrong verification hash, a file hash its chunks do not give)."""

    code = "InvalidShard"
    default_message = "Invalid shard"


class InvalidHash(BadRequest):
    """400 `InvalidHash`: a hash in a URL is not 64 lowercase hex digits."""

    code = "InvalidHash"
    default_message = "Invalid Xet hash"


# Refinements the code that raises them acts on.


class DownloadUrlExpired(UpstreamUnavailable):
    """The CDN refused a signed download URL (expired or revoked): fetch fresh metadata."""

    default_message = "The upstream download URL has expired"


class UpstreamTruncated(UpstreamUnavailable):
    """The upstream body ended before the announced length."""

    default_message = "The upstream connection broke mid-transfer"


class TokenRefused(InvalidCredentials):
    """401 with the Hub's invalid-token message; `reason` is for the audit log only."""

    def __init__(self, reason: str, token_id: str | None = None) -> None:
        super().__init__()
        self.reason = reason
        self.token_id = token_id
