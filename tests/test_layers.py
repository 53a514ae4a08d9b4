"""The architecture, checked: who may import click, flask and alembic."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "migplan"

ALLOWED = {
    "click": {"cli"},
    "flask": {"db.appload"},
    "flask_sqlalchemy": {"db.appload"},
    "alembic": {
        "compat",
        "db.scripts",
        "db.database",
        "db.executor",
        "db.dbcommands",
        "db.drift",
    },
}
PURE = {"core.planner", "core.policy", "render", "core.lint", "render.graphview"}


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
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "templates" in path.parts:
            continue
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = imports(path)
    return found


def test_only_the_allowed_modules_import_click_flask_and_alembic():
    offenders = sorted(
        (name, lib)
        for name, found in modules().items()
        for lib, allowed in ALLOWED.items()
        if lib in found and name not in allowed
    )
    assert offenders == []


def test_pure_modules_do_no_io():
    io_modules = {
        "os",
        "subprocess",
        "socket",
        "sqlalchemy",
        "alembic",
        "click",
        "flask",
    }
    offenders = sorted(
        (name, lib)
        for name, found in modules().items()
        if name in PURE
        for lib in found & io_modules
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
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_plan_on_sqlite_loads_neither_sqlalchemy_nor_alembic(project, sqlite_url):
    # plan and status must stay instant at any history size: on the common path
    # (SQLite, one line of history) they need neither library
    from conftest import linear_project

    linear_project(project, sqlite_url, "a1", "b2", "c3")
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from migplan.cli import cli\n"
        "for _ in range(2):\n"
        "    result = CliRunner().invoke(cli, ['plan', 'dev'])\n"
        "    assert result.exit_code == 0, result.output\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'alembic', 'flask', 'jsonschema') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=project.root,
    )
    # jsonschema checks migplan.yaml once; the second run trusts the cache
    assert out.stdout.strip() == "jsonschema"
