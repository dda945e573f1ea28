"""The Xet CAS: verified xorbs in chunk storage, their index and the files registered from
shards in the metadata database, and reconstruction of any byte range of a file.

- `segments`: which chunks of which xorbs make a byte range of a file (pure);
- `index`: the SQLite tables of step 9 (`db/schema.py`);
- `store`: `XetStore`, receiving xorbs and shards (spooled, verified, then stored) and
  streaming file content back;
- `tokens`: the signed access tokens and xorb-range URLs the CAS routes accept.

Nothing here speaks HTTP (`hf_api.cas` does) or decides who may do what (`auth.authz` does).
"""
