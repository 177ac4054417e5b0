"""DESIGN §2: who may import whom, and which third-party packages each side may use."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "onemon"

SHARED = {"onemon.__init__", "onemon.settings", "onemon.systemd", "onemon.safexml", "cbor2",
          "cryptography"}  # fmt: skip
"""The package root and its three stdlib-only helpers, and the wire's own dependencies."""

ALLOWED = {
    "wire": {"onemon.wire", "cbor2", "cryptography"},
    "agent": SHARED | {"onemon.wire", "onemon.agent", "psutil", "libvirt"},
    "collector": SHARED | {
        "onemon.wire", "onemon.collector",
        "uvloop", "prometheus_client", "sqlalchemy", "aiohttp", "psycopg", "pymysql",
    },
    "front": SHARED | {
        "onemon.wire", "onemon.front", "onemon.collector.store", "onemon.collector.model",
        "onemon.collector.config", "aiohttp", "sqlalchemy",
    },
}  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from onemon import __version__`` imports the package root, not a side
            found.add("onemon.__init__" if node.module == "onemon" else node.module)
    return found


def allowed(module: str, rules: set[str]) -> bool:
    top = module.split(".", maxsplit=1)[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return True
    return any(module == rule or module.startswith(rule + ".") for rule in rules)


@pytest.mark.parametrize("side", sorted(ALLOWED))
def test_side_imports_only_what_design_allows(side: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT.parent)}: {module}"
        for path in sorted((ROOT / side).rglob("*.py"))
        for module in sorted(imported_modules(path))
        if not allowed(module, ALLOWED[side])
    ]
    assert offenders == []


def test_agent_never_imports_collector_or_front() -> None:
    for path in (ROOT / "agent").rglob("*.py"):
        for module in imported_modules(path):
            assert not module.startswith(("onemon.collector", "onemon.front")), path
