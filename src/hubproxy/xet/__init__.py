"""The Xet formats, as hf_xet 1.8 writes them (`shared/xet.md` §2): hashes, xorbs, shards.

A leaf package: pure functions and parsers over bytes and files, no I/O beyond reading the
file it is handed, nothing of hubproxy but `errors`. The CAS (`hubproxy.cas`) stores what
these parsers accepted; the HTTP side (`hf_api.cas`) speaks the protocol.

- `hashing`: the Xet string form of a hash, chunk hashes, the Merkle root (xorb hash), the
  file hash and the term verification hash, bit-exact with xet-core.
- `xorbs`: a serialized xorb (chunk headers + compressed chunks, no footer) checked chunk by
  chunk, with the index the CAS keeps of it; decompression of one chunk.
- `shards`: an uploaded shard (header, file-info and CAS-info sections, no footer) parsed with
  every count checked against the bytes left before anything is allocated.
"""
