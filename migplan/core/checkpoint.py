"""Checkpoints as values: a database's schema and rows at one revision, dumped
once, so that a database at base loads it instead of replaying the history. Pure.

A checkpoint file is the dump of a scratch database that was replayed to its
revision, headed by comment lines that say what it is::

    -- migplan checkpoint {"format": 1, "revision": "3f2a", "dialect": ..., ...}
    -- covers 1a2b <sha256 of 1a2b's file>
    -- covers 3f2a <sha256 of 3f2a's file>
    -- end of header
    <the dump>

It is valid SQL for the database's own client. It stays usable while every
revision it covers is byte for byte the file it was made from (the checksums),
and its body is the one written (its own checksum); otherwise it is stale, and
plans replay.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass

from migplan.core.graph import RevisionGraph
from migplan.core.planner import Plan
from migplan.core.planner import Route
from migplan.core.planner import Step

FORMAT = 1
_FIRST = "-- migplan checkpoint "
_COVERS = "-- covers "
_END = "-- end of header\n"


class CheckpointError(ValueError):
    """A file in the checkpoints folder that is not a checkpoint migplan wrote."""


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint file: what it holds, not the SQL itself."""

    revision: str
    dialect: str
    covers: Mapping[str, str]
    """The revisions it replaces, with their files' sha256 when it was made."""
    path: str = ""
    """Relative to the project, for display."""
    checksum: str = ""
    """The sha256 of the whole file, as it was read."""
    schema: str | None = None
    """The schema it was dumped from, which loading replaces by the target's."""
    tool: str = ""
    """What dumped it: ``pg_dump 15.19``, ``mariadb-dump 10.11``, ``sqlite3``."""
    body_sha256: str = ""
    body_intact: bool = True
    """Whether the dump is the one the header was written for."""
    relations: int = 0
    """PostgreSQL: the relations loading it creates, each locked until the load
    commits (0: not counted)."""

    def problems(self, graph: RevisionGraph) -> list[str]:
        """Why this checkpoint cannot stand for a replay of its revisions now:
        a covered file changed, a revision appeared below it or vanished, or the
        dump was edited. Empty: it is fresh."""
        if not self.body_intact:
            return [f"{self.path} was edited after it was made"]
        if self.revision not in graph:
            return [f"{self.path}: revision {self.revision} no longer exists"]
        below = graph.ancestors([self.revision])
        found = []
        for revision in sorted(set(self.covers) | below):
            if revision not in below:
                found.append(f"revision {revision} is no longer below it")
            elif revision not in self.covers:
                found.append(f"{graph.relative_path(revision)} is new below it")
            elif graph.checksum(revision) != self.covers[revision]:
                found.append(f"{graph.relative_path(revision)} has changed")
        if found:
            more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
            return [f"{self.path} is stale: {'; '.join(found[:3])}{more}"]
        return []

    def step(self) -> Step:
        """The plan's step that loads this checkpoint."""
        n = len(self.covers)
        return Step(
            revision=self.revision,
            direction="checkpoint",
            message=f"load checkpoint, replaces {n} revision{'s' if n != 1 else ''}",
            down_revision=(),
            path=self.path,
            checksum=self.checksum,
            replaces=n,
        )


def render(
    revision: str,
    dialect: str,
    covers: Mapping[str, str],
    body: str,
    *,
    schema: str | None = None,
    tool: str = "",
    relations: int = 0,
) -> str:
    """Return the text of a checkpoint file."""
    header = {
        "relations": relations,
        "format": FORMAT,
        "revision": revision,
        "dialect": dialect,
        "schema": schema,
        "tool": tool,
        "revisions": len(covers),
        "body_sha256": hashlib.sha256(body.encode()).hexdigest(),
    }
    lines = [_FIRST + json.dumps(header, sort_keys=True) + "\n"]
    lines += [f"{_COVERS}{rev} {covers[rev]}\n" for rev in sorted(covers)]
    return "".join(lines) + _END + body


