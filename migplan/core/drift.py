"""How a database's schema differs from the models, as values (Alembic's
autogenerate comparison, read into sentences)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


def difference(diff: tuple[Any, ...]) -> Difference:
    """Return one of Alembic's autogenerate differences as a Difference."""
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
