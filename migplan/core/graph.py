"""The revision graph: which revision lies on which, heads, and the order in which
Alembic runs them. Pure: built from RevisionFile values, it reads nothing.

A plan along one line of history is worked out here, walking down from target and
current revisions together so that the cost follows the plan, not the history.
Everything else goes to Alembic's own `RevisionMap`, built from the same revisions,
so that targets resolve and steps come out exactly as `alembic upgrade` /
`alembic downgrade` would run them.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from migplan import compat
from migplan.core.names import did_you_mean
from migplan.core.revisions import ILLEGAL
from migplan.core.revisions import RELATIVE
from migplan.core.revisions import Heads
from migplan.core.revisions import RevisionFile
from migplan.core.revisions import RevisionFiles
from migplan.core.revisions import message_of
from migplan.errors import NotAncestor
from migplan.errors import RevisionGraphError
from migplan.errors import TargetError


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
            RevisionFiles(by_revision),
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
        files: RevisionFiles,
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

    @functools.cached_property
    def children(self) -> dict[str, list[str]]:
        """Each revision's children: the revisions whose down revisions name it."""
        children: dict[str, list[str]] = {rev: [] for rev in self.down}
        for rev, below in self.down.items():
            for parent in below:
                if parent in children:
                    children[parent].append(rev)
        return children

    @classmethod
    def trusted(
        cls,
        files: RevisionFiles,
        down: dict[str, tuple[str, ...]],
        depends: dict[str, tuple[str, ...]],
        labels: dict[str, str],
        depth: dict[str, int],
        root: Path | None,
    ) -> RevisionGraph:
        """Rebuild a graph already validated (a snapshot of an unchanged history),
        without checking it again. `files` may make its values on first use."""
        graph = cls.__new__(cls)
        graph._setup(files, down, depends, labels, root)
        graph.__dict__["depth"] = depth
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
    def map(self) -> compat.RevisionMap:
        """Alembic's RevisionMap of these revisions, for what migplan does not
        order itself (imports Alembic)."""
        return compat.revision_map(self.nodes())

    def nodes(self) -> Iterator[compat.Node]:
        """(revision, down revisions, depends_on, branch labels) of each revision."""
        labels: dict[str, list[str]] = {}
        for label, rev in self.labels.items():
            labels.setdefault(rev, []).append(label)
        for rev, down in self.down.items():
            yield rev, down, self.depends.get(rev, ()), tuple(labels.get(rev, ()))

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
        below = set(itertools.chain.from_iterable(self.down.values()))
        return tuple(sorted(rev for rev in self.down if rev not in below))

    def get(self, revision: str) -> RevisionFile:
        """Return the file of a full revision id."""
        return self.files[revision]

    def checksum(self, revision: str) -> str:
        """Return the sha256 of a revision's file, as it was read."""
        return self.files.checksum(revision)

    def message(self, revision: str) -> str:
        """Return the first paragraph of a revision's docstring, on one line."""
        return message_of(self.files.longdoc(revision))

    def relative_path(self, revision: str) -> str:
        """Return a revision's path relative to the project, for display."""
        path = self.files.path_text(revision)
        root = self._root_prefix
        if root and path.startswith(root):
            return path[len(root) :].replace("\\", "/")
        return path.replace("\\", "/")

    @functools.cached_property
    def _root_prefix(self) -> str:
        # the root and a separator, as the paths below it start
        return "" if self.root is None else str(self.root / "_")[:-1]

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
        resolved: set[str] = set()
        for expr in target:
            if RELATIVE.match(expr):
                raise TargetError(
                    f"target {expr!r} is relative; it resolves only against a "
                    "database's current revision"
                )
            with self._translate_errors(expr):
                resolved.update(compat.get_revisions(self.map, expr))
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
        return self._alembic_order(pending, resolved)[::-1]

    @functools.cached_property
    def _insertion(self) -> dict[str, int]:
        """Each revision's place in the files' order: Alembic's map keeps it."""
        return {rev: index for index, rev in enumerate(self.down)}

    @functools.cached_property
    def _ancestor_bits(self) -> dict[str, int]:
        """Each revision's ancestors (itself included) as bits of an integer, one
        bit per revision in the files' order: a set test and a discard cost a
        shift, and every set is made in one pass, parents first."""
        insertion = self._insertion
        bits: dict[str, int] = {}
        for rev in sorted(self.down, key=self.depth.__getitem__):
            mask = 1 << insertion[rev]
            for parent in self._parents(rev):
                mask |= bits[parent]
            bits[rev] = mask
        return bits

    def _bits_of(self, revisions: Sequence[str]) -> list[int]:
        bits = self._ancestor_bits
        return [bits[rev] for rev in revisions]

    def _alembic_order(self, todo: set[str], heads: Sequence[str]) -> list[str]:
        """The revisions of `todo`, newest first, in exactly the order of Alembic's
        RevisionMap._topological_sort from `heads` (a graph without depends_on:
        the caller checks): walk down one branch as long as no other head still
        needs its revision, taking the branches in the files' order."""
        todo = set(todo)
        insertion = self._insertion
        current = sorted({h for h in heads if h in todo}, key=insertion.__getitem__)
        # each head's ancestors, as bits: only asked of the graph once two heads
        # compete (one walking down a line needs none: a short plan near the top
        # of a long history makes no bits of the whole history)
        ancestors = self._bits_of(current) if len(current) > 1 else None
        out: list[str] = []
        index = 0
        while current:
            candidate = current[index]
            bit = 1 << insertion[candidate]
            for other, below in enumerate(ancestors or ()):
                if other != index and below & bit:
                    index = other  # another head needs it: that one goes first
                    break
            else:
                if candidate in todo:
                    out.append(candidate)
                    todo.remove(candidate)
                down = self.down[candidate]
                added = [r for r in down if r in todo and r not in current]
                if not added:
                    del current[index]
                    if ancestors is not None:
                        del ancestors[index]
                    index = max(index - 1, 0)
                elif len(down) == 1:
                    current[index] = added[0]
                    if ancestors is not None:
                        ancestors[index] &= ~bit
                else:
                    current[index] = added[0]
                    current.extend(added[1:])
                    if ancestors is None:
                        ancestors = self._bits_of(current)
                    else:
                        ancestors[index] = self._ancestor_bits[added[0]]
                        ancestors.extend(self._bits_of(added[1:]))
        if todo:
            raise AssertionError(f"revisions left unordered: {sorted(todo)}")
        return out

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
        return compat.simulate_heads(self.map, current, steps)

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

    @contextmanager
    def _translate_errors(self, expr: str) -> Iterator[None]:
        try:
            with compat.revision_problems():
                yield
        except compat.RevisionProblem as err:
            raise self._target_error(expr, err) from err

    def _target_error(self, expr: str, err: compat.RevisionProblem) -> TargetError:
        if err.kind == "multiple heads":
            return TargetError(
                f"target {expr!r} is ambiguous: there are several heads "
                f"({', '.join(err.heads)}); use 'heads', a list of revisions or "
                "'branchname@head', or merge them: migplan db merge -m "
                f'"merge heads" {" ".join(err.heads)}'
            )
        if err.kind == "unresolved":
            return TargetError(self._resolution_message(expr, err))
        if err.kind == "not an ancestor":
            return NotAncestor(f"target {expr!r}: {err.text}")
        if err.kind == "past the end":
            return TargetError(f"target {expr!r} goes past the end of the graph")
        return TargetError(f"target {expr!r}: {err.text}")

    def _resolution_message(self, expr: str, err: compat.RevisionProblem) -> str:
        text = err.text
        if text.startswith("Multiple revisions start with"):
            prefix = err.argument or expr
            candidates = sorted(r for r in self.files if r.startswith(prefix))
            return (
                f"revision prefix {prefix!r} is ambiguous: it matches "
                f"{', '.join(candidates)}"
            )
        argument = err.argument or expr
        names = [*self.files, *self.labels]
        hint = did_you_mean(argument, names, n=3, cutoff=0.5)
        if "No such revision or branch" in text or "not present" in text:
            return f"unknown revision {argument!r} in target {expr!r}{hint}"
        return f"target {expr!r}: {text}{hint}"


def _as_identifier(target: Sequence[str]) -> str | tuple[str, ...]:
    return target[0] if len(target) == 1 else tuple(target)
