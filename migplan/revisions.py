"""Alembic script directory as a graph: read revision files, resolve targets.

The graph is Alembic's own `RevisionMap`, fed with revisions read from the files'
source instead of by importing every one of them: targets resolve and steps come
out in exactly the order `alembic upgrade` / `alembic downgrade` would run them,
and a revision's module is imported only when its migration actually runs.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import hashlib
import re
import sys
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from alembic.config import Config
from alembic.script import Script
from alembic.script import ScriptDirectory
from alembic.script import revision as alembic_revision
from alembic.util import CommandError
from alembic.util import load_python_file

from migplan import lint
from migplan.errors import NotAncestor
from migplan.errors import RevisionGraphError
from migplan.errors import TargetError

if TYPE_CHECKING:
    from typing import TextIO

    from alembic.runtime.migration import RevisionStep

    from migplan.config import Project
    from migplan.lint import Analysis

Heads = tuple[str, ...]
"""A set of revisions, sorted: the heads of a database or a resolved target."""


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

    @property
    def message(self) -> str:
        """The first paragraph of the docstring, on one line (Alembic's `doc`)."""
        return " ".join(re.split("\n\n", self.longdoc)[0].split())

    def checksum(self) -> str:
        """Return the sha256 of the file's bytes."""
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


class _LazyScript(Script):
    """An Alembic `Script` whose module is imported on first use."""

    def __init__(self, file: RevisionFile) -> None:
        self.file = file
        self.path = str(file.path)
        alembic_revision.Revision.__init__(
            self,
            file.revision,
            file.down_revision or None,
            dependencies=file.depends_on or None,
            branch_labels=file.branch_labels or None,
        )

    @functools.cached_property
    def module(self) -> ModuleType:  # type: ignore[override]
        path = Path(self.path)
        return load_python_file(path.parent, path.name)

    @property
    def longdoc(self) -> str:
        return self.file.longdoc


class RevisionGraph:
    """The revisions of a project and the relations between them."""

    def __init__(self, files: Iterable[RevisionFile], root: Path | None = None) -> None:
        self.root = root
        self._analyses: dict[str, Analysis] = {}
        self._checksums: dict[str, str] = {}
        self.files: dict[str, RevisionFile] = {}
        scripts: list[_LazyScript] = []
        for file in files:
            if file.revision in self.files:
                other = self.files[file.revision].path.name
                raise RevisionGraphError(
                    f"revision {file.revision!r} is declared twice: in {other} and "
                    f"in {file.path.name}"
                )
            self.files[file.revision] = file
            try:
                scripts.append(_LazyScript(file))
            except alembic_revision.RevisionError as err:
                raise RevisionGraphError(f"{file.path.name}: {err}") from err
        self.map = alembic_revision.RevisionMap(lambda: scripts)
        for file in self.files.values():
            for down in (*file.down_revision, *file.depends_on):
                if down not in self.files and not self._is_label(down):
                    raise RevisionGraphError(
                        f"{file.path.name}: revision {file.revision!r} refers to "
                        f"{down!r}, which no revision file declares"
                    )
        try:
            self.map.heads  # noqa: B018 - builds the map, detecting cycles
        except alembic_revision.RevisionError as err:
            raise RevisionGraphError(f"invalid revision graph: {err}") from err

    def _is_label(self, name: str) -> bool:
        return any(name in f.branch_labels for f in self.files.values())

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

    @property
    def heads(self) -> Heads:
        """The head revisions of the graph, sorted."""
        return tuple(sorted(self.map.heads))

    @property
    def bases(self) -> Heads:
        """The base revisions of the graph, sorted."""
        return tuple(sorted(self.map.bases))

    def get(self, revision: str) -> RevisionFile:
        """Return the file of a full revision id."""
        return self.files[revision]

    def analysis(self, revision: str) -> Analysis:
        """Return the lint findings of a revision's source (read once)."""
        if revision not in self._analyses:
            self._analyses[revision] = lint.analyze(self.files[revision].source())
        return self._analyses[revision]

    def checksum(self, revision: str) -> str:
        """Return the sha256 of a revision's file (read once)."""
        if revision not in self._checksums:
            self._checksums[revision] = self.files[revision].checksum()
        return self._checksums[revision]

    def relative_path(self, revision: str) -> str:
        """Return a revision's path relative to the project, for display."""
        path = self.files[revision].path
        if self.root is not None and path.is_relative_to(self.root):
            return path.relative_to(self.root).as_posix()
        return path.as_posix()

    def resolve(self, target: Sequence[str]) -> Heads:
        """Return the revisions a target names (``()`` for ``base``)."""
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

    def upgrade_revisions(self, target: Sequence[str], current: Heads) -> list[str]:
        """Return, in order, the revisions `alembic upgrade TARGET` would run."""
        destination = _as_identifier(target)
        with self._translate_errors(" ".join(target)):
            revs = self.map.iterate_revisions(destination, current, implicit_base=True)
            return [rev.revision for rev in reversed(list(revs))]

    def downgrade_revisions(self, target: Sequence[str], current: Heads) -> list[str]:
        """Return, in order, the revisions `alembic downgrade TARGET` would run."""
        destination = _as_identifier(target)
        with self._translate_errors(" ".join(target)):
            revs = self.map.iterate_revisions(
                current, destination, select_for_downgrade=True
            )
            return [rev.revision for rev in revs]

    def heads_after(self, current: Heads, steps: Iterable[tuple[str, bool]]) -> Heads:
        """Return the database's heads after running (revision, is_upgrade) steps."""
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

    def is_ancestor(self, ancestor: str, revision: str) -> bool:
        """Return whether `ancestor` is `revision` or lies below it."""
        nodes = self.map._get_ancestor_nodes(
            [self.map.get_revision(revision)], include_dependencies=True
        )
        return any(node.revision == ancestor for node in nodes if node is not None)

    def ancestors(self, revisions: Iterable[str]) -> set[str]:
        """Return `revisions` and everything below them (dependencies included)."""
        revs = [self.map.get_revision(r) for r in revisions]
        nodes = self.map._get_ancestor_nodes(revs, include_dependencies=True)
        return {node.revision for node in nodes if node is not None}

    def script_directory(self, config: Config) -> ScriptDirectory:
        """Return Alembic's ScriptDirectory for `config`, sharing this graph."""
        script = script_directory(config)
        script.revision_map = self.map
        return script

    @contextmanager
    def _translate_errors(self, expr: str) -> Iterator[None]:
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
        names = [
            *self.files,
            *{lbl for f in self.files.values() for lbl in f.branch_labels},
        ]
        close = difflib.get_close_matches(argument, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        if "No such revision or branch" in text or "not present" in text:
            return f"unknown revision {argument!r} in target {expr!r}{hint}"
        return f"target {expr!r}: {text}{hint}"


_RELATIVE = re.compile(r"^(?:(?:.+?)@)?(?:\w+)?[+-]\d+$")


def _as_identifier(target: Sequence[str]) -> str | tuple[str, ...]:
    return target[0] if len(target) == 1 else tuple(target)


TEMPLATES = Path(__file__).with_name("templates")


class MigplanConfig(Config):
    """Alembic's Config, with migplan's env.py templates beside Alembic's own."""

    def get_template_directory(self) -> str:
        templates = self.attributes.get("migplan.templates")
        return str(templates) if templates else super().get_template_directory()


def alembic_config(
    project: Project,
    url: str | None = None,
    *,
    cmd_opts: argparse.Namespace | None = None,
    stdout: TextIO | None = None,
) -> Config:
    """Return the Alembic Config of a project, pointed at `url` when given.

    The ini file is the one Flask-Migrate keeps in the migrations folder, else a
    plain Alembic project's alembic.ini beside migplan.yaml; either way the
    script location and the URL come from migplan.yaml.
    """
    ini = next(
        (
            path
            for path in (
                project.migrations / "alembic.ini",
                project.root / "alembic.ini",
            )
            if path.is_file()
        ),
        None,
    )
    options = cmd_opts or argparse.Namespace()
    if not hasattr(options, "x"):
        options.x = []
    config = MigplanConfig(ini, cmd_opts=options, stdout=stdout or sys.stdout)
    config.set_main_option("script_location", str(project.migrations))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def script_directory(config: Config) -> ScriptDirectory:
    """Return Alembic's ScriptDirectory, turning its errors into ours."""
    try:
        return ScriptDirectory.from_config(config)
    except CommandError as err:
        raise RevisionGraphError(str(err)) from err


def load_graph(config: Config, root: Path | None = None) -> RevisionGraph:
    """Read every revision file of the script directory into a graph."""
    script = script_directory(config)
    if script.sourceless:
        # compiled-only revisions: let Alembic import them, it is the only way
        return RevisionGraph(_from_modules(script), root)
    files = (read_revision_file(path) for path in revision_paths(script))
    return RevisionGraph(files, root)


def revision_paths(script: ScriptDirectory) -> list[Path]:
    """Return the revision files Alembic would load, in Alembic's order."""
    from alembic.script.base import _only_source_rev_file

    seen: set[Path] = set()
    paths: list[Path] = []
    for location in script._version_locations:
        if not location.exists():
            continue
        for path in Script._list_py_dir(script, location):
            if not _only_source_rev_file.match(path.name):
                continue
            real = path.resolve()
            if real not in seen:
                seen.add(real)
                paths.append(real)
    return paths


def _from_modules(script: ScriptDirectory) -> Iterator[RevisionFile]:
    try:
        for rev in script.walk_revisions():
            yield RevisionFile(
                rev.revision,
                tuple(rev._versioned_down_revisions),
                Path(rev.path),
                rev.longdoc,
                tuple(sorted(rev.branch_labels)),
                _as_tuple(rev.dependencies),
            )
    except (CommandError, alembic_revision.RevisionError) as err:
        raise RevisionGraphError(str(err)) from err


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
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RevisionGraphError(f"{path.name}: cannot read: {err}") from err
    found = _scan_source(source)
    if found is None:
        found = _scan_ast(path, source)
    if found is None:
        return _from_import(path)
    values, longdoc = found
    revision = values.get("revision")
    if not isinstance(revision, str):
        return _from_import(path)
    try:
        return RevisionFile(
            revision=revision,
            down_revision=_as_tuple(values.get("down_revision")),
            path=path,
            longdoc=longdoc,
            branch_labels=_as_tuple(values.get("branch_labels")),
            depends_on=_as_tuple(values.get("depends_on")),
        )
    except TypeError:
        return _from_import(path)


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
    try:
        module = load_python_file(path.parent, path.name)
    except Exception as err:  # a revision file may raise anything on import
        raise RevisionGraphError(f"{path.name}: cannot import: {err}") from err
    revision = getattr(module, "revision", None)
    if not isinstance(revision, str):
        raise RevisionGraphError(f"{path.name}: no 'revision' variable declared")
    return RevisionFile(
        revision=revision,
        down_revision=_as_tuple(getattr(module, "down_revision", None)),
        path=path,
        longdoc=(module.__doc__ or "").strip(),
        branch_labels=_as_tuple(getattr(module, "branch_labels", None)),
        depends_on=_as_tuple(getattr(module, "depends_on", None)),
    )


def _as_tuple(value: object) -> tuple[str, ...]:
    if value is None or value == ():
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(f"not a revision or a sequence of revisions: {value!r}")
