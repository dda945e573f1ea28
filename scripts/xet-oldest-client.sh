#!/usr/bin/env bash
# The Xet tests (tests/xet) once more, against the oldest hf_xet that huggingface_hub 2.x
# accepts (pinned in tests/xet/oldest-client.txt), in a venv of their own: the client moves fast
# and both ends of the range it may be must work. Idempotent; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-xet-oldest
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -e '.[xet-tests]' -r tests/xet/oldest-client.txt
pinned=$(grep -v '^#' tests/xet/oldest-client.txt | sed 's/.*==//')
installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("hf_xet"))')
if [ "$installed" != "$pinned" ]; then
    echo "xet-oldest-client: hf_xet $installed installed, $pinned pinned" >&2
    exit 1
fi
echo "Xet tests with hf_xet $installed (the oldest huggingface_hub accepts)"
# The data-dir tools copy xorbs as opaque bytes: one client version is enough for them.
"$venv/bin/python" -m pytest tests/xet --ignore tests/xet/test_data_dir_tools.py "$@"
