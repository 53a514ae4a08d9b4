"""Every use of Alembic's private API, in one place.

migplan leans on a few names Alembic does not document: how `alembic.context`
proxies to the running EnvironmentContext, HeadMaintainer's bookkeeping of the
version table, building a RevisionStep without importing its module, how a
ScriptDirectory lists its revision files. pyproject.toml bounds Alembic's version
to the releases these are tested on; when one of them moves, this module is the one
to change. Alembic is imported only inside the functions.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from migplan.errors import RevisionGraphError

if TYPE_CHECKING:
    # Alembic's types, for the layers that may not import Alembic themselves
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import RevisionStep
    from alembic.script.revision import RevisionMap

    __all__ = ["Config", "RevisionMap"]

Node = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
"""(revision, down revisions, depends_on, branch labels) of one revision."""


def revision_map(nodes: Iterable[Node]) -> RevisionMap:
    """Alembic's RevisionMap of plain revisions, for resolving and ordering targets."""
    from alembic.script import revision as alembic_revision

    revisions = []
    for revision, down, depends, labels in nodes:
        revisions.append(
            alembic_revision.Revision(
                revision,
                down or None,
                dependencies=depends or None,
                branch_labels=labels or None,
            )
        )
    return _checked(alembic_revision.RevisionMap(lambda: revisions))


def script_map(scripts: Iterable[tuple[Node, str, str]]) -> RevisionMap:
    """Alembic's RevisionMap of Script objects, each importing its module only when
    its migration runs: what a ScriptDirectory and RevisionSteps need."""
    from alembic.script import revision as alembic_revision

    lazy = _lazy_script_class()
    made = [lazy(node, path, longdoc) for node, path, longdoc in scripts]
    return _checked(alembic_revision.RevisionMap(lambda: made))


def _checked(revision_map: RevisionMap) -> RevisionMap:
    from alembic.script import revision as alembic_revision

    try:
        revision_map.heads  # noqa: B018 - builds the map, checking labels
    except alembic_revision.RevisionError as err:
        raise RevisionGraphError(f"invalid revision graph: {err}") from err
    return revision_map


@functools.cache
def _lazy_script_class() -> type[Any]:
    """Alembic's `Script`, whose module is imported on first use."""
    from alembic.script import Script
    from alembic.script import revision as alembic_revision
    from alembic.util import load_python_file

    class LazyScript(Script):
        def __init__(self, node: Node, path: str, longdoc: str) -> None:
            revision, down, depends, labels = node
            self.path = path
            self._longdoc = longdoc
            try:
                alembic_revision.Revision.__init__(
                    self,
                    revision,
                    down or None,
                    dependencies=depends or None,
                    branch_labels=labels or None,
                )
            except alembic_revision.RevisionError as err:
                raise RevisionGraphError(f"{Path(path).name}: {err}") from err

        @functools.cached_property
        def module(self) -> Any:  # type: ignore[override]
            path = Path(self.path)
            return load_python_file(path.parent, path.name)

        @property
        def longdoc(self) -> str:
            return self._longdoc

    return LazyScript


class RevisionProblem(Exception):
    """One of Alembic's refusals of a target, as plain data."""

    def __init__(
        self,
        kind: str,
        text: str,
        argument: str | None = None,
        heads: tuple[str, ...] = (),
    ) -> None:
        super().__init__(text)
        self.kind = kind
        """multiple heads, unresolved, not an ancestor, refused or past the end."""
        self.text = text
        self.argument = argument
        self.heads = heads


@contextmanager
def revision_problems() -> Iterator[None]:
    """Turn Alembic's errors about a target into RevisionProblem."""
    from alembic.script import revision as alembic_revision
    from alembic.util import CommandError

    try:
        yield
    except alembic_revision.MultipleHeads as err:
        raise RevisionProblem(
            "multiple heads", str(err), heads=tuple(sorted(err.heads))
        ) from err
    except alembic_revision.ResolutionError as err:
        argument = getattr(err, "argument", None)
        raise RevisionProblem(
            "unresolved", str(err), None if argument is None else str(argument)
        ) from err
    except alembic_revision.RangeNotAncestorError as err:
        raise RevisionProblem("not an ancestor", str(err)) from err
    except (alembic_revision.RevisionError, CommandError) as err:
        raise RevisionProblem("refused", str(err)) from err
    except AssertionError as err:
        # Alembic asserts on relative targets past either end of the graph
        # (`head-1` of a single revision, `a1+1`): its refusal too
        raise RevisionProblem("past the end", str(err)) from err


def get_revisions(revision_map: RevisionMap, expr: str) -> tuple[str, ...]:
    """The revision ids an expression names, as Alembic resolves it."""
    from alembic.script import revision as alembic_revision

    return tuple(
        r.revision
        for r in revision_map.get_revisions(expr)
        if isinstance(r, alembic_revision.Revision)
    )


