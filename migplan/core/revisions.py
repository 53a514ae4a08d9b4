"""The revision graph of a project: read revision files, resolve targets, order steps.

Reading and the common cases are migplan's own, and fast: the files' identifiers
come from their source (never importing them), cached by file size and mtime, and
a plan along one line of history is worked out directly. Everything else goes to
Alembic's own `RevisionMap`, built from the same revisions, so that targets resolve
and steps come out exactly as `alembic upgrade` / `alembic downgrade` would run
them. A revision's module is imported only when its migration runs.
"""

from __future__ import annotations

import ast
import difflib
import functools
import hashlib
import heapq
import os
import re
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

from migplan.core import lint
from migplan.errors import NotAncestor
from migplan.errors import RevisionGraphError
from migplan.errors import TargetError
from migplan.project import cache

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import RevisionStep
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionMap

    from migplan.core.lint import Analysis
    from migplan.project.config import Project

Heads = tuple[str, ...]
"""A set of revisions, sorted: the heads of a database or a resolved target."""

ILLEGAL = frozenset("@-+:")
"""Characters Alembic refuses in a revision id."""


@dataclass(frozen=True)
class RevisionFile:
    """What migplan knows of one revision file without importing it."""

    revision: str
    down_revision: tuple[str, ...]
    path: Path
    longdoc: str = ""
    branch_labels: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    text: str | None = None
    """The source, when the revision does not come from a file (tests)."""
    sha256: str | None = None
    """The checksum of the file as it was read."""

    @property
    def message(self) -> str:
        """The first paragraph of the docstring, on one line (Alembic's `doc`)."""
        return " ".join(re.split("\n\n", self.longdoc)[0].split())

    def checksum(self) -> str:
        """Return the sha256 of the file's bytes."""
        if self.sha256 is not None:
            return self.sha256
        if self.text is not None:
            return hashlib.sha256(self.text.encode()).hexdigest()
        return file_checksum(self.path)

    def source(self) -> str:
        """Return the file's source text."""
        if self.text is not None:
            return self.text
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise RevisionGraphError(f"{self.path.name}: cannot read: {err}") from err


