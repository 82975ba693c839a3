"""DESIGN.md: apps depend one way, accounts ← billing ← {refunds, support, marketplace}."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BELOW = {
    "accounts": {"billing", "refunds", "support", "marketplace"},
    "billing": {"refunds", "support", "marketplace"},
}


@pytest.mark.parametrize("app", sorted(BELOW))
def test_an_app_never_imports_the_apps_built_on_it(app):
    for path in (ROOT / app).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                assert name.split(".")[0] not in BELOW[app], f"{path}: imports {name}"
