"""One environment's position at a glance: a row of `migplan status`."""

from __future__ import annotations

from dataclasses import dataclass

from migplan.core.revisions import Heads


@dataclass(frozen=True)
class EnvironmentStatus:
    """Where one environment's database is, against its target."""

    environment: str
    url: str
    target: tuple[str, ...]
    current: Heads | None = None
    upgrades: int = 0
    downgrades: int = 0
    error: str | None = None
    dirty: str | None = None
    """The half-applied step, when a migration left the database dirty."""
    drift: int | None = None
    """How many differences from the models (with --drift); None: not compared."""

    @property
    def state(self) -> str:
        """``up to date``, ``pending``, ``dirty`` or ``error``."""
        if self.error is not None:
            return "error"
        if self.dirty is not None:
            return "dirty"
        return "pending" if self.upgrades or self.downgrades else "up to date"

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape of this row."""
        return {
            "environment": self.environment,
            "url": self.url,
            "current": None if self.current is None else list(self.current),
            "target": list(self.target),
            "state": self.state,
            "pending": {"upgrade": self.upgrades, "downgrade": self.downgrades},
            "error": self.error,
            "dirty": self.dirty,
            "drift": self.drift,
        }