def file_checksum(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise RevisionGraphError(f"{path.name}: cannot read: {err}") from err


class RevisionGraph:
    """The revisions of a project and the relations between them."""

    def __init__(self, files: Iterable[RevisionFile], root: Path | None = None) -> None:
        by_revision: dict[str, RevisionFile] = {}
        for file in files:
            if file.revision in by_revision:
                other = by_revision[file.revision].path.name
                raise RevisionGraphError(
                    f"revision {file.revision!r} is declared twice: in {other} and "
                    f"in {file.path.name}"
                )
            illegal = sorted(ILLEGAL & set(file.revision))
            if illegal:
                raise RevisionGraphError(
                    f"{file.path.name}: character(s) {', '.join(illegal)} not allowed "
                    f"in revision identifier {file.revision!r}"
                )
            by_revision[file.revision] = file
        self._setup(
            by_revision,
            {rev: f.down_revision for rev, f in by_revision.items()},
            {rev: f.depends_on for rev, f in by_revision.items() if f.depends_on},
            {label: rev for rev, f in by_revision.items() for label in f.branch_labels},
            root,
        )
        for rev, file in by_revision.items():
            for down in file.down_revision:
                if down not in by_revision:
                    raise RevisionGraphError(
                        f"{file.path.name}: revision {rev!r} refers to "
                        f"{down!r}, which no revision file declares"
                    )
            for dep in file.depends_on:
                if dep not in by_revision and dep not in self.labels:
                    raise RevisionGraphError(
                        f"{file.path.name}: revision {rev!r} depends on "
                        f"{dep!r}, which no revision file declares"
                    )
        self._check_cycles()

    def _setup(
        self,
        files: Mapping[str, RevisionFile],
        down: dict[str, tuple[str, ...]],
        depends: dict[str, tuple[str, ...]],
        labels: dict[str, str],
        root: Path | None,
    ) -> None:
        self.root = root
        self.files = files
        self.down = down
        """Each revision's down revisions."""
        self.depends = depends
        """The depends_on of the revisions that have one, as written."""
        self.labels = labels
        """Branch labels, and the revision that carries each."""
        self.has_dependencies = bool(depends)
        children: dict[str, list[str]] = {rev: [] for rev in down}
        for rev, below in down.items():
            for parent in below:
                if parent in children:
                    children[parent].append(rev)
        self.children = children
        self._analyses: dict[str, Analysis] = {}
        self._checksums: dict[str, str] = {}

    @classmethod
    def _from_snapshot(
        cls, snapshot: dict[str, Any], details: _Details, root: Path | None
    ) -> RevisionGraph:
        """Rebuild a graph from a snapshot of an unchanged, already validated history."""
        graph = cls.__new__(cls)
        revs: list[str] = snapshot["revs"]
        index = dict(zip(revs, range(len(revs)), strict=True))
        graph._setup(
            _SnapshotFiles(index, snapshot["names"], snapshot["stamps"], details),
            dict(zip(revs, map(tuple, snapshot["down"]), strict=True)),
            {rev: tuple(deps) for rev, deps in snapshot["deps"].items()},
            dict(snapshot["labels"]),
            root,
        )
        graph.__dict__["depth"] = dict(zip(revs, snapshot["depth"], strict=True))
        return graph

    def _parents(self, revision: str) -> tuple[str, ...]:
        """Down revisions and (resolved) dependencies: what must run first."""
        depends = self.depends.get(revision)
        if not depends:
            return self.down[revision]
        deps = tuple(self.labels.get(d, d) for d in depends)
        return tuple(dict.fromkeys(self.down[revision] + deps))

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}
        for start in self.down:
            if start in state:
                continue
            stack: list[tuple[str, Iterator[str]]] = [
                (start, iter(self._parents(start)))
            ]
            state[start] = 1
            while stack:
                node, parents = stack[-1]
                for parent in parents:
                    if state.get(parent) == 1:
                        raise RevisionGraphError(
                            f"invalid revision graph: cycle through {parent} and {node}"
                        )
                    if parent not in state:
                        state[parent] = 1
                        stack.append((parent, iter(self._parents(parent))))
                        break
                else:
                    state[node] = 2
                    stack.pop()

    @functools.cached_property
    def map(self) -> RevisionMap:
        """Alembic's RevisionMap of these revisions (imports Alembic)."""
        from alembic.script import revision as alembic_revision

        scripts = [_lazy_script_class()(file) for file in self.files.values()]
        revision_map = alembic_revision.RevisionMap(lambda: scripts)
        try:
            revision_map.heads  # noqa: B018 - builds the map, checking labels
        except alembic_revision.RevisionError as err:
            raise RevisionGraphError(f"invalid revision graph: {err}") from err
        return revision_map

    @classmethod
    def from_pairs(
        cls, *pairs: tuple[str, str | tuple[str, ...] | None]
    ) -> RevisionGraph:
        """Build a graph from (revision, down_revision) pairs, for tests and tools."""
        return cls(
            RevisionFile(
                rev,
                (down,) if isinstance(down, str) else tuple(down or ()),
                Path(f"{rev}.py"),
                text="",
            )
            for rev, down in pairs
        )

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, revision: object) -> bool:
        return revision in self.files

    @functools.cached_property
    def heads(self) -> Heads:
        """The head revisions of the graph (nothing is upgraded from them), sorted."""
        return tuple(sorted(rev for rev, below in self.children.items() if not below))

    def get(self, revision: str) -> RevisionFile:
        """Return the file of a full revision id."""
        return self.files[revision]

    def analyses(self, revisions: Sequence[str]) -> dict[str, Analysis]:
        """Return the lint findings of several revisions, cached by file checksum."""
        missing = [r for r in revisions if r not in self._analyses]
        if len(missing) > 16:
            # a long plan (a first deploy): worth the cache of earlier runs
            where = str(self.root)
            known = cache.load("lint", where) or {}
            fresh = dict(known)
            for rev in missing:
                key = self.checksum(rev)
                found = known.get(key)
                try:
                    self._analyses[rev] = lint.Analysis.from_list(found)  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    self._analyses[rev] = lint.analyze(self.files[rev].source())
                    fresh[key] = self._analyses[rev].to_list()
            if len(fresh) != len(known):
                # keep the newest entries: a cache, not an archive
                kept = dict(list(fresh.items())[-20000:])
                cache.store("lint", where, kept)
        for rev in missing:
            if rev not in self._analyses:
                self._analyses[rev] = lint.analyze(self.files[rev].source())
        return {rev: self._analyses[rev] for rev in revisions}

    def checksum(self, revision: str) -> str:
        """Return the sha256 of a revision's file (read once)."""
        found = self._checksums.get(revision)
        if found is None:
            found = self._checksums[revision] = self.files[revision].checksum()
        return found

    def relative_path(self, revision: str) -> str:
        """Return a revision's path relative to the project, for display."""
        path = self.files[revision].path
        if self.root is not None and path.is_relative_to(self.root):
            return path.relative_to(self.root).as_posix()
        return path.as_posix()

    def ancestors(self, revisions: Iterable[str]) -> set[str]:
        """Return `revisions` and everything below them (dependencies included)."""
        found: set[str] = set()
        stack = [r for r in revisions if r in self.files]
        while stack:
            rev = stack.pop()
            if rev not in found:
                found.add(rev)
                stack.extend(self._parents(rev))
        return found

    def resolve(self, target: Sequence[str]) -> Heads:
        """Return the revisions a target names (``()`` for ``base``)."""
        from alembic.script import revision as alembic_revision

        resolved: set[str] = set()
        for expr in target:
            with self._translate_errors(expr):
                if _RELATIVE.match(expr):
                    raise TargetError(
                        f"target {expr!r} is relative; it resolves only against a "
                        "database's current revision"
                    )
                revs = self.map.get_revisions(expr)
            resolved.update(
                r.revision for r in revs if isinstance(r, alembic_revision.Revision)
            )
        return tuple(sorted(resolved))

    # -- the order of the steps ---------------------------------------------------

    def upgrade_revisions(self, target: Sequence[str], current: Heads) -> list[str]:
        """Return, in order, the revisions `alembic upgrade TARGET` would run."""
        fast = self._line_up(target, current)
        if fast is not None:
            return fast
        destination = _as_identifier(target)
        with self._translate_errors(" ".join(target)):
            revs = self.map.iterate_revisions(destination, current, implicit_base=True)
            return [rev.revision for rev in reversed(list(revs))]

    def downgrade_revisions(self, target: Sequence[str], current: Heads) -> list[str]:
        """Return, in order, the revisions `alembic downgrade TARGET` would run."""
        fast = self._line_down(target, current)
        if fast is not None:
            return fast
        destination = _as_identifier(target)
        with self._translate_errors(" ".join(target)):
            revs = self.map.iterate_revisions(
                current, destination, select_for_downgrade=True
            )
            return [rev.revision for rev in revs]

    def _simple_target(self, target: Sequence[str]) -> Heads | None:
        """Resolve the targets migplan orders itself: a revision id, head(s), base."""
        if len(target) != 1 or self.has_dependencies:
            return None
        expr = target[0]
        if expr in self.files:
            return (expr,)
        if expr == "heads" or expr == "head" and len(self.heads) == 1:
            return self.heads
        if expr == "base":
            return ()
        return None

    def _line(self, revisions: set[str]) -> list[str] | None:
        """Order `revisions` bottom-up if they form one line of history (resting on
        revisions outside the set): then every order Alembic could pick is this one."""
        line: list[str] = []
        previous: str | None = None
        for _ in range(len(revisions)):
            candidates = [
                rev
                for rev in revisions
                if rev not in line
                and all(p not in revisions or p == previous for p in self.down[rev])
                and (previous is None or previous in self.down[rev])
            ]
            if len(candidates) != 1:
                return None
            previous = candidates[0]
            line.append(previous)
        return line

    @functools.cached_property
    def depth(self) -> dict[str, int]:
        """Each revision's distance from the roots (longest path), parents first."""
        depth: dict[str, int] = {}
        for start in self.down:
            stack = [start]
            while stack:
                rev = stack[-1]
                if rev in depth:
                    stack.pop()
                    continue
                missing = [p for p in self._parents(rev) if p not in depth]
                if missing:
                    stack.extend(missing)
                    continue
                depth[rev] = 1 + max((depth[p] for p in self._parents(rev)), default=0)
                stack.pop()
        return depth

    def pending(self, targets: Iterable[str], current: Iterable[str]) -> set[str]:
        """Return the ancestors of `targets` that are not ancestors of `current`.

        Both sides walk down together, deepest first, and stop as soon as all that
        is left lies below `current`: the cost follows the plan, not the history.
        """
        depth = self.depth
        heap: list[tuple[int, str]] = []
        side: dict[str, bool] = {}  # True: below current (applied)
        for rev in current:
            side[rev] = True
            heapq.heappush(heap, (-depth[rev], rev))
        targeted = 0
        for rev in targets:
            if rev not in side:
                side[rev] = False
                targeted += 1
                heapq.heappush(heap, (-depth[rev], rev))
        found: set[str] = set()
        while targeted:
            _, rev = heapq.heappop(heap)
            applied = side[rev]
            if not applied:
                targeted -= 1
                found.add(rev)
            for parent in self._parents(rev):
                known = side.get(parent)
                if known is None:
                    side[parent] = applied
                    targeted += not applied
                    heapq.heappush(heap, (-depth[parent], parent))
                elif applied and not known:
                    side[parent] = True  # reached from current too, while queued
                    targeted -= 1
        return found

    def _line_up(self, target: Sequence[str], current: Heads) -> list[str] | None:
        resolved = self._simple_target(target)
        if resolved is None or not all(c in self.files for c in current):
            return None
        pending = self.pending(resolved, current)
        if not pending:
            return []  # at or below the target: `alembic upgrade` runs nothing
        if len(pending) > 64:
            return None  # long plans are rare and Alembic orders them fast enough
        return self._line(pending)

    def _line_down(self, target: Sequence[str], current: Heads) -> list[str] | None:
        resolved = self._simple_target(target)
        if resolved is None or len(current) != 1 or current[0] not in self.files:
            return None
        applied = self.ancestors(current)
        if not set(resolved) <= applied:
            return None  # not below: Alembic says why
        remove = applied - self.ancestors(resolved)
        if not remove:
            return []
        if len(remove) > 64 or any(len(self.down[r]) > 1 for r in remove):
            return None
        line = self._line(remove)
        return None if line is None or line[-1] != current[0] else line[::-1]

    def heads_after(self, current: Heads, steps: Iterable[tuple[str, bool]]) -> Heads:
        """Return the database's heads after running (revision, is_upgrade) steps."""
        steps = list(steps)
        fast = self._heads_after_line(current, steps)
        if fast is not None:
            return fast
        from alembic.runtime.migration import HeadMaintainer

        class _Simulated(HeadMaintainer):
            def _insert_version(self, version: str) -> None:
                self.heads.add(version)

            def _delete_version(self, version: str) -> None:
                self.heads.remove(version)

            def _update_version(self, from_: str, to_: str) -> None:
                self.heads.remove(from_)
                self.heads.add(to_)

        maintainer = _Simulated(None, current)  # type: ignore[arg-type]
        for revision, is_upgrade in steps:
            try:
                maintainer.update_to_step(self.migration_step(revision, is_upgrade))
            except KeyError as err:
                # as in Alembic, whose HeadMaintainer fails the same way after
                # running the migration: refuse before running anything
                raise RevisionGraphError(
                    f"Alembic cannot record {'upgrade' if is_upgrade else 'downgrade'} "
                    f"{revision} in the version table (its depends_on lies above one "
                    f"of its own down revisions: {err})"
                ) from err
        return tuple(sorted(maintainer.heads))

    def _heads_after_line(
        self, current: Heads, steps: list[tuple[str, bool]]
    ) -> Heads | None:
        """The version table after the plans migplan orders itself (no depends_on):
        an upgrade replaces its down revisions by itself, a downgrade of the one
        head by its single down revision."""
        if self.has_dependencies:
            return None
        heads = set(current)
        for revision, is_upgrade in steps:
            down = self.down[revision]
            if is_upgrade:
                heads.difference_update(down)
                heads.add(revision)
            elif heads == {revision} and len(down) <= 1:
                heads = set(down)
            else:
                return None
        return tuple(sorted(heads))

    def migration_step(
        self, revision: str, is_upgrade: bool, runnable: bool = False
    ) -> RevisionStep:
        """Return Alembic's step object for one revision.

        The revision's module is imported only if the step is to be `runnable`.
        """
        from alembic.runtime.migration import RevisionStep

        script = self.map.get_revision(revision)
        if runnable:
            return RevisionStep(self.map, script, is_upgrade)  # type: ignore[arg-type]
        step = RevisionStep.__new__(RevisionStep)
        step.revision_map = self.map
        step.revision = script  # type: ignore[assignment]
        step.is_upgrade = is_upgrade
        return step

    def script_directory(self, config: Config) -> ScriptDirectory:
        """Return Alembic's ScriptDirectory for `config`, sharing this graph."""
        from migplan.db.scripts import script_directory

        script = script_directory(config)
        script.revision_map = self.map
        return script

    @contextmanager
    def _translate_errors(self, expr: str) -> Iterator[None]:
        from alembic.script import revision as alembic_revision
        from alembic.util import CommandError

        try:
            yield
        except alembic_revision.MultipleHeads as err:
            heads = ", ".join(sorted(err.heads))
            raise TargetError(
                f"target {expr!r} is ambiguous: there are several heads ({heads}); "
                "use 'heads', a list of revisions or 'branchname@head'"
            ) from err
        except alembic_revision.ResolutionError as err:
            raise TargetError(self._resolution_message(expr, err)) from err
        except alembic_revision.RangeNotAncestorError as err:
            raise NotAncestor(f"target {expr!r}: {err}") from err
        except (alembic_revision.RevisionError, CommandError) as err:
            raise TargetError(f"target {expr!r}: {err}") from err
        except AssertionError as err:
            # Alembic asserts on relative targets past either end of the graph
            # (`head-1` of a single revision, `a1+1`): its refusal too
            raise TargetError(
                f"target {expr!r} goes past the end of the graph"
            ) from err

    def _resolution_message(self, expr: str, err: Exception) -> str:
        text = str(err)
        if text.startswith("Multiple revisions start with"):
            prefix = getattr(err, "argument", expr)
            candidates = sorted(r for r in self.files if r.startswith(prefix))
            return (
                f"revision prefix {prefix!r} is ambiguous: it matches "
                f"{', '.join(candidates)}"
            )
        argument = str(getattr(err, "argument", expr))
        names = [*self.files, *self.labels]
        close = difflib.get_close_matches(argument, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        if "No such revision or branch" in text or "not present" in text:
            return f"unknown revision {argument!r} in target {expr!r}{hint}"
        return f"target {expr!r}: {text}{hint}"


_RELATIVE = re.compile(r"^(?:(?:.+?)@)?(?:\w+)?[+-]\d+$")


def _as_identifier(target: Sequence[str]) -> str | tuple[str, ...]:
    return target[0] if len(target) == 1 else tuple(target)


@functools.cache
def _lazy_script_class() -> type[Any]:
    """Alembic's `Script`, whose module is imported on first use."""
    from alembic.script import Script
    from alembic.script import revision as alembic_revision
    from alembic.util import load_python_file

    class LazyScript(Script):
        def __init__(self, file: RevisionFile) -> None:
            self.file = file
            self.path = str(file.path)
            try:
                alembic_revision.Revision.__init__(
                    self,
                    file.revision,
                    file.down_revision or None,
                    dependencies=file.depends_on or None,
                    branch_labels=file.branch_labels or None,
                )
            except alembic_revision.RevisionError as err:
                raise RevisionGraphError(f"{file.path.name}: {err}") from err

        @functools.cached_property
        def module(self) -> Any:  # type: ignore[override]
            path = Path(self.path)
            return load_python_file(path.parent, path.name)

        @property
        def longdoc(self) -> str:
            return self.file.longdoc

    return LazyScript


# -- reading revision files ----------------------------------------------------------


def load_graph(project: Project) -> RevisionGraph:
    """Read every revision file of the project into a graph.

    Files whose size, mtime and inode match the cache are not read again; when
    none changed, the graph is rebuilt from the cache without validating it again.
    """
    if not project.migrations.is_dir():
        raise RevisionGraphError(
            f"{project.migrations}: no such folder (create it with 'migplan db init')"
        )
    if _ini_changes_listing(project):
        from migplan import scripts as alembic_scripts

        if alembic_scripts.is_sourceless(project):
            # compiled-only revisions: let Alembic import them, it is the only way
            return RevisionGraph(alembic_scripts.from_modules(project), project.root)
        names = [str(path) for path in alembic_scripts.revision_paths(project)]
        stamps = _stamps(names)
    else:
        names, stamps = _versions(project.migrations / "versions")
    return _load_cached(project.migrations, names, stamps, project.root)


def _ini_changes_listing(project: Project) -> bool:
    """Whether the ini tells Alembic to look for revisions elsewhere or otherwise."""
    import configparser

    ini = project.ini
    if ini is None:
        return False
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini, encoding="utf-8")
    except configparser.Error:
        return True
    options = ("version_locations", "recursive_version_locations", "sourceless")
    return any(parser.has_option("alembic", option) for option in options)


