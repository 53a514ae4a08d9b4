"""What a project's env.py says about itself, read from its source: the version
table it names, and whether it configures several databases.

Read without running it (env.py imports the app and connects). Only literal
values count; env.py that computes them is run as it is, and the database then
says the rest (db.database looks for a version table under another name).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EnvPy:
    """The settings env.py passes to `context.configure`, where they are literal."""

    version_table: str | None = None
    version_table_schema: str | None = None
    multidb: bool = False
    """Whether it configures several databases (Alembic's and Flask-Migrate's
    multi-database templates: a configure per engine, with an upgrade token)."""
    uses_app: bool = True
    """Whether it may need the Flask app (imports Flask or the project's own
    modules, names `current_app`); unknown counts as yes."""


def read(migrations: Path) -> EnvPy:
    """Read `migrations/env.py`; nothing is known of a missing or unreadable one."""
    try:
        tree = ast.parse((migrations / "env.py").read_bytes())
    except (OSError, SyntaxError, ValueError):
        return EnvPy()
    version_table = schema = None
    multidb = False
    uses_app = needs_app(tree, migrations.parent)
    loops = [n for n in ast.walk(tree) if isinstance(n, (ast.For, ast.AsyncFor))]
    in_loop = {id(c) for loop in loops for c in ast.walk(loop) if c is not loop}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        if node.func.attr == "run_migrations" and "engine_name" in keywords:
            multidb = True
        if node.func.attr != "configure":
            continue
        if "upgrade_token" in keywords or (id(node) in in_loop and keywords):
            multidb = True
        version_table = _literal(keywords.get("version_table")) or version_table
        schema = _literal(keywords.get("version_table_schema")) or schema
    return EnvPy(version_table, schema, multidb, uses_app)


def needs_app(tree: ast.AST, root: Path) -> bool:
    """Whether code may need the Flask app's context to run: it imports Flask or
    Flask-SQLAlchemy, or a module of the project's own (its models, its `db`),
    or names `current_app`. A revision file or an env.py that only uses Alembic,
    SQLAlchemy and the standard library runs without it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "current_app":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "current_app":
            return True
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import: the project's own code
                return True
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            top = module.partition(".")[0]
            if top.startswith("flask") or _own_module(root, top):
                return True
    return False


def _own_module(root: Path, name: str) -> bool:
    """Whether `name` is a module or package in the project's folder."""
    return bool(name) and (
        (root / f"{name}.py").is_file() or (root / name / "__init__.py").is_file()
    )


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def revisions_need_app(paths: Iterable[Path], root: Path) -> bool:
    """Whether any of these revision files may need the Flask app to run. Only a
    file whose text names Flask, `current_app`, a relative import or one of the
    project's own modules is parsed (a first deploy runs thousands of files)."""
    own = [name.encode() for name in _own_modules(root)]
    hints = [b"flask", b"current_app", b"from .", *own]
    for path in paths:
        try:
            source = path.read_bytes()
            if not any(hint in source for hint in hints):
                continue
            tree = ast.parse(source)
        except (OSError, SyntaxError, ValueError):
            return True
        if needs_app(tree, root):
            return True
    return False


def _own_modules(root: Path) -> list[str]:
    """The modules and packages in the project's folder."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    return [
        path.stem if path.suffix == ".py" else path.name
        for path in entries
        if (path.suffix == ".py" and path.is_file()) or (path / "__init__.py").is_file()
    ]
