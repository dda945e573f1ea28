"""Governance: who is asking (authn), what they may do (roles, authz) and what they did (audit).

Nothing here imports starlette or the cache: `hf_api/` derives the (namespace, repo, action) of
a request from its route and asks `authz.authorize`; the admin CLI uses the same account
functions directly on the data dir.
"""
