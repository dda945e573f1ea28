"""Signed upload links: what lets an LFS object's bytes be PUT without a token.

huggingface_hub sends the bytes to the `href` of the LFS batch answer with no Authorization
header, so the link authorizes itself: it names the object (sha256, size), its expiry, the
uploader and the id of the token that asked for it, and carries a signature (`signing.Signer`)
over all of them and over the repo's incarnation (its creation time), so that a repo deleted
and created again refuses the links of the old one. This module builds and checks that
signature; whether the token that minted a link may still write is decided when it is used,
by `auth.authz.authorize_upload_link`.
"""

import time
from dataclasses import dataclass

from hubproxy.errors import Forbidden
from hubproxy.hub.repos import HubRepos
from hubproxy.naming import RepoRef
from hubproxy.signing import Signer

UPLOAD_LINK_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class UploadLink:
    """What an upload link's query says (the object's sha256 is in its path)."""

    sha256: str
    size: int
    expires: int
    actor: str  # `kind:name` of the uploader, recorded as such
    token_id: str  # the token re-authorized when the link is used
    signature: str

    def query(self) -> dict[str, str]:
        """The link's query parameters."""
        return {
            "size": str(self.size),
            "expires": str(self.expires),
            "by": self.actor,
            "token": self.token_id,
            "signature": self.signature,
        }


class UploadLinks:
    """Mints and checks the upload links of hosted repos."""

    def __init__(self, repos: HubRepos, signer: Signer) -> None:
        self.repos = repos
        self.signer = signer

    async def _fields(
        self, ref: RepoRef, sha256: str, size: int, expires: int, actor: str, token_id: str
    ) -> tuple[str, ...]:
        created = (await self.repos.repo(ref)).created
        return (
            ref.repo_type, ref.repo_id, repr(created), sha256, str(size), str(expires), actor,
            token_id,
        )  # fmt: skip

    async def mint(
        self, ref: RepoRef, sha256: str, size: int, actor: str, token_id: str
    ) -> UploadLink:
        """A link valid for `UPLOAD_LINK_SECONDS` to upload the object to `ref`."""
        expires = int(time.time()) + UPLOAD_LINK_SECONDS
        fields = await self._fields(ref, sha256, size, expires, actor, token_id)
        signature = await self.signer.sign(*fields)
        return UploadLink(sha256, size, expires, actor, token_id, signature)

    async def check(self, ref: RepoRef, link: UploadLink) -> None:
        """`Forbidden` unless the link was signed here, for this incarnation of the repo, and
        has not expired (who minted it is checked by `auth.authz.authorize_upload_link`)."""
        fields = await self._fields(
            ref, link.sha256, link.size, link.expires, link.actor, link.token_id
        )
        if not await self.signer.verify(link.signature, *fields):
            raise Forbidden("This upload link is invalid")
        if link.expires < time.time():
            raise Forbidden("This upload link has expired: ask for a new one")
