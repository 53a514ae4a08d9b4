"""Drift: how a database's schema differs from the models, by Alembic's own
autogenerate comparison (what `db migrate` would write)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc as sa_exc

from migplan.core.drift import Difference
from migplan.core.drift import difference
from migplan.db import appload
from migplan.db import database
from migplan.errors import AppLoadError
from migplan.errors import DatabaseError
from migplan.errors import describe

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project


def compare(
    connection: Connection, metadata: MetaData, ignore: Sequence[str] = ()
) -> list[Difference]:
    """Return how the connected database differs from `metadata`.

    Tables named in `ignore` (the version table, migplan's own) are skipped.
    """
    skipped = set(ignore)

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table":
            return name not in skipped and not (name or "").startswith("migplan_")
        return True

    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "include_object": include_object,
            "target_metadata": metadata,
        },
    )
    try:
        diffs = compare_metadata(context, metadata)
    except sa_exc.SQLAlchemyError as err:
        raise DatabaseError(f"cannot compare the schema: {describe(err)}") from err
    finally:
        if connection.in_transaction():
            connection.rollback()
    found: list[Difference] = []
    for diff in diffs:
        for item in diff if isinstance(diff, list) else [diff]:
            found.append(difference(item))
    return found


def environment_drift(project: Project, url: DatabaseURL) -> list[Difference]:
    """Return how the database at `url` differs from the project's models."""
    engine = database.create_engine(url)
    try:
        with appload.app_context(project, engine) as app:
            metadata = appload.target_metadata(project, app)
            if metadata is None:
                raise AppLoadError(
                    "drift needs the models: set 'app:' or 'metadata:' in migplan.yaml"
                )
            with database.connect(url) as connection:
                return compare(
                    connection,
                    metadata,
                    ignore=[project.version_table, *project.tables.own],
                )
    finally:
        engine.dispose()
