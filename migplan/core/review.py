"""The plans of several environments at once, as one review (a pull request's
comment): each environment's plan, its fleet's, or why it could not be planned."""

from __future__ import annotations

from dataclasses import dataclass

from migplan.core.fleet import FleetPlan
from migplan.core.planner import Plan


@dataclass(frozen=True)
class EnvironmentPlan:
    """One environment of a review: exactly one of `plan`, `fleet` and `error`."""

    environment: str
    url: str = ""
    """The database as shown, secrets hidden ("" for a fleet or an unread URL)."""
    plan: Plan | None = None
    fleet: FleetPlan | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the environment, or a database of its fleet, was not planned."""
        return self.error is not None or bool(self.fleet and self.fleet.errors)

    @property
    def up_to_date(self) -> bool:
        """Whether there is nothing to run (False when it could not be planned)."""
        if self.plan is not None:
            return self.plan.up_to_date
        if self.fleet is not None:
            return self.fleet.up_to_date
        return False
