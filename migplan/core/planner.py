"""(graph, current heads, target) -> Plan: the ordered steps apply will run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Literal

from migplan.core.graph import RevisionGraph
from migplan.core.lint import Analysis
from migplan.core.lint import Finding
from migplan.core.revisions import Heads
from migplan.errors import NotAncestor
from migplan.errors import TargetError

Direction = Literal["upgrade", "downgrade", "checkpoint"]
"""A step runs a revision's upgrade() or downgrade(), or loads a checkpoint (the
schema and rows at a revision, standing for every revision below it)."""

PLAN_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Step:
    """One migration to run: a revision in one direction."""

    revision: str
    direction: Direction
    message: str
    down_revision: tuple[str, ...]
    path: str = ""
    checksum: str = ""
    findings: tuple[Finding, ...] = ()
    replaces: int = 0
    """A checkpoint: how many revisions it stands for."""

    @property
    def flags(self) -> tuple[str, ...]:
        """The kinds of finding, sorted, each once."""
        return tuple(sorted({f.kind for f in self.findings}))

    @property
    def is_upgrade(self) -> bool:
        """Whether this step runs the revision's upgrade()."""
        return self.direction == "upgrade"

    @property
    def is_checkpoint(self) -> bool:
        """Whether this step loads a checkpoint instead of running a revision."""
        return self.direction == "checkpoint"

    def inverse(self) -> Step:
        """The step that undoes this one (a checkpoint is undone by the real
        downgrades of what it covers: `route_down` to base)."""
        if self.is_checkpoint:
            raise ValueError("a checkpoint is undone by its revisions' downgrades")
        direction: Direction = "downgrade" if self.is_upgrade else "upgrade"
        return Step(
            self.revision,
            direction,
            self.message,
            self.down_revision,
            self.path,
            self.checksum,
        )

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape of this step."""
        return {
            "revision": self.revision,
            "direction": self.direction,
            "message": self.message,
            "down_revision": list(self.down_revision),
            "flags": list(self.flags),
            "findings": [f.to_dict() for f in self.findings],
            "path": self.path,
            "checksum": self.checksum,
        } | ({"replaces": self.replaces} if self.is_checkpoint else {})

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Step:
        """Read a step back from its JSON shape (no findings)."""
        direction = data["direction"]
        if direction not in ("upgrade", "downgrade", "checkpoint"):
            raise ValueError(f"bad direction {direction!r}")
        return cls(
            revision=str(data["revision"]),
            direction=direction,
            message=str(data.get("message", "")),
            down_revision=tuple(str(d) for d in data.get("down_revision") or ()),  # type: ignore[attr-defined]
            path=str(data.get("path", "")),
            checksum=str(data.get("checksum", "")),
            replaces=int(data.get("replaces") or 0),  # type: ignore[call-overload]
        )


@dataclass(frozen=True)
class Plan:
    """The steps that bring a database from its current heads to a target."""

    environment: str
    current: Heads
    target: tuple[str, ...]
    after: Heads
    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def up_to_date(self) -> bool:
        """Whether there is nothing to run."""
        return not self.steps

    def count(self, direction: Direction) -> int:
        """Return how many steps go in `direction`."""
        return sum(1 for s in self.steps if s.direction == direction)

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape of the plan (the `plan --json` contract)."""
        return {
            "format": PLAN_FORMAT,
            "environment": self.environment,
            "current": list(self.current),
            "target": list(self.target),
            "after": list(self.after),
            "up_to_date": self.up_to_date,
            "steps": [s.to_dict() for s in self.steps],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Route:
    """The revisions a plan runs, in order, before they are described as steps."""

    current: Heads
    target: tuple[str, ...]
    moves: tuple[tuple[str, bool], ...]
    """(revision, is_upgrade), in the order they run."""

    @property
    def revisions(self) -> list[str]:
        """The revisions the route runs, in order."""
        return [revision for revision, _ in self.moves]


def route(graph: RevisionGraph, current: Sequence[str], target: Sequence[str]) -> Route:
    """Return the route that brings a database at `current` to `target`.

    A target at or above the current revisions is reached as `alembic upgrade`
    would reach it; one below, as `alembic downgrade` would; a list target may
    need both, downgrades first. Branches the target does not mention stay.
    """
    start = check_current(graph, current)
    target = tuple(target)
    if len(target) == 1:
        routed = _route(graph, target, start)
    else:
        # Alembic downgrades to one revision at a time: bring each branch that
        # is above its target down first, then upgrade to the whole list
        routed, heads = [], start
        for expr in target:
            down = [(rev, up) for rev, up in _route(graph, (expr,), heads) if not up]
            routed += down
            heads = graph.heads_after(heads, down)
        routed += [(rev, True) for rev in graph.upgrade_revisions(target, heads)]
    return Route(start, target, tuple(routed))


def make_plan(
    graph: RevisionGraph,
    current: Sequence[str],
    target: Sequence[str],
    *,
    environment: str = "",
    dialect: str | None = None,
    analyses: Mapping[str, Analysis] | None = None,
) -> Plan:
    """Return the plan that brings a database at `current` to `target` (see
    `route`); `analyses` are the lint findings of its revisions, by revision."""
    return plan_route(
        graph,
        route(graph, current, target),
        environment=environment,
        dialect=dialect,
        analyses=analyses,
    )


def _route(
    graph: RevisionGraph, target: tuple[str, ...], heads: Heads
) -> list[tuple[str, bool]]:
    """Return (revision, is_upgrade) pairs: upgrade if that moves, else downgrade."""
    try:
        up = graph.upgrade_revisions(target, heads)
    except TargetError as up_error:
        # `-1`, `branch@-2`: relative steps that only make sense downwards
        if len(heads) > 1 and len(target) == 1 and re.fullmatch(r"-\d+", target[0]):
            # Alembic walks down from the version table's first row, in whatever
            # order the database returns the rows, and warns that this is
            # ambiguous and will be disallowed; a plan cannot depend on row order
            raise TargetError(
                f"target {target[0]!r} is ambiguous: the database has several "
                f"heads ({', '.join(heads)}); use 'branchname@{target[0]}' or a "
                "revision"
            ) from None
        try:
            return [(rev, False) for rev in graph.downgrade_revisions(target, heads)]
        except TargetError:
            raise up_error from None
    if up:
        return [(rev, True) for rev in up]
    try:
        return [(rev, False) for rev in graph.downgrade_revisions(target, heads)]
    except NotAncestor:
        return []
    except TargetError:
        # `alembic downgrade` refuses some targets the database is already at
        # (`heads` with several heads, `branch@rev` of a rev with several
        # children); at the target, `alembic upgrade` runs nothing, so neither do we
        if _is_at(graph, target, heads):
            return []
        raise


def _is_at(graph: RevisionGraph, target: tuple[str, ...], heads: Heads) -> bool:
    """Return whether `target` names exactly current heads (base: no heads)."""
    try:
        resolved = graph.resolve(target)
    except TargetError:
        return False
    return set(resolved) <= set(heads) and bool(resolved or not heads)


def make_downgrade_plan(
    graph: RevisionGraph,
    current: Sequence[str],
    to: str,
    *,
    environment: str = "",
    dialect: str | None = None,
    analyses: Mapping[str, Analysis] | None = None,
) -> Plan:
    """Return the plan of `alembic downgrade TO` (a revision, `base` or `-N`)."""
    return plan_route(
        graph,
        route_down(graph, current, to),
        environment=environment,
        dialect=dialect,
        analyses=analyses,
    )


def route_down(graph: RevisionGraph, current: Sequence[str], to: str) -> Route:
    """Return the route of `alembic downgrade TO` (a revision, `base` or `-N`)."""
    heads = check_current(graph, current)
    if not heads:
        raise TargetError("the database is at base: there is nothing to roll back")
    try:
        revisions = graph.downgrade_revisions((to,), heads)
    except NotAncestor as err:
        raise TargetError(
            f"{to!r} is not an ancestor of the current revision "
            f"({', '.join(heads)}); rollback only goes down"
        ) from err
    except TargetError as err:
        if to.startswith("-"):
            raise TargetError(
                f"cannot roll back {to[1:]} step(s) from {', '.join(heads)}: "
                "there are not that many below it"
            ) from err
        raise
    return Route(heads, (to,), tuple((r, False) for r in revisions))


def steps_route(
    current: Heads, target: tuple[str, ...], steps: Sequence[Step]
) -> Route:
    """Return the route of given steps (a saved plan, the inverse of a failed apply)."""
    return Route(current, target, tuple((s.revision, s.is_upgrade) for s in steps))


def check_current(graph: RevisionGraph, current: Sequence[str]) -> Heads:
    """Return `current` sorted, after checking that the graph knows each revision."""
    heads = tuple(sorted(current))
    unknown = [rev for rev in heads if rev not in graph]
    if unknown:
        raise TargetError(
            f"the database is at revision {', '.join(unknown)}, which no revision "
            "file declares (a file was deleted, or the database belongs to another "
            "project)"
        )
    return heads


def step(
    graph: RevisionGraph,
    revision: str,
    is_upgrade: bool,
    analysis: Analysis | None = None,
    dialect: str | None = None,
) -> Step:
    """Describe one revision run in one direction, flagged by its lint analysis
    (locking flags only count on PostgreSQL)."""
    direction: Literal["upgrade", "downgrade"] = (
        "upgrade" if is_upgrade else "downgrade"
    )
    findings = analysis.findings(direction) if analysis else ()
    if dialect != "postgresql":
        findings = tuple(f for f in findings if f.kind != "locking")
    return Step(
        revision=revision,
        direction=direction,
        message=graph.message(revision),
        down_revision=graph.down[revision],
        path=graph.relative_path(revision),
        checksum=graph.checksum(revision),
        findings=findings,
    )


def plan_route(
    graph: RevisionGraph,
    route: Route,
    *,
    environment: str = "",
    dialect: str | None = None,
    analyses: Mapping[str, Analysis] | None = None,
) -> Plan:
    """Describe a route as the steps of a plan, flagged by the lint `analyses` of
    its revisions (by revision; a revision without one has no flags)."""
    steps = [
        step(graph, revision, is_upgrade, (analyses or {}).get(revision), dialect)
        for revision, is_upgrade in route.moves
    ]
    after = graph.heads_after(route.current, route.moves)
    return Plan(environment, route.current, route.target, after, tuple(steps))
