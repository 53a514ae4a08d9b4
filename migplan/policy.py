"""(Plan, Environment) -> the reasons the environment's policy refuses the plan. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migplan.config import Environment
    from migplan.planner import Plan


@dataclass(frozen=True)
class Violation:
    """One reason to refuse a plan."""

    rule: str
    message: str


def check_rollback(plan: Plan, env: Environment) -> list[Violation]:
    """Return why `rollback` may not run `plan` in `env` (empty: it may)."""
    policy = env.rollback
    found: list[Violation] = []
    if not policy.allowed:
        found.append(
            Violation("rollback.allowed", f"rollback is not allowed in {env.name!r}")
        )
        return found
    if policy.max_steps is not None and len(plan.steps) > policy.max_steps:
        found.append(
            Violation(
                "rollback.max_steps",
                f"rollback of {len(plan.steps)} steps exceeds max_steps "
                f"({policy.max_steps}) in {env.name!r}",
            )
        )
    for step in plan.steps:
        if "irreversible" in step.flags:
            reason = next(
                f.operation for f in step.findings if f.kind == "irreversible"
            )
            found.append(
                Violation(
                    "irreversible", f"{step.revision} cannot be rolled back: {reason}"
                )
            )
        if "destructive" in step.flags and not policy.allow_destructive:
            what = "; ".join(
                f.operation for f in step.findings if f.kind == "destructive"
            )
            found.append(
                Violation(
                    "rollback.allow_destructive",
                    f"rolling back {step.revision} is destructive ({what}) and "
                    f"{env.name!r} does not allow it",
                )
            )
    return found


def refusal(violations: list[Violation], action: str) -> str:
    """Return the one-line message refusing an action, with every reason."""
    return f"{action} refused: " + "; ".join(v.message for v in violations)
