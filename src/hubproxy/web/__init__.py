"""The web UI: server-rendered pages at huggingface.co's URLs (`/`, `/{repo}`, `/{repo}/tree/...`,
`/admin/...`), authorized and audited by the same dispatcher and `auth/` as the API.

- `routing.py` matches page URLs (only those the API does not claim: `dispatch.FrontDoor`);
- `sessions.py` turns a signed cookie back into a principal, and checks CSRF tokens;
- `pages.py`, `repo_pages.py`, `admin_pages.py` are the handlers, `table.py` their endpoint table;
- `render.py` holds the Jinja2 environment and the sanitized Markdown renderer;
- `templates/` and `static/` ship in the package: no external assets, it works air-gapped.
"""
