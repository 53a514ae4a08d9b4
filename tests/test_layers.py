"""The architecture, checked: the layers import only downwards, there is no import
cycle at all, and the heavy libraries stay where they belong.

Every import counts, also those inside functions and under TYPE_CHECKING: a cycle
hidden in a function is still a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "migplan"

LAYERS = ("core", "project", "db", "service", "render", "cli")
BOTTOM = {"errors", "compat"}
"""Modules beside the layers, importable from all of them."""

MAY_IMPORT = {
    "core": {"core"},
    "render": {"core", "render"},
    "project": {"core", "project"},
    "db": {"core", "project", "db"},
    "service": {"core", "project", "db", "service"},
    "cli": {"core", "project", "db", "service", "render", "cli"},
}
"""Which layers each layer may import (besides the bottom modules)."""

LIBRARIES = {
    "click": {"cli"},
    "flask": {"db.appload"},
    "flask_sqlalchemy": {"db.appload"},
    "alembic": {"compat", "db"},
    "sqlalchemy": {"compat", "db"},
    "yaml": {"project"},
    "jsonschema": {"project"},
}
"""Which modules (or whole layers) may import each library."""

PURE = {"core", "render"}
IO = {"os", "subprocess", "socket", "sqlite3", "tempfile", "shutil", "io", "urllib"}
IO_ALLOWED = {"core.url": {"urllib"}}
"""Pure layers do no I/O; core.url only parses with urllib.parse."""

MAX_LINES = 600


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_name(p): p for p in PACKAGE.rglob("*.py") if "templates" not in p.parts}


SOURCES = _sources()


def _imports(name: str, path: Path) -> tuple[set[str], set[str]]:
    """(migplan modules, other top-level packages) that a module imports."""
    tree = ast.parse(path.read_text())
    own: set[str] = set()
    other: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "migplan":
                    own.add(alias.name)
                else:
                    other.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            if base.split(".")[0] != "migplan":
                other.add(base.split(".")[0])
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                own.add(full if full in SOURCES else base)
    return {m for m in own if m in SOURCES and m != name}, other


GRAPH = {name: _imports(name, path) for name, path in SOURCES.items()}


def _layer(name: str) -> str | None:
    """The layer of a module, "bottom" for errors and compat, None for the top."""
    parts = name.split(".")
    if len(parts) == 1:
        # migplan itself: __version__, and lazy exports that import nothing
        return "bottom"
    if parts[1] in BOTTOM:
        return "bottom"
    return parts[1] if parts[1] in LAYERS else None


def test_every_module_sits_in_a_layer():
    loose = sorted(
        name for name in SOURCES if _layer(name) is None and name != "migplan.__main__"
    )
    assert loose == []


def test_layers_import_only_what_the_rule_allows():
    offenders = []
    for name, (own, _) in GRAPH.items():
        layer = _layer(name)
        if layer in (None,):
            continue
        for target in own:
            to = _layer(target)
            if to == "bottom" and layer != "bottom":
                continue
            if layer == "bottom":
                # errors imports nothing of migplan's; compat only errors
                if not (name == "migplan.compat" and target == "migplan.errors"):
                    offenders.append((name, target))
                continue
            elif to is None or to not in MAY_IMPORT[layer]:
                offenders.append((name, target))
    assert offenders == []


def test_the_bottom_modules_import_only_errors():
    assert GRAPH["migplan"][0] == set()
    assert GRAPH["migplan.errors"][0] == set()
    assert GRAPH["migplan.compat"][0] <= {"migplan.errors"}


def test_there_is_no_import_cycle():
    # Tarjan's strongly connected components over every import
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(GRAPH[node][0]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert cycles == []


def test_libraries_stay_in_their_modules():
    offenders = []
    for name, (_, other) in GRAPH.items():
        short = name.removeprefix("migplan.")
        for library, allowed in LIBRARIES.items():
            if library in other and not any(
                short == a or short.startswith(a + ".") for a in allowed
            ):
                offenders.append((short, library))
    assert sorted(offenders) == []


def test_pure_layers_do_no_io():
    offenders = sorted(
        (name, library)
        for name, (_, other) in GRAPH.items()
        if _layer(name) in PURE
        for library in other & IO
        if library not in IO_ALLOWED.get(name.removeprefix("migplan."), set())
    )
    assert offenders == []


def test_no_module_is_over_the_size_that_asks_for_a_split():
    sizes = {name: len(path.read_text().splitlines()) for name, path in SOURCES.items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def python_output(code: str, cwd: Path | None = None) -> str:
    """What a fresh interpreter running `code` prints (it must exit 0)."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )
    return out.stdout


