"""Where hosted files uploaded through Xet say so (hf-protocol.md §3.1): `X-Xet-Hash` and a
`Link rel="xet-auth"` to the read-token route on `/resolve`, `xetHash` in tree and paths-info
entries. hf_xet clients then download them with parallel range requests from the CAS; clients
without Xet get the same bytes over plain HTTP. Proxied repos never advertise Xet (upstream's
signals are stripped in `cache/upstream.py`), nor do hosted files that arrived another way.
"""

from typing import Any

from hubproxy.constants import HEADER_XET_HASH, PLURAL_BY_REPO_TYPE, XET_JSON_KEY, XET_LINK_RELATION
from hubproxy.hf_api.call import Call
from hubproxy.stores import FileEntry


def _hosted(call: Call) -> bool:
    return call.store is call.services.hosted


async def xet_headers(call: Call, entry: FileEntry) -> dict[str, str]:
    """The Xet headers of a `/resolve` answer for `entry` (none for most files)."""
    if entry.sha256 is None or not _hosted(call):
        return {}
    file = await call.services.xet.repo_file(entry.ref, entry.sha256)
    if file is None:
        return {}
    plural = PLURAL_BY_REPO_TYPE[entry.ref.repo_type]
    url = f"{call.base_url}/api/{plural}/{entry.ref.repo_id}/xet-read-token/{entry.commit}"
    return {HEADER_XET_HASH: file.hash, "Link": f'<{url}>; rel="{XET_LINK_RELATION}"'}


async def add_xet_hashes(call: Call, items: list[Any]) -> None:
    """Give the LFS file entries of a hosted listing their `xetHash`, where there is one."""
    if not _hosted(call):
        return
    ref, store = call.repo, call.services.xet
    for item in items:
        lfs = item.get("lfs") if isinstance(item, dict) else None
        if lfs is None:
            continue
        file = await store.repo_file(ref, lfs["oid"])
        if file is not None:
            item[XET_JSON_KEY] = file.hash