def _versions(folder: Path) -> tuple[list[str], list[int]]:
    """The revision files of a versions folder, as Alembic lists them, and their
    stamps: size, mtime and inode of each, in one flat list."""
    try:
        with os.scandir(folder) as entries:
            found = sorted(
                (entry.path, entry.stat())
                for entry in entries
                if entry.name.endswith(".py")
                and not entry.name.startswith((".#", "__init__"))
                and entry.is_file()
            )
    except FileNotFoundError:
        return [], []
    except OSError as err:
        raise RevisionGraphError(f"{folder}: cannot list: {err.strerror}") from err
    stamps: list[int] = []
    for _, stat in found:
        stamps += (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    return [path for path, _ in found], stamps


def _stamps(paths: Sequence[str]) -> list[int]:
    stamps: list[int] = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError as err:
            name = os.path.basename(path)
            raise RevisionGraphError(f"{name}: cannot read: {err.strerror}") from err
        stamps += (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    return stamps


def _load_cached(
    migrations: Path, names: list[str], stamps: list[int], root: Path
) -> RevisionGraph:
    """Build the graph, reusing what the cache knows of unchanged files.

    Two cache entries: a snapshot of the validated graph, used as it is when no
    file changed (their size, mtime and inode say so), and each file's details
    (identifiers, docstring, checksum), used for the files that did not change.
    """
    key = str(migrations.resolve())
    details = _Details(key)
    snapshot = cache.load("graph", key)
    if snapshot and snapshot.get("names") == names and snapshot.get("stamps") == stamps:
        try:
            return RevisionGraph._from_snapshot(snapshot, details, root)
        except (KeyError, TypeError, ValueError):
            pass  # a damaged cache: read the files
    files = []
    for index, path in enumerate(names):
        stamp = stamps[3 * index : 3 * index + 3]
        file = details.file(path, stamp) or read_revision_file(Path(path))
        details.remember(path, stamp, file)
        files.append(file)
    graph = RevisionGraph(files, root)
    revs = [file.revision for file in files]
    cache.store(
        "graph",
        key,
        {
            "names": names,
            "stamps": stamps,
            "revs": revs,
            "down": [file.down_revision for file in files],
            "deps": {f.revision: f.depends_on for f in files if f.depends_on},
            "labels": graph.labels,
            "depth": [graph.depth[rev] for rev in revs],
        },
    )
    details.save()
    return graph


class _Details:
    """Each revision file's identifiers, docstring and checksum, by path and stamp."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._known: dict[str, object] | None = None
        self._fresh: dict[str, object] = {}

    def _load(self) -> dict[str, object]:
        if self._known is None:
            self._known = cache.load("revision-files", self.key) or {}
        return self._known

    def file(self, path: str, stamp: list[int]) -> RevisionFile | None:
        """Return the cached RevisionFile of `path`, if the file has not changed."""
        found = self._load().get(path)
        if not (isinstance(found, list) and len(found) == 7 and found[0] == stamp):
            return None
        _, revision, down, depends, labels, longdoc, sha256 = found
        try:
            return RevisionFile(
                revision=str(revision),
                down_revision=tuple(str(d) for d in down),
                path=Path(path),
                longdoc=str(longdoc),
                branch_labels=tuple(str(b) for b in labels),
                depends_on=tuple(str(d) for d in depends),
                sha256=str(sha256),
            )
        except TypeError:
            return None

    def remember(self, path: str, stamp: list[int], file: RevisionFile) -> None:
        self._fresh[path] = [
            stamp,
            file.revision,
            file.down_revision,
            file.depends_on,
            file.branch_labels,
            file.longdoc,
            file.checksum(),
        ]

    def save(self) -> None:
        cache.store("revision-files", self.key, self._fresh)


class _SnapshotFiles(Mapping[str, RevisionFile]):
    """The files of a snapshot, made into RevisionFile objects only when used."""

    def __init__(
        self,
        index: dict[str, int],
        names: list[str],
        stamps: list[int],
        details: _Details,
    ) -> None:
        self._index = index
        self._names = names
        self._stamps = stamps
        self._details = details
        self._made: dict[str, RevisionFile] = {}

    def __getitem__(self, revision: str) -> RevisionFile:
        made = self._made.get(revision)
        if made is None:
            i = self._index[revision]
            path, stamp = self._names[i], self._stamps[3 * i : 3 * i + 3]
            # a plan's few steps: read their files; many (checksums): load details
            cached = self._details.file(path, stamp) if len(self._made) > 16 else None
            made = cached or read_revision_file(Path(path))
            self._made[revision] = made
        return made

    def __contains__(self, revision: object) -> bool:
        return revision in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


_ASSIGNMENT = re.compile(
    r"^(revision|down_revision|branch_labels|depends_on)[ \t]*(?::[^=\n]*)?=(?!=)[ \t]*",
    re.M,
)
_DOCSTRING = re.compile(r"\A(?:\s*#[^\n]*\n)*\s*([rRuU]{0,2})(\"\"\"|'''|\"|')")
# an assignment Python would run that the fast path cannot see: let ast decide
_NESTED_ASSIGNMENT = re.compile(
    r"^[ \t]+(revision|down_revision|branch_labels|depends_on)[ \t]*(?::[^=\n]*)?=(?!=)",
    re.M,
)


def read_revision_file(path: Path) -> RevisionFile:
    """Read a revision file's identifiers and docstring from its source."""
    try:
        data = path.read_bytes()
        source = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RevisionGraphError(f"{path.name}: cannot read: {err}") from err
    sha256 = hashlib.sha256(data).hexdigest()
    found = _scan_source(source)
    if found is None:
        found = _scan_ast(path, source)
    if found is None:
        return replace(_from_import(path), sha256=sha256)
    values, longdoc = found
    revision = values.get("revision")
    if not isinstance(revision, str):
        return replace(_from_import(path), sha256=sha256)
    try:
        return RevisionFile(
            revision=revision,
            down_revision=as_revisions(values.get("down_revision")),
            path=path,
            longdoc=longdoc,
            branch_labels=as_revisions(values.get("branch_labels")),
            depends_on=as_revisions(values.get("depends_on")),
            sha256=sha256,
        )
    except TypeError:
        return replace(_from_import(path), sha256=sha256)


def _scan_source(source: str) -> tuple[dict[str, object], str] | None:
    """Fast path: top-level literal assignments and the docstring, by pattern."""
    if _NESTED_ASSIGNMENT.search(source):
        return None
    values: dict[str, object] = {}
    for match in _ASSIGNMENT.finditer(source):
        expression = _expression_at(source, match.end())
        if expression is None:
            return None
        try:
            values[match.group(1)] = ast.literal_eval(expression)
        except (ValueError, SyntaxError):
            return None
    if "revision" not in values:
        return None
    longdoc = ""
    doc = _DOCSTRING.match(source)
    if doc:
        quote = doc.group(2)
        end = source.find(quote, doc.end())
        while end != -1 and len(quote) == 1 and source[end - 1] == "\\":
            end = source.find(quote, end + 1)
        if end == -1:
            return None
        try:
            text = ast.literal_eval(source[doc.start(1) : end + len(quote)])
        except (ValueError, SyntaxError):
            return None
        if isinstance(text, str):
            longdoc = text.strip()
    return values, longdoc


def _expression_at(source: str, start: int) -> str | None:
    """Return the expression that starts at `start` and ends with its line."""
    depth = 0
    quote = ""
    i = start
    while i < len(source):
        char = source[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if source.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif char in "\"'":
            quote = source[i : i + 3] if source[i : i + 3] in ('"""', "'''") else char
            i += len(quote)
            continue
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "#":
            newline = source.find("\n", i)
            i = len(source) if newline == -1 else newline
            continue
        elif char == "\n" and depth <= 0:
            break
        i += 1
    if quote:
        return None
    return source[start:i].strip() or None


def _scan_ast(path: Path, source: str) -> tuple[dict[str, object], str] | None:
    """Slower path: module-level literal assignments, found by parsing."""
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as err:
        raise RevisionGraphError(f"{path.name}:{err.lineno}: {err.msg}") from err
    names = ("revision", "down_revision", "branch_labels", "depends_on")
    top_level = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            assigned = any(isinstance(t, ast.Name) and t.id in names for t in targets)
            if assigned and (
                id(node) not in top_level or isinstance(node, ast.AugAssign)
            ):
                return None
    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            name_node, value_node = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            name_node, value_node = node.target, node.value
        else:
            continue
        if isinstance(name_node, ast.Name) and name_node.id in names:
            try:
                values[name_node.id] = ast.literal_eval(value_node)
            except ValueError:
                return None
    if "revision" not in values:
        return None
    return values, (ast.get_docstring(tree) or "").strip()


def _from_import(path: Path) -> RevisionFile:
    """Last resort, as Alembic does it: import the file and read its attributes."""
    from alembic.util import load_python_file

    try:
        module = load_python_file(path.parent, path.name)
    except Exception as err:  # a revision file may raise anything on import
        raise RevisionGraphError(f"{path.name}: cannot import: {err}") from err
    revision = getattr(module, "revision", None)
    if not isinstance(revision, str):
        raise RevisionGraphError(f"{path.name}: no 'revision' variable declared")
    return RevisionFile(
        revision=revision,
        down_revision=as_revisions(getattr(module, "down_revision", None)),
        path=path,
        longdoc=(module.__doc__ or "").strip(),
        branch_labels=as_revisions(getattr(module, "branch_labels", None)),
        depends_on=as_revisions(getattr(module, "depends_on", None)),
    )


def as_revisions(value: object) -> tuple[str, ...]:
    """Return a revision field (None, a string or a sequence) as a tuple."""
    if value is None or value == ():
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(f"not a revision or a sequence of revisions: {value!r}")


@dataclass(frozen=True)
class Marker:
    """An environment's position on the graph."""

    environment: str
    kind: Literal["current", "target"]
    revisions: tuple[str, ...]
    """Resolved revisions; ``()`` is base."""

    @property
    def label(self) -> str:
        """Return ``prod: current``."""
        return f"{self.environment}: {self.kind}"