def after_command(args: list[str], report: str, cwd: Path) -> str:
    """What a fresh interpreter prints with `report` once `migplan ARGS` has run
    in it (and succeeded), in `cwd`."""
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from migplan.cli import cli\n"
        f"result = CliRunner().invoke(cli, {args!r})\n"
        "assert result.exit_code == 0, result.output\n"
    )
    return python_output(code + report, cwd)


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
    assert python_output(code).strip() == ""


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
    # jsonschema checks migplan.yaml once; the second run trusts the cache
    assert python_output(code, project.root).strip() == "jsonschema"


def test_apply_loads_alembic_without_pygments(project, sqlite_url):
    # Mako, imported by Alembic, would load Pygments' lexers for HTML error
    # pages nobody renders: migplan keeps them out (4 MB of a run's peak)
    import importlib.util

    if importlib.util.find_spec("pygments") is None:
        pytest.skip("Pygments is not installed here: nothing to keep out")
    from conftest import linear_project
    from conftest import tables

    linear_project(project, sqlite_url, "a1", "b2")
    report = (
        "import mako.exceptions\n"
        "print(mako.exceptions.pygments_html_formatter)\n"
        "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))\n"
    )
    # Mako as it is without Pygments: no HTML formatter
    assert after_command(
        ["apply", "dev", "--yes"], report, project.root
    ).splitlines() == [
        "None",
        "['alembic', 'mako']",
    ]
    assert tables(sqlite_url) >= {"t_a1", "t_b2"}


def test_apply_loads_the_renderers_it_prints_with_only(project, sqlite_url):
    # the render package's names are imported from their modules when asked
    # for: an apply in text loads the text renderer, not the JSON documents, the
    # fleet's, the linter's, the reports' or Markdown (their modules' memory)
    from conftest import linear_project

    linear_project(project, sqlite_url, "a1", "b2")
    report = (
        "print(sorted(m for m in sys.modules if m.startswith('migplan.render.')))\n"
        "from migplan.render import plan_markdown, status_text\n"
        "from migplan import render\n"
        "print(render.lint_text.__module__, plan_markdown.__module__)\n"
    )
    output = after_command(["apply", "dev", "--yes"], report, project.root)
    loaded, names = output.splitlines()
    assert ast.literal_eval(loaded) == ["migplan.render.style", "migplan.render.text"]
    assert names == "migplan.render.lint migplan.render.markdown"


def test_each_command_is_found_in_the_module_the_table_names():
    # `migplan X` imports only the module app.COMMANDS names for X: every command
    # defined anywhere in migplan.cli must be in the table, under its own module
    import importlib

    from migplan.cli.app import COMMANDS
    from migplan.cli.app import cli

    for path in sorted((PACKAGE / "cli").glob("[!_]*.py")):
        importlib.import_module(f"migplan.cli.{path.stem}")
    defined = {name: cmd.callback.__module__ for name, cmd in cli.commands.items()}
    assert defined == {name: f"migplan.cli.{m}" for name, m in COMMANDS.items()}


def test_a_command_loads_its_own_module_only():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from migplan.cli import cli\n"
        "CliRunner().invoke(cli, ['plan', '--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('migplan.cli.')))\n"
    )
    loaded = ast.literal_eval(python_output(code))
    assert "migplan.cli.migrate" in loaded
    assert not {"migplan.cli.db", "migplan.cli.inspect", "migplan.cli.lint"} & set(
        loaded
    )


def test_a_config_checked_before_is_read_without_yaml(project, sqlite_url):
    # migplan.yaml unchanged since a run checked it: its data and lines come
    # from the config cache, and neither PyYAML nor jsonschema is imported
    from conftest import linear_project

    linear_project(project, sqlite_url, "a1", "b2")
    report = "print(sorted(m for m in ('yaml', 'jsonschema') if m in sys.modules))\n"

    def loaded() -> str:
        return after_command(["plan", "dev"], report, project.root).strip()

    assert loaded() == "['jsonschema', 'yaml']"
    assert loaded() == "[]"
    config = project.root / "migplan.yaml"
    config.write_text(config.read_text() + "# edited\n")
    assert loaded() == "['jsonschema', 'yaml']"
