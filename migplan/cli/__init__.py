"""The `migplan` command: click only; every command is glue over the library.

One module per group of commands, imported when one of its commands runs (see
app.COMMANDS); `app` holds the group and decides exit codes. Heavy modules
(SQLAlchemy, Alembic, Flask) are imported inside the commands that need them, so
that `migplan --help` stays instant.
"""

from __future__ import annotations

from migplan.cli.app import cli
from migplan.cli.app import main

__all__ = ["cli", "main"]
