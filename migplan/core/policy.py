"""(Plan, Environment) -> the reasons the environment's policy refuses the plan. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.planner import Plan


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


def check_runnable(plan: Plan) -> list[Violation]:
    """Return the steps that cannot run at all (a syntax error, no function)."""
    return [
        Violation(
            "broken",
            f"{step.path}{f':{finding.line}' if finding.line else ''}: "
            f"{finding.operation}",
        )
        for step in plan.steps
        for finding in step.findings
        if finding.kind == "broken"
    ]


def check_lock_waits(plan: Plan, env: Environment) -> list[Violation]:
    """Warn of steps that take locks blocking other sessions, in a protected
    environment whose migrations may wait for those locks forever (no
    ddl.lock_timeout): behind one long transaction, they would stall its traffic."""
    if not env.protected or env.ddl.lock_timeout is not None:
        return []
    return [
        Violation(
            "ddl",
            f"{step.revision} takes locks that block other sessions "
            f"({next(f.operation for f in step.findings if f.kind == 'locking')}) "
            f"and {env.name!r} sets no ddl.lock_timeout: behind a long transaction "
            "it would stall every query on that table; set ddl: {lock_timeout: 2, "
            "retries: 10}",
        )
        for step in plan.steps
        if "locking" in step.flags
    ]


def check_apply(plan: Plan, env: Environment) -> list[Violation]:
    """Return why `apply` may not run `plan` in `env`: flagged steps its lint refuses."""
    found = []
    for step in plan.steps:
        for finding in step.findings:
            if finding.kind == "broken":
                continue  # check_runnable's
            level = getattr(env.lint, finding.kind, "allow")
            if level == "refuse":
                found.append(
                    Violation(
                        f"lint.{finding.kind}",
                        f"{step.revision} is {finding.kind} ({finding.operation}) and "
                        f"{env.name!r} refuses it (lint.{finding.kind}: refuse)",
                    )
                )
    return found


MULTIDB = (
    "env.py configures more than one database (a multi-database template): "
    "apply, rollback and plan --sql work on one; run it with 'migplan db upgrade "
    "-e ENV' (and 'db downgrade'), which migrate every database under the lock"
)

ROLLBACKS = frozenset({"rollback", "db downgrade"})
"""Actions that go down: the rollback policy applies, not the lint policy."""


def refusal(violations: list[Violation], action: str) -> str:
    """Return the one-line message refusing an action, with every reason."""
    return f"{action} refused: " + "; ".join(v.message for v in violations)


REFUSAL = "apply will refuse: "
"""How a plan's note that apply refuses it begins."""


@dataclass(frozen=True)
class Verdict:
    """Everything to say before a plan runs: what refuses it, what to warn about."""

    refusals: tuple[Violation, ...] = ()
    warnings: tuple[Violation, ...] = ()

    def notes(self) -> tuple[str, ...]:
        """Return the verdict as plan notes."""
        return tuple(f"{REFUSAL}{v.message}" for v in self.refusals) + tuple(
            v.message for v in self.warnings
        )


def preflight(
    plan: Plan,
    env: Environment,
    *,
    action: str = "apply",
    dirty: str | None = None,
    modified: Sequence[str] = (),
    unpromoted: Sequence[str] = (),
    unimportable: Sequence[str] = (),
    multidb: bool = False,
) -> Verdict:
    """Return what refuses or warns about running `plan` in `env`.

    `dirty` says how a half-applied migration left the database, `modified` which
    applied revision files changed since (one message each), `unpromoted` which
    revisions the plan needs that the `requires:` environment has not applied,
    `unimportable` which revision files fail to import (one message each),
    `multidb` whether env.py configures several databases (the `db` commands
    run those; apply and rollback do not).
    """
    refusals: list[Violation] = []
    warnings: list[Violation] = []
    going_down = action in ROLLBACKS
    if multidb and not action.startswith("db "):
        refusals.append(Violation("multidb", MULTIDB))
    if dirty:
        refusals.append(Violation("dirty", dirty))
    if unpromoted and not going_down:
        refusals.append(
            Violation(
                "requires",
                f"{', '.join(unpromoted)} not applied in {env.requires!r} yet "
                f"({env.name!r} requires it)",
            )
        )
    for message in modified:
        rule = Violation("on_modified", message)
        (refusals if env.on_modified == "refuse" else warnings).append(rule)
    refusals += check_runnable(plan)
    refusals += [Violation("broken", message) for message in unimportable]
    warnings += check_lock_waits(plan, env)
    if going_down:
        refusals += check_rollback(plan, env)
    else:
        # lint.*: warn needs no note: the plan's flags already show each finding
        refusals += check_apply(plan, env)
    return Verdict(tuple(refusals), tuple(warnings))
