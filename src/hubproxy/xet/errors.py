"""What a malformed Xet object is answered with: a 400 naming the object and the fault."""

from hubproxy.errors import BadRequest


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
