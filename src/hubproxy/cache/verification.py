"""Verification: a complete blob is hashed and kept only if the content matches its name.

When its last chunk lands (and at start, for blobs a crash left unverified) the whole blob is
re-read from storage and hashed; a mismatch deletes it (logged and counted), so the next read
fetches it again. With S3 redirect mode on, a verified blob is also composed server-side into
one whole object that clients can be redirected to.

When other processes share the metadata store (`shared`), two of them may see the same blob
complete (each filled some of its chunks); one hashes it, holding the lease
`verify:<blob>`, and the others wait for its verdict in the store: verified, or deleted.
"""

import asyncio
import logging

from hubproxy.cache.blob_states import BlobState, BlobStates
from hubproxy.cache.layout import chunk_key, whole_key
from hubproxy.cache.leases import Leases
from hubproxy.cache.storage import StorageError
from hubproxy.metrics import VERIFICATION_FAILURES

logger = logging.getLogger(__name__)

# How often a process waiting for another one's verification looks at the store.
VERIFICATION_WAIT_SECONDS = 0.1


class Verifier:
    """Hashes complete blobs of `states`; composes whole objects when `redirect_ttl` is set."""

    def __init__(self, states: BlobStates, redirect_ttl: int | None) -> None:
        self.states = states
        # Seconds presigned redirect URLs live; None: never redirect (stream everything).
        self.redirect_ttl = redirect_ttl
        # Set by `shared`: other processes may verify the same blobs.
        self._leases: Leases | None = None

    def shared(self, leases: Leases) -> None:
        """Verify each blob in one process of those sharing the metadata store."""
        self._leases = leases

    def schedule(self, state: BlobState) -> None:
        """Verify the blob in the background (once, however often it is asked)."""
        if state.verifying is None or state.verifying.done():
            state.verifying = self.states.spawn(self.verify(state))

    async def verify(self, state: BlobState) -> None:
        """Hash the whole blob; delete it if the content does not match its name (or, when
        another process is hashing it, wait for that process's verdict)."""
        if self._leases is None:
            await self._hash(state)
            return
        leases, name, blob = self._leases, f"verify:{state.blob}", str(state.blob)
        while True:
            lease = await leases.acquire(name)
            if lease is not None:
                try:
                    if await self.states.metadata.is_verified(blob):
                        state.verified = True  # another process verified it meanwhile
                    else:
                        async with leases.renewed(lease):
                            await self._hash(state)
                finally:
                    await leases.release(lease)
                return
            # Another process is hashing it (across processes there is no event to wait on).
            while True:
                await asyncio.sleep(VERIFICATION_WAIT_SECONDS)
                if not await leases.held_elsewhere(name):
                    break
            if await self.states.metadata.is_verified(blob):
                state.verified = True
                return
            if await self.states.metadata.get_blob(blob) is None:
                # The other process found it corrupt and deleted it: the next read loads
                # (and fetches) it again.
                self.states.drop(state.blob)
                return
            # The other process stopped without a verdict (it died, or could not read the
            # blob): hash it here.

    async def _hash(self, state: BlobState) -> None:
        hasher = state.blob.hasher(state.size)
        try:
            for index in range(state.chunks):
                async for piece in self.states.storage.read(chunk_key(state.blob, index)):
                    await asyncio.to_thread(hasher.update, piece)
        except StorageError as error:
            logger.warning("verification of %s could not read it: %s", state.blob, error)
            return
        if hasher.hexdigest() == state.blob.digest:
            await self.accept(state)
            return
        logger.error("content of %s does not match its hash: deleted, will refetch", state.blob)
        VERIFICATION_FAILURES.inc()
        await self.states.remove(state)

    async def accept(self, state: BlobState) -> None:
        """Record the complete blob as verified: its stored bytes hashed to its name (here, or
        while a whole read streamed them)."""
        state.verified = True
        await self.states.metadata.mark_verified(str(state.blob))
        if self.redirect_ttl is not None:
            await self._compose_whole(state)

    def compose_later(self, state: BlobState) -> None:
        """Compose the whole object of a blob verified before redirect mode was on."""
        if state.composing is None or state.composing.done():
            state.composing = self.states.spawn(self._compose_whole(state))

    async def _compose_whole(self, state: BlobState) -> None:
        """Build the whole-content object clients are redirected to (server-side copy)."""
        parts = [chunk_key(state.blob, index) for index in range(state.chunks)]
        try:
            info = await self.states.storage.compose(whole_key(state.blob), parts)
        except StorageError as error:
            logger.warning("could not compose %s for redirects: %s", state.blob, error)
            return
        if info is None or info.size != state.size:
            return
        state.whole = True
        await self.states.metadata.mark_whole(str(state.blob))
