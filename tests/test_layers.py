"""The architecture, checked: who may import click, flask and alembic."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "migplan"

ALLOWED = {
    "click": {"cli"},
    "flask": {"appload"},
    "flask_sqlalchemy": {"appload"},
    "alembic": {"revisions", "database", "executor", "dbcommands", "drift"},
}
PURE = {"planner", "policy", "render", "lint"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def modules() -> dict[str, set[str]]:
    return {p.stem: imports(p) for p in PACKAGE.glob("*.py")}


def test_only_the_allowed_modules_import_click_flask_and_alembic():
    offenders = sorted(
        (name, lib)
        for name, found in modules().items()
        for lib, allowed in ALLOWED.items()
        if lib in found and name not in allowed
    )
    assert offenders == []


def test_pure_modules_do_no_io():
    io_modules = {"os", "subprocess", "socket", "sqlalchemy", "alembic", "click", "flask"}
    offenders = sorted(
        (name, lib) for name, found in modules().items() if name in PURE for lib in found & io_modules
    )
    assert offenders == []


def test_help_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from migplan.cli import cli\n"
        "CliRunner().invoke(cli, ['--help'])\n"
        "CliRunner().invoke(cli, ['plan', '--help'])\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'alembic', 'flask', 'yaml', 'jsonschema') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
