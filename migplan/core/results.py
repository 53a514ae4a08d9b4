"""What running a plan did: progress events, step results, the result of an apply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from migplan.core.planner import Plan
from migplan.core.planner import Step
from migplan.core.revisions import Heads


@dataclass(frozen=True)
class Rehearsal:
    """What a rehearsal found: each step's time and locks, or the failure; and
    that the database was left as it was (everything rolled back)."""

    plan: Plan
    done: tuple[StepResult, ...]
    failed: StepResult | None = None

    @property
    def ok(self) -> bool:
        """Whether every step ran."""
        return self.failed is None


def heads_text(revisions: tuple[str, ...] | list[str]) -> str:
    """Return revisions for a sentence: comma-separated, or ``base``."""
    return ", ".join(revisions) if revisions else "base"


@dataclass(frozen=True)
class Progress:
    """A step starting or ending, for progress display."""

    event: Literal["start", "done", "failed"]
    index: int
    total: int
    step: Step
    seconds: float = 0.0
    phase: Literal["apply", "revert"] = "apply"


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class StepResult:
    """How one step went."""

    step: Step
    seconds: float
    error: str | None = None
    retryable: bool = False
    """It failed waiting for a lock, and nothing of it is left: it may run again."""
    locks: tuple[tuple[str, str], ...] = ()
    """(relation, lock mode) it took, where a rehearsal looked."""


@dataclass(frozen=True)
class RunResult:
    """What running a list of steps did."""

    done: tuple[StepResult, ...] = ()
    failed: StepResult | None = None


@dataclass(frozen=True)
class ApplyResult:
    """What apply did: the steps that committed, the failure, the revert."""

    plan: Plan
    done: tuple[StepResult, ...]
    heads: Heads
    failed: StepResult | None = None
    reverted: tuple[StepResult, ...] = ()
    revert_failed: StepResult | None = None
    dirty: bool = False
    audit_error: str | None = None
    """Why the audit trail could not record how the run ended, if it could not
    (every step it records was recorded when it committed)."""

    @property
    def ok(self) -> bool:
        """Whether every planned step ran."""
        return self.failed is None

    @property
    def outcome(self) -> str:
        """The audit trail's word for how the run ended."""
        if self.ok:
            return "success"
        if self.reverted and self.revert_failed is None:
            return "reverted"
        return "failed"

    def failure_message(self) -> str:
        """The one-line error of a failed apply: what failed, where the database is."""
        assert self.failed is not None
        failed = self.failed
        what = f"{failed.step.direction} {failed.step.revision} failed: {failed.error}"
        at = heads_text(self.heads)
        if self.dirty:
            return (
                f"{what}; the database may be left half-way through "
                f"{failed.step.revision} (its DDL is not transactional) and the "
                f"version table says {at}: fix the schema, then run 'migplan resolve "
                f"{self.plan.environment} --as applied' or '--as reverted'"
            )
        if self.revert_failed is not None:
            return (
                f"{what}; rolling back also failed at "
                f"{self.revert_failed.step.revision}: {self.revert_failed.error}; "
                f"the database is at {at}"
            )
        if self.reverted:
            return (
                f"{what}; rolled back {len(self.reverted)} step(s); the database is "
                f"back at {at}"
            )
        return f"{what}; the database is at {at}, the last migration that succeeded"
