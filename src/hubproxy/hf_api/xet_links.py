"""Where hosted files uploaded through Xet say so (hf-protocol.md §3.1): `X-Xet-Hash` and a
`Link rel="xet-auth"` to the read-token route on `/resolve`, `xetHash` in tree and paths-info
entries. hf_xet clients then download them with parallel range requests from the CAS; clients
without Xet get the same bytes over plain HTTP. Hosted files that arrived another way never do.

Cached (proxied) LFS files are offered over Xet as `xet_downloads` says (upstream's own Xet
signals are stripped in `cache/upstream.py`): their `X-Xet-Hash` is their sha256, and the CAS
describes them as synthetic xorbs over the chunk store (`cas/synthetic.py`). Only `/resolve`
says so, never a listing: the CAS finds a cached file by the lookup `/resolve` recorded.
"""

from typing import Any

from hubproxy.constants import HEADER_XET_HASH, PLURAL_BY_REPO_TYPE, XET_JSON_KEY, XET_LINK_RELATION
from hubproxy.hf_api.call import Call
from hubproxy.settings import Settings
from hubproxy.stores import FileEntry


def offers_cached_file(settings: Settings, size: int) -> bool:
    """Whether a cached LFS file of `size` bytes is offered over Xet."""
    if settings.xet_downloads == "all":
        return True
    return settings.xet_downloads == "hosted" and size > settings.xet_download_threshold


async def xet_headers(call: Call, entry: FileEntry) -> dict[str, str]:
    """The Xet headers of a `/resolve` answer for `entry` (none for most files)."""
    if entry.sha256 is None or call.settings.xet_downloads == "off":
        return {}
    if call.hosted:
        file = await call.services.xet.repo_file(entry.ref, entry.sha256)
        if file is None:
            return {}
        xet_hash = file.hash
    elif offers_cached_file(call.settings, entry.size):
        xet_hash = entry.sha256
    else:
        return {}
    plural = PLURAL_BY_REPO_TYPE[entry.ref.repo_type]
    url = f"{call.base_url}/api/{plural}/{entry.ref.repo_id}/xet-read-token/{entry.commit}"
    return {HEADER_XET_HASH: xet_hash, "Link": f'<{url}>; rel="{XET_LINK_RELATION}"'}


async def add_xet_hashes(call: Call, items: list[Any]) -> None:
    """Give the LFS file entries of a hosted listing their `xetHash`, where there is one."""
    if not call.hosted or call.settings.xet_downloads == "off":
        return
    ref, store = call.repo, call.services.xet
    for item in items:
        lfs = item.get("lfs") if isinstance(item, dict) else None
        if lfs is None:
            continue
        file = await store.repo_file(ref, lfs["oid"])
        if file is not None:
            item[XET_JSON_KEY] = file.hash
