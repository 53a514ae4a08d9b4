"""What a project's env.py says about itself, read from its source: the version
table it names, and whether it configures several databases.

Read without running it (env.py imports the app and connects). Only literal
values count; env.py that computes them is run as it is, and the database then
says the rest (db.database looks for a version table under another name).
"""

from __future__ import annotations

import ast
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


def read(migrations: Path) -> EnvPy:
    """Read `migrations/env.py`; nothing is known of a missing or unreadable one."""
    try:
        tree = ast.parse((migrations / "env.py").read_bytes())
    except (OSError, SyntaxError, ValueError):
        return EnvPy()
    version_table = schema = None
    multidb = False
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
    return EnvPy(version_table, schema, multidb)


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None
