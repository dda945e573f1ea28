"""Protocol facts of the Hugging Face Hub HTTP API.

Immutable values only: header names, repo types, identifier patterns. Nothing here reads the
environment; runtime configuration lives in `settings.py`.
"""

import re
from typing import Final, Literal

RepoType = Literal["model", "dataset", "space"]

REPO_TYPES: Final[tuple[RepoType, ...]] = ("model", "dataset", "space")
# `/api/{plural}/...` in API URLs.
REPO_TYPE_BY_PLURAL: Final[dict[str, RepoType]] = {
    "models": "model",
    "datasets": "dataset",
    "spaces": "space",
}
PLURAL_BY_REPO_TYPE: Final[dict[RepoType, str]] = {v: k for k, v in REPO_TYPE_BY_PLURAL.items()}
# File URLs: models have no prefix, the other types are `/{plural}/...`.
URL_PREFIX_BY_REPO_TYPE: Final[dict[RepoType, str]] = {
    "model": "",
    "dataset": "datasets/",
    "space": "spaces/",
}

DEFAULT_REVISION: Final = "main"

# One segment of a repo id ("namespace" or "name"); `naming.py` adds the rules a regex can't say
# (≤ 96 characters in all, no "--" or "..", no ".git" suffix), as the client validates them.
REPO_SEGMENT_PATTERN: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
REPO_ID_MAX_LENGTH: Final = 96
COMMIT_SHA_PATTERN: Final = re.compile(r"^[0-9a-f]{40}$")
SHA256_PATTERN: Final = re.compile(r"^[0-9a-f]{64}$")
GIT_SHA1_PATTERN: Final = COMMIT_SHA_PATTERN

# Response headers the client reads (hf-protocol.md §2.1).
HEADER_REPO_COMMIT: Final = "X-Repo-Commit"
HEADER_LINKED_ETAG: Final = "X-Linked-Etag"
HEADER_LINKED_SIZE: Final = "X-Linked-Size"
HEADER_ERROR_CODE: Final = "X-Error-Code"
HEADER_ERROR_MESSAGE: Final = "X-Error-Message"
HEADER_REQUEST_ID: Final = "X-Request-Id"
# Xet signals: stripped from everything relayed from upstream (hf-protocol.md §3.3).
HEADER_XET_HASH: Final = "X-Xet-Hash"
HEADER_XET_REFRESH_ROUTE: Final = "X-Xet-Refresh-Route"
XET_JSON_KEY: Final = "xetHash"
XET_LINK_RELATION: Final = "xet-auth"

# hubproxy's own response headers.
HEADER_CACHE_STATUS: Final = "X-Hubproxy-Cache"  # hit | miss | partial
HEADER_STALE: Final = "X-Hubproxy-Stale"  # "true" when a branch/tag was served from a stale mapping

MEBIBYTE: Final = 1024 * 1024
DEFAULT_CHUNK_SIZE: Final = 16 * MEBIBYTE
# The hub caps tree pages at 1000 entries (50 with expand=true).
TREE_PAGE_SIZE: Final = 1000
# The properties repo info may be asked to `expand` (huggingface_hub's `Expand*Property_T`,
# models, datasets and spaces together). Others are not forwarded: each distinct query is an
# upstream request and a stored document, so what a client may vary stays bounded.
EXPAND_PROPERTIES: Final = frozenset(
    {
        "author", "baseModels", "cardData", "childrenModelCount", "citation", "config",
        "createdAt", "datasets", "description", "disabled", "downloads", "downloadsAllTime",
        "evalResults", "gated", "gguf", "inference", "inferenceProviderMapping", "lastModified",
        "library_name", "likes", "mainSize", "mask_token", "model-index", "models",
        "paperswithcode_id", "pipeline_tag", "private", "region", "resourceGroup", "runtime",
        "safetensors", "sdk", "sha", "siblings", "spaces", "subdomain", "tags",
        "transformersInfo", "trendingScore", "usedStorage", "widgetData", "xetEnabled",
    }
)  # fmt: skip
TREE_PAGE_SIZE_EXPANDED: Final = 50
