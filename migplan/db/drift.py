"""Drift: how a database's schema differs from the models, by Alembic's own
autogenerate comparison (what `db migrate` would write)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc as sa_exc

from migplan.db import appload
from migplan.db import database
from migplan.errors import AppLoadError
from migplan.errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project


@dataclass(frozen=True)
class Difference:
    """One difference between the models and the database."""

    kind: str
    subject: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}" + (
            f": {self.detail}" if self.detail else ""
        )

    def to_dict(self) -> dict[str, str]:
        """Return the JSON shape of this difference."""
        return {"kind": self.kind, "subject": self.subject, "detail": self.detail}


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
        raise DatabaseError(
            f"cannot compare the schema: {database.reason(err)}"
        ) from err
    finally:
        if connection.in_transaction():
            connection.rollback()
    found: list[Difference] = []
    for diff in diffs:
        for item in diff if isinstance(diff, list) else [diff]:
            found.append(_describe(item))
    return found


def _describe(diff: tuple[Any, ...]) -> Difference:
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        where = "in the models only" if kind == "add_table" else "in the database only"
        return Difference(kind.replace("_", " "), diff[1].name, where)
    if kind in ("add_column", "remove_column"):
        where = "in the models only" if kind == "add_column" else "in the database only"
        return Difference(kind.replace("_", " "), f"{diff[2]}.{diff[3].name}", where)
    if kind in (
        "add_index",
        "remove_index",
        "add_constraint",
        "remove_constraint",
        "add_fk",
        "remove_fk",
    ):
        obj = diff[1]
        table = getattr(getattr(obj, "table", None), "name", None) or getattr(
            obj, "parent", None
        )
        name = getattr(obj, "name", None) or "(unnamed)"
        where = (
            "in the models only" if kind.startswith("add") else "in the database only"
        )
        return Difference(
            kind.replace("_", " "), f"{table}.{name}" if table else str(name), where
        )
    if kind.startswith("modify_"):
        _, _schema, table, column, _existing, old, new = diff
        return Difference(
            kind.replace("_", " "),
            f"{table}.{column}",
            f"database {old} -> models {new}",
        )
    return Difference(str(kind), str(diff[1:]))


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
                return compare(connection, metadata, ignore=[project.version_table])
    finally:
        engine.dispose()
