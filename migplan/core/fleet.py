"""Fleets as values: members, shards, grouped plans and per-member results."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Literal

from migplan.core.planner import Plan
from migplan.core.revisions import Heads
from migplan.core.url import DatabaseURL
from migplan.errors import ConfigError

Shard = tuple[int, int]
"""(i, n): the i-th of n shards, 1-based."""


@dataclass(frozen=True)
class Member:
    """One database of a fleet."""

    name: str
    """What users see and select it by: the masked URL, or the schema's name."""
    url: DatabaseURL = field(repr=False)
    schema: str | None = None


def parse_shard(text: str, source: str = "--shard") -> Shard:
    """Read ``i/n`` (1 <= i <= n); `source` names where it came from, in errors."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"{source} {text!r}: expected i/n, e.g. 2/8") from None
    if not 1 <= i <= n:
        raise ConfigError(f"{source} {text!r}: i must be between 1 and n")
    return i, n


AUTO = "auto"
"""`--shard auto`: the shard the runner's environment gives."""
SHARD_VAR = "MIGPLAN_SHARD"
"""An explicit ``i/n``, 1-based as `--shard` (a CI matrix)."""
INDEX_VAR = "JOB_COMPLETION_INDEX"
"""A Kubernetes Indexed Job's pod index, 0-based: shard index + 1."""
COUNT_VAR = "MIGPLAN_SHARDS"
"""How many shards, beside an index that does not say (`--shards N`)."""


def resolve_shard(
    text: str | None, shards: str | None, environ: Mapping[str, str]
) -> Shard | None:
    """The shard of `--shard TEXT` (None: the whole fleet) and `--shards N`; with
    ``auto``, from the runner's `environ`: ``MIGPLAN_SHARD=i/n``, or
    ``JOB_COMPLETION_INDEX`` with a count from `--shards` or ``MIGPLAN_SHARDS``.
    Whatever is given must agree; an empty variable counts as unset."""
    if text != AUTO:
        if shards is not None:
            raise ConfigError(
                f"--shards {shards} goes with --shard auto"
                + ("" if text is None else f", not --shard {text}")
            )
        return None if text is None else parse_shard(text)
    # every source of an index (1-based) and of a count, by name
    indexes: dict[str, int] = {}
    counts: dict[str, int] = {}
    if shards is not None:
        counts["--shards"] = _count(shards, "--shards")
    if environ.get(COUNT_VAR):
        counts[COUNT_VAR] = _count(environ[COUNT_VAR], f"--shard auto: {COUNT_VAR}")
    if environ.get(SHARD_VAR):
        i, n = parse_shard(environ[SHARD_VAR], f"--shard auto: {SHARD_VAR}")
        indexes[SHARD_VAR], counts[SHARD_VAR] = i, n
    if environ.get(INDEX_VAR):
        indexes[INDEX_VAR] = _job_index(environ[INDEX_VAR]) + 1
    if not indexes:
        raise ConfigError(
            f"--shard auto: no shard in the environment: set {SHARD_VAR}=i/n "
            f"(1-based), or run as a Kubernetes Indexed Job ({INDEX_VAR}) "
            "with --shards N"
        )
    said = _each({k: environ[k] if k == SHARD_VAR else v for k, v in counts.items()})
    if len(set(counts.values())) > 1:
        raise ConfigError(f"--shard auto: the shard counts disagree: {said}")
    if not counts:
        raise ConfigError(
            f"--shard auto: {INDEX_VAR}={environ[INDEX_VAR]} but no shard count: "
            f"pass --shards N or set {COUNT_VAR}"
        )
    n = next(iter(counts.values()))
    if indexes.get(INDEX_VAR, 0) > n:
        raise ConfigError(
            f"--shard auto: {INDEX_VAR}={environ[INDEX_VAR]} is not below the "
            f"shard count {n} ({said}); it counts from 0"
        )
    if len(set(indexes.values())) > 1:
        shown_index = {
            SHARD_VAR: environ[SHARD_VAR],
            INDEX_VAR: f"{environ[INDEX_VAR]} (shard {indexes[INDEX_VAR]}/{n})",
        }
        raise ConfigError(f"--shard auto: the shards disagree: {_each(shown_index)}")
    i = next(iter(indexes.values()))
    return i, n


def _count(text: str, source: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ConfigError(f"{source} {text!r}: expected a number of shards, e.g. 8")
    return int(text)


def _job_index(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ConfigError(
            f"--shard auto: {INDEX_VAR} {text!r}: expected a number, 0 or more"
        )
    return int(text)


def _each(values: Mapping[str, object]) -> str:
    return ", ".join(f"{name} {value}" for name, value in values.items())


def in_shard(member: Member, shard: Shard | None) -> bool:
    """Whether a member belongs to a shard: by a hash of its name, so that every
    runner agrees whatever order it lists the fleet in."""
    if shard is None:
        return True
    i, n = shard
    digest = hashlib.sha256(member.name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % n == i - 1


@dataclass(frozen=True)
class MemberPlan:
    """The plan of one member, or why it could not be made."""

    member: Member
    plan: Plan | None = None
    error: str | None = None


@dataclass(frozen=True)
class Group:
    """Members at the same revisions, which the same steps bring to the target."""

    current: Heads
    members: tuple[MemberPlan, ...]

    @property
    def plan(self) -> Plan | None:
        """The plan every member of the group shares."""
        return self.members[0].plan


@dataclass(frozen=True)
class FleetPlan:
    """The plans of a fleet, grouped by where each database is."""

    environment: str
    target: tuple[str, ...]
    groups: tuple[Group, ...]
    errors: tuple[MemberPlan, ...]

    @property
    def size(self) -> int:
        """How many databases were planned."""
        return sum(len(g.members) for g in self.groups) + len(self.errors)

    @property
    def up_to_date(self) -> bool:
        """Whether no database has anything to run (and none failed to plan)."""
        return not self.errors and all(
            g.plan is None or g.plan.up_to_date for g in self.groups
        )

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape of the fleet plan."""
        return {
            "environment": self.environment,
            "target": list(self.target),
            "databases": self.size,
            "up_to_date": self.up_to_date,
            "groups": [
                {
                    "current": list(g.current),
                    "databases": [m.member.name for m in g.members],
                    "steps": [s.to_dict() for s in g.plan.steps] if g.plan else [],
                }
                for g in self.groups
            ],
            "errors": [
                {"database": e.member.name, "error": e.error} for e in self.errors
            ],
        }


Outcome = Literal["applied", "up to date", "failed", "not started"]


@dataclass(frozen=True)
class MemberResult:
    """How apply went on one member."""

    name: str
    outcome: Outcome
    before: Heads | None = None
    after: Heads | None = None
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class FleetResult:
    """How apply went on the whole fleet."""

    results: tuple[MemberResult, ...]
    stopped: str | None = None
    """Why apply stopped starting databases, if it did."""

    def count(self, outcome: Outcome) -> int:
        """How many members ended with `outcome`."""
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        """Whether every member is at its target."""
        return all(r.outcome in ("applied", "up to date") for r in self.results)

    def failure_message(self) -> str:
        """The one-line error of an apply that did not reach every target."""
        failed = [r.name for r in self.results if r.outcome == "failed"]
        left = self.count("not started")
        tail = f"; {left} not started" if left else ""
        return (
            f"{len(failed)} database(s) failed ({', '.join(failed[:5])}){tail}; "
            "run apply again to finish the rest"
        )


ResultFn = Callable[[MemberResult, int, int], None]
