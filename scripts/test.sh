#!/usr/bin/env bash
# Set up (idempotently) and run every check: lint, format, types, then the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k resolve -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
bash scripts/install-helm.sh
# The web UI's browser tests drive Debian's Chromium (never `playwright install`, which downloads).
if [ ! -x /usr/bin/chromium ]; then
    apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }
fi
# The PostgreSQL tests start a server of their own from Debian's binaries.
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
# pytest exits non-zero (5) when it collects no test: an empty run never passes.
.venv/bin/python -m pytest "$@"
if [ "$#" -eq 0 ]; then
    # The whole proxy suite once more as replicas run it: every chunk on S3 (a moto server),
    # every data dir's metadata in PostgreSQL (a schema of its own on the session's server).
    .venv/bin/python -m pytest tests/proxy --proxy-storage s3 --database postgresql
    # The Xet tests once more with the oldest hf_xet huggingface_hub accepts (an overlay on .venv).
    bash scripts/xet-oldest-client.sh
fi
