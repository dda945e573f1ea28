#!/usr/bin/env bash
# What benchmarks/ needs beyond the test extras: nginx, curl, wrk and hey (Debian; hey for HEAD
# requests, which wrk cannot measure), and olah 0.5.4 in its
# own virtualenv (.venv-olah) so that its pins never touch hubproxy's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nginx >/dev/null || ! command -v curl >/dev/null || ! command -v wrk >/dev/null \
    || ! command -v hey >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light curl wrk hey
fi
if [ ! -x .venv-olah/bin/olah-cli ]; then
    python3 -m venv .venv-olah
    .venv-olah/bin/pip install --quiet --disable-pip-version-check olah==0.5.4
fi
