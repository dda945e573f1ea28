"""One-way imports (shared/DESIGN.md): hf_api → {cache, auth} → storage; leaves stay leaves."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "hubproxy"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


MODULES = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def test_modules_found() -> None:
    assert "hubproxy.cache.blobs" in MODULES
    assert "hubproxy.hf_api.resolve" in MODULES


@pytest.mark.parametrize("layer", ["hubproxy.cache", "hubproxy.auth", "hubproxy.db"])
def test_core_layers_know_nothing_of_http_serving(layer: str) -> None:
    for module, imported in MODULES.items():
        if module == layer or module.startswith(layer + "."):
            forbidden = {
                name
                for name in imported
                if name.split(".")[0] in ("starlette", "uvicorn")
                or name.startswith(("hubproxy.hf_api", "hubproxy.app", "hubproxy.cli"))
            }
            assert not forbidden, f"{module} imports {forbidden}"


def test_storage_imports_only_storage_and_leaves() -> None:
    allowed = ("hubproxy.cache.storage", "hubproxy.errors", "hubproxy.settings", "hubproxy.metrics")
    for module, imported in MODULES.items():
        # The storage package itself (cache/storage_transfer.py is a tool built on it).
        if module == "hubproxy.cache.storage" or module.startswith("hubproxy.cache.storage."):
            ours = {name for name in imported if name.startswith("hubproxy")}
            assert all(name.startswith(allowed) for name in ours), f"{module} imports {ours}"


@pytest.mark.parametrize(
    ("leaf", "allowed"),
    [
        ("hubproxy.constants", set()),
        ("hubproxy.errors", set()),
        # The package root holds only `__version__`, the build info's fallback.
        ("hubproxy.metrics", {"hubproxy"}),
        ("hubproxy.ids", set()),
        ("hubproxy.datadir", set()),
        ("hubproxy.singleflight", set()),
        ("hubproxy.lru", set()),
        ("hubproxy.blob_ids", {"hubproxy.constants"}),
        ("hubproxy.settings", {"hubproxy.constants"}),
        ("hubproxy.naming", {"hubproxy.constants", "hubproxy.errors"}),
    ],
)
def test_leaves(leaf: str, allowed: set[str]) -> None:
    ours = {name for name in MODULES[leaf] if name.startswith("hubproxy")}
    assert ours <= allowed, f"{leaf} imports {ours - allowed}"


def test_api_layer_never_imports_the_app_or_cli() -> None:
    for module, imported in MODULES.items():
        if module.startswith("hubproxy.hf_api"):
            assert not {
                name for name in imported if name.startswith(("hubproxy.app", "hubproxy.cli"))
            }


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("hubproxy.auth", ("hubproxy.cache", "hubproxy.hub", "hubproxy.stores")),
        ("hubproxy.hub", ("hubproxy.cache", "hubproxy.auth")),
        ("hubproxy.cache", ("hubproxy.auth", "hubproxy.hub")),
    ],
)
def test_governance_cache_and_private_hub_stay_apart(
    layer: str, forbidden: tuple[str, ...]
) -> None:
    for module, imported in MODULES.items():
        if module == layer or module.startswith(layer + "."):
            crossing = {name for name in imported if name.startswith(forbidden)}
            assert not crossing, f"{module} imports {crossing}"


def test_a_server_process_imports_no_dataframe_library() -> None:
    """sqlite_utils would import pandas (and pyarrow) and numpy when they are installed, as
    they are in the test environment: ~80 MB per server process for nothing hubproxy uses.
    Code that wants them later still gets them."""
    import subprocess
    import sys

    script = (
        "import sys, hubproxy.app, hubproxy.cli.main\n"
        "loaded = sorted({'pandas', 'numpy', 'pyarrow'} & set(sys.modules))\n"
        "assert not loaded, loaded\n"
        "import numpy\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


def is_web(module: str) -> bool:
    """`hubproxy.web` and its modules (not `hubproxy.webhooks`)."""
    return module == "hubproxy.web" or module.startswith("hubproxy.web.")


def test_only_the_app_knows_the_web_ui() -> None:
    """Pages sit on top of the API layer: nothing below them imports `hubproxy.web`."""
    for module, imported in MODULES.items():
        if is_web(module) or module == "hubproxy.app":
            continue
        assert not {name for name in imported if is_web(name)}, module
