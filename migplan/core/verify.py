"""What `migplan verify` checks and finds, as values."""

from __future__ import annotations

from dataclasses import dataclass

from migplan.core.drift import Difference

Schema = dict[str, dict[str, object]]


@dataclass(frozen=True)
class RevisionCheck:
    """How one revision's round trip went."""

    revision: str
    message: str
    problem: str | None = None


@dataclass(frozen=True)
class Report:
    """Everything verify found."""

    checks: tuple[RevisionCheck, ...]
    heads: tuple[str, ...]
    drift: tuple[Difference, ...] | None
    problems: tuple[str, ...]
    checkpoints: tuple[str, ...] = ()
    """The checkpoints loaded and compared with a replay."""

    @property
    def ok(self) -> bool:
        """Whether the graph passed every check."""
        return not self.problems


def difference(before: Schema, after: Schema) -> str:
    """Describe how two snapshots differ, in one line."""
    parts = []
    for table in sorted(set(before) - set(after)):
        parts.append(f"table {table} missing")
    for table in sorted(set(after) - set(before)):
        parts.append(f"table {table} left behind")
    for table in sorted(set(before) & set(after)):
        for key in before[table]:
            if before[table][key] != after[table][key]:
                parts.append(f"{table} {key.replace('_', ' ')} differ")
    return "; ".join(parts)
