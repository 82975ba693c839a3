"""DESIGN.md: apps depend one way, core ← accounts ← {billing, inbox} ← {refunds, support,
marketplace}; the three above billing do not import each other, and use only billing's
public modules; no module imports another module's private (underscore) names.

The import contracts live in pyproject.toml ([tool.importlinter]) and CI runs them with
`lint-imports`; the suite runs them too, and checks that each check can fail.
"""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = (
    "core",
    "accounts",
    "billing",
    "inbox",
    "refunds",
    "support",
    "marketplace",
    "console",
    "config",
)
SCANNED = (*PROJECT, "tests", "bench")
# Django's model options are underscore names by Django's design, not private.
ALLOWED = {"_meta"}


def _lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(script), "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_import_contracts_are_kept():
    result = _lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_the_layers_contract_fails_on_an_upward_import(tmp_path):
    """The contract is not vacuous: billing importing refunds breaks it."""
    for package in (
        "core",
        "accounts",
        "billing",
        "inbox",
        "refunds",
        "support",
        "marketplace",
        "console",
    ):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "billing" / "services.py").write_text("import refunds\n")
    (tmp_path / "support" / "views.py").write_text("from refunds import models\n")
    (tmp_path / "refunds" / "models.py").write_text("")
    # The one mail intake knows no mailbox: inbox importing support breaks the layers.
    (tmp_path / "inbox" / "services.py").write_text("from support import mail\n")
    (tmp_path / "support" / "mail.py").write_text("from inbox import parse\n")
    (tmp_path / "inbox" / "parse.py").write_text("")
    config = (ROOT / "pyproject.toml").read_text()
    (tmp_path / ".importlinter.toml").write_text(config[config.index("[tool.importlinter]") :])
    result = _lint_imports(".importlinter.toml", "--contract", "layers", cwd=tmp_path)
    assert result.returncode == 1
    assert "billing.services -> refunds" in result.stdout
    assert "support.views -> refunds" in result.stdout
    assert "inbox.services -> support.mail" in result.stdout


def private_imports(source: str) -> list[str]:
    """Private names a module takes from another module: `from x import _y`, or
    `x._y` on a project module it imported."""
    found, modules = [], set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] not in PROJECT:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(
                        f"line {node.lineno}: from {node.module or '.'} import {alias.name}"
                    )
                else:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PROJECT:
                    modules.add((alias.asname or alias.name).split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in ALLOWED
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return sorted(found, key=lambda text: int(text.split(":")[0].split()[1]))


def _python_files():
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


@pytest.mark.parametrize("path", list(_python_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_uses_another_modules_private_names(path):
    assert private_imports(path.read_text()) == []


def test_the_private_name_check_finds_each_form():
    source = textwrap.dedent(
        """
        from billing.services import _lock, ledger_credit
        from .services import _place_order
        from . import services
        from billing import selectors as sel
        from django.db.models import _private_of_django  # not ours: allowed
        services._append(1)
        sel._cache
        services.Order._meta
        """
    )
    assert private_imports(source) == [
        "line 2: from billing.services import _lock",
        "line 3: from services import _place_order",
        "line 7: services._append",
        "line 8: sel._cache",
    ]
