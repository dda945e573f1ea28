"""The card (README.md) metadata of a repo at a revision, read through its store: the same
for hosted repos and proxied (cached) ones. Used by the registry view, lineage and listings."""

from typing import Any

from hubproxy.cache.storage.base import FileSegment
from hubproxy.errors import EntryNotFound, RevisionNotFound, StorageUnavailable
from hubproxy.hub.cards import MAX_CARD_BYTES, card_metadata, registry_card
from hubproxy.naming import RepoRef
from hubproxy.stores import RepoStore

CARD_PATH = "README.md"


async def metadata_at(store: RepoStore, ref: RepoRef, revision: str) -> dict[str, Any] | None:
    """The card metadata mapping at `revision` ({} for a card without any); None when the
    revision has no card."""
    try:
        entry = await store.file_entry(ref, revision, CARD_PATH)
    except (EntryNotFound, RevisionNotFound):
        return None
    if entry.size > MAX_CARD_BYTES:
        return {}
    content = bytearray()
    async for piece in store.read(entry, 0, entry.size):
        if isinstance(piece, FileSegment):  # not asked for (files=False), but closed if given
            piece.close()
            raise StorageUnavailable("The card came as an open file")
        content += piece
    return card_metadata(content.decode("utf-8", errors="replace"))


async def card_at(store: RepoStore, ref: RepoRef, revision: str) -> dict[str, Any] | None:
    """What the registry shows of the card at `revision` (`cards.registry_card`), or None."""
    metadata = await metadata_at(store, ref, revision)
    return None if metadata is None else registry_card(metadata)
