"""The `migplan` command: click only; every command is glue over the library.

One module per group of commands; `app` holds the group and decides exit codes.
Heavy modules (SQLAlchemy, Alembic, Flask) are imported inside the commands that
need them, so that `migplan --help` stays instant.
"""

from __future__ import annotations

from migplan.cli import checkpoints
from migplan.cli import checks
from migplan.cli import db
from migplan.cli import inspect
from migplan.cli import lint
from migplan.cli import migrate
from migplan.cli import promote
from migplan.cli.app import cli
from migplan.cli.app import main

__all__ = [
    "checkpoints",
    "checks",
    "cli",
    "db",
    "inspect",
    "lint",
    "main",
    "migrate",
    "promote",
]
