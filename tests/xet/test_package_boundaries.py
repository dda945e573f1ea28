"""`hubproxy.xet` is a leaf: formats only, nothing of hubproxy but `errors` (and itself)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "hubproxy" / "xet"


def test_the_formats_package_imports_only_errors() -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("hubproxy"):
                    assert name == "hubproxy.errors" or name.startswith("hubproxy.xet"), (
                        f"{path.name} imports {name}"
                    )
                assert name.split(".")[0] not in ("starlette", "uvicorn"), path.name