def revision_step(
    revision_map: RevisionMap, revision: str, is_upgrade: bool, *, runnable: bool
) -> RevisionStep:
    """Return Alembic's step object for one revision; its module is imported only
    if the step is to be `runnable`."""
    from alembic.runtime.migration import RevisionStep

    script = revision_map.get_revision(revision)
    if runnable:
        return RevisionStep(revision_map, script, is_upgrade)  # type: ignore[arg-type]
    step = RevisionStep.__new__(RevisionStep)
    step.revision_map = revision_map
    step.revision = script  # type: ignore[assignment]
    step.is_upgrade = is_upgrade
    return step


def simulate_heads(
    revision_map: RevisionMap,
    current: tuple[str, ...],
    steps: Iterable[tuple[str, bool]],
) -> tuple[str, ...]:
    """The version table after running (revision, is_upgrade) steps, as Alembic's
    HeadMaintainer would write it; refused where Alembic's would fail too."""
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
        step = revision_step(revision_map, revision, is_upgrade, runnable=False)
        try:
            maintainer.update_to_step(step)
        except KeyError as err:
            # as in Alembic, whose HeadMaintainer fails the same way after
            # running the migration: refuse before running anything
            raise RevisionGraphError(
                f"Alembic cannot record {'upgrade' if is_upgrade else 'downgrade'} "
                f"{revision} in the version table (its depends_on lies above one "
                f"of its own down revisions: {err})"
            ) from err
    return tuple(sorted(maintainer.heads))


@contextmanager
def environment_class(factory: Callable[..., EnvironmentContext]) -> Iterator[None]:
    """Make `alembic.command`'s commands make their EnvironmentContext with
    `factory` (migplan's, which holds env.py to the environment's URL)."""
    import alembic.command

    original = vars(alembic.command)["EnvironmentContext"]
    setattr(alembic.command, "EnvironmentContext", factory)  # noqa: B010
    try:
        yield
    finally:
        setattr(alembic.command, "EnvironmentContext", original)  # noqa: B010


def share_proxy(subclass: type[EnvironmentContext]) -> None:
    """Let `alembic.context` proxy to an EnvironmentContext subclass as it does to
    EnvironmentContext itself (the proxy set-up is keyed by class)."""
    from alembic.runtime.environment import EnvironmentContext

    subclass._setups[subclass] = EnvironmentContext._setups[EnvironmentContext]


def revision_paths(config: Config) -> list[Path]:
    """The revision files a ScriptDirectory would load, in Alembic's order."""
    from alembic.script import Script
    from alembic.script.base import _only_source_rev_file

    script = script_directory(config)
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


def script_directory(config: Config) -> Any:
    """Return Alembic's ScriptDirectory, turning its errors into ours."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(config)
    except CommandError as err:
        raise RevisionGraphError(str(err)) from err


def compiled_revisions(config: Config) -> Iterator[tuple[Node, Path, str]]:
    """Read revisions by importing them, as Alembic does (compiled-only files)."""
    from alembic.script import revision as alembic_revision
    from alembic.util import CommandError

    script = script_directory(config)
    try:
        for rev in script.walk_revisions():
            dependencies = rev.dependencies
            if isinstance(dependencies, str):
                dependencies = (dependencies,)
            node: Node = (
                rev.revision,
                tuple(rev._versioned_down_revisions),
                tuple(dependencies or ()),
                tuple(sorted(rev.branch_labels)),
            )
            yield node, Path(rev.path), rev.longdoc
    except (CommandError, alembic_revision.RevisionError) as err:
        raise RevisionGraphError(str(err)) from err


def load_python_file(path: Path) -> Any:
    """Import a file as Alembic imports a revision file."""
    from alembic.util import load_python_file as load

    return load(str(path.parent), path.name)


def base_config(ini: Path | None, script_location: Path) -> Config:
    """An Alembic Config of an ini file (if any) and a script location, for listing
    revision files; the db layer builds the Config that runs migrations."""
    from alembic.config import Config

    config = Config(str(ini) if ini else None)
    config.set_main_option("script_location", str(script_location))
    return config


class _MakoWithoutPygments:
    """A finder that tells Mako its Pygments plugin is missing.

    Alembic imports Mako's exceptions module for the plain-text error of a
    revision template that fails to render; that module, when Pygments is
    installed (pytest, rich and IPython bring it), imports Pygments' lexers and
    formatters at once for the colours of its HTML error pages, some 4 MB that
    neither Alembic nor migplan ever use. Told the plugin is missing, Mako keeps
    its plain-text pages. Only Mako's own import, while it runs, is answered so;
    the finder then takes itself off `sys.meta_path`.
    """

    @classmethod
    def find_spec(cls, name: str, path: object = None, target: object = None) -> None:
        if name == "mako.ext.pygmentplugin" and "mako.exceptions" in sys.modules:
            if cls in sys.meta_path:
                sys.meta_path.remove(cls)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def lean_mako() -> None:
    """Keep Pygments out of this process where Alembic would load it for nothing
    (see _MakoWithoutPygments); once Mako is imported, too late to matter."""
    if (
        "mako.exceptions" not in sys.modules
        and _MakoWithoutPygments not in sys.meta_path
    ):
        sys.meta_path.insert(0, _MakoWithoutPygments)