def parse_header(text: str, path: str = "") -> Checkpoint:
    """Read a checkpoint's header (and check its body against it)."""
    if not text.startswith(_FIRST):
        raise CheckpointError(f"{path}: not a migplan checkpoint (no header)")
    first, _, rest = text.partition("\n")
    try:
        header = json.loads(first[len(_FIRST) :])
        revision = str(header["revision"])
        dialect = str(header["dialect"])
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: line 1: unreadable header: {err}") from err
    if header.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {header.get('format')!r}; this migplan "
            f"reads format {FORMAT}: make it again with 'migplan checkpoint'"
        )
    covers: dict[str, str] = {}
    number = 1
    while not rest.startswith(_END):
        line, newline, rest = rest.partition("\n")
        number += 1
        if not newline or not line.startswith(_COVERS):
            raise CheckpointError(
                f"{path}: line {number}: expected '-- covers REV SHA'"
            )
        rev, _, sha = line[len(_COVERS) :].partition(" ")
        covers[rev] = sha
    body = rest[len(_END) :]
    return Checkpoint(
        revision=revision,
        dialect=dialect,
        covers=covers,
        path=path,
        checksum=hashlib.sha256(text.encode()).hexdigest(),
        schema=header.get("schema"),
        tool=str(header.get("tool") or ""),
        body_sha256=str(header.get("body_sha256") or ""),
        body_intact=hashlib.sha256(body.encode()).hexdigest()
        == header.get("body_sha256"),
        relations=int(header.get("relations") or 0),
    )


def body(text: str) -> str:
    """The dump of a checkpoint file's text, without its header."""
    _, found, rest = text.partition(_END)
    if not found:
        raise CheckpointError("not a migplan checkpoint (no end of header)")
    return rest


def file_name(revision: str, dialect: str) -> str:
    """The checkpoint file of a revision for a dialect."""
    return f"{revision}.{dialect}.sql"


def choose(
    upgrading: Collection[str],
    checkpoints: Iterable[Checkpoint],
    graph: RevisionGraph,
    dialect: str,
) -> tuple[Checkpoint | None, list[str]]:
    """The checkpoint a plan from base that upgrades `upgrading` may start from
    (the one that replaces the most of them), and why others of its dialect
    cannot be used. Only one whose whole history the plan upgrades through
    qualifies; the caller knows the database is at base and empty, too."""
    best: Checkpoint | None = None
    notes: list[str] = []
    for found in checkpoints:
        if found.dialect != dialect or found.revision not in upgrading:
            continue
        problems = found.problems(graph)
        if problems:
            notes += [f"{p}: replaying instead" for p in problems]
        elif all(r in upgrading for r in found.covers) and (
            best is None or len(found.covers) > len(best.covers)
        ):
            best = found
    return best, notes


def rest(route: Route, checkpoint: Checkpoint) -> Route:
    """What is left of a route from base once the checkpoint is loaded: its other
    revisions, in their order (their ancestors are either loaded by the
    checkpoint or run before them, as they were), from the checkpoint's revision."""
    covered = checkpoint.covers
    moves = tuple(move for move in route.moves if move[0] not in covered)
    return Route((checkpoint.revision,), route.target, moves)


def start_from(rest_plan: Plan, checkpoint: Checkpoint) -> Plan:
    """The plan of a database at base: the checkpoint, then the plan of `rest`."""
    return dataclasses.replace(
        rest_plan, current=(), steps=(checkpoint.step(), *rest_plan.steps)
    )


_SET = re.compile(r"SET\s+(?!LOCAL\b|SESSION\b)", re.I)
_SEARCH_PATH = re.compile(r"set_config\('search_path',\s*'',\s*false\)", re.I)


def statements(text: str, found: Checkpoint, target: str | None) -> list[str]:
    """The statements that load a checkpoint's dump into the schema (PostgreSQL)
    or database (MySQL) `target`, inside one transaction: the dumped schema's
    name becomes the target's, and a PostgreSQL dump's session settings last
    only as long as the load's transaction (its empty search_path is left out:
    the dump qualifies every name)."""
    from migplan.core import sqlscript

    dump = body(text)
    if found.schema is None or target is None:
        return sqlscript.split(dump, found.dialect)
    quoted = quote_identifier(target, found.dialect)
    # the dump quotes MySQL names itself (`name`); PostgreSQL's only when needed
    inside = quoted[1:-1] if found.dialect == "mysql" else quoted
    renamed = re.sub(rf"\b{re.escape(found.schema)}\b", lambda _: inside, dump)
    out = []
    for statement in sqlscript.split(renamed, found.dialect):
        # split() drops the comment lines that head a statement: code comes first
        if found.dialect == "postgresql" and statement[:1] in "SC":
            if statement == f"CREATE SCHEMA {quoted}":
                statement = f"CREATE SCHEMA IF NOT EXISTS {quoted}"
            elif _SEARCH_PATH.search(statement):
                # every name is qualified by the dump; the load's own search_path
                # is the target schema, and stays it for the version table
                continue
            elif _SET.match(statement):
                statement = _SET.sub("SET LOCAL ", statement, count=1)
        out.append(statement)
    return out


def quote_identifier(name: str, dialect: str) -> str:
    """`name` as an identifier of `dialect`, quoted where a bare one would not be
    the same name."""
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'
