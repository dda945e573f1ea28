#!/usr/bin/env bash
# The Xet tests (tests/xet) once more, against the oldest hf_xet that huggingface_hub 2.x
# accepts (pinned in tests/xet/oldest-client.txt): the client moves fast and both ends of the
# range it may be must work. The pinned hf_xet goes into a directory of its own that comes first
# on PYTHONPATH, over the project's venv (`.venv`, which scripts/test.sh sets up): everything
# else is the same, and nothing is installed twice. Idempotent; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
overlay=.venv-xet-oldest
pinned=$(grep -v '^#' tests/xet/oldest-client.txt | sed 's/.*==//')
if [ ! -f "$overlay/installed-$pinned" ]; then
    rm -rf "$overlay"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$overlay" -r tests/xet/oldest-client.txt
    touch "$overlay/installed-$pinned"
fi
export PYTHONPATH="$PWD/$overlay${PYTHONPATH:+:$PYTHONPATH}"
installed=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("hf_xet"))')
if [ "$installed" != "$pinned" ]; then
    echo "xet-oldest-client: hf_xet $installed found, $pinned pinned" >&2
    exit 1
fi
echo "Xet tests with hf_xet $installed (the oldest huggingface_hub accepts)"
# The data-dir tools copy xorbs as opaque bytes: one client version is enough for them.
.venv/bin/python -m pytest tests/xet --ignore tests/xet/test_data_dir_tools.py "$@"
