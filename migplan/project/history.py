"""A project's revision graph, read from its migrations folder and cached.

Two cache entries per folder: a snapshot of the validated graph, used as it is when
no file changed (the digest of their paths, sizes, mtimes and inodes says so), and
each file's details (identifiers, docstring, checksum), used for the files that did
not change.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from stat import S_ISREG
from typing import Any
from typing import TypeVar
from typing import cast

from migplan import compat
from migplan.core.graph import RevisionGraph
from migplan.core.revisions import RevisionFile
from migplan.core.revisions import RevisionFiles
from migplan.errors import RevisionGraphError
from migplan.project import cache
from migplan.project import revision_files
from migplan.project.revision_files import file_checksum

T = TypeVar("T")

READER = 2
"""The version of what revision_files.read makes of a file."""


def cache_key(migrations: Path) -> str:
    """The key of a migrations folder's cache entries. What the reader makes of a
    file is part of it: a migplan whose reader changed reads every file again."""
    return f"{READER}:{migrations.resolve()}"


def load_graph(migrations: Path, ini: Path | None, root: Path) -> RevisionGraph:
    """Read every revision file of a migrations folder into a graph.

    Files whose size, mtime and inode match the cache are not read again; when
    none changed, the graph is rebuilt from the cache without validating it again.
    """
    if not migrations.is_dir():
        raise RevisionGraphError(
            f"{migrations}: no such folder (create it with 'migplan db init')"
        )
    if _ini_changes_listing(ini):
        config = compat.base_config(ini, migrations)
        if compat.script_directory(config).sourceless:
            # compiled-only revisions: let Alembic import them, it is the only way
            return RevisionGraph(_compiled(config), root)
        names = [str(path) for path in compat.revision_paths(config)]
        stamps = _stamps(names)
    else:
        names, stamps = _versions(migrations / "versions")
    return _load_cached(migrations, names, stamps, root)


def _compiled(config: compat.Config) -> Iterator[RevisionFile]:
    for (revision, down, depends, labels), path, longdoc in compat.compiled_revisions(
        config
    ):
        yield RevisionFile(
            revision,
            down,
            path,
            longdoc,
            labels,
            depends,
            sha256=file_checksum(path),
        )


def _ini_changes_listing(ini: Path | None) -> bool:
    """Whether the ini tells Alembic to look for revisions elsewhere or otherwise."""
    import configparser

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
    stamps: size, mtime and inode of each, in one flat list.

    One stat per file, relative to the open folder where the system allows (no
    path to resolve each time): at 5,000 revisions this listing is most of a warm
    plan's growth."""
    base = str(folder)
    relative = os.stat in os.supports_dir_fd  # not on Windows
    try:
        fd = (
            os.open(base, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            if relative
            else -1
        )
    except FileNotFoundError:
        return [], []
    except OSError as err:
        raise RevisionGraphError(f"{folder}: cannot list: {err.strerror}") from err
    prefix = os.path.join(base, "")
    names: list[str] = []
    stamps: list[int] = []
    try:
        for name in sorted(os.listdir(fd if relative else base)):
            if not name.endswith(".py") or name.startswith((".#", "__init__")):
                continue
            try:
                if relative:
                    stat = os.stat(name, dir_fd=fd)
                else:
                    stat = os.stat(prefix + name)
            except FileNotFoundError:
                continue  # a dangling link, or a file gone since the listing
            if S_ISREG(stat.st_mode):
                names.append(prefix + name)
                stamps += (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    except OSError as err:
        raise RevisionGraphError(f"{folder}: cannot list: {err.strerror}") from err
    finally:
        if relative:
            os.close(fd)
    return names, stamps


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
    file changed (the digest of the listing says so), and each file's details
    (identifiers, docstring, checksum), used for the files that did not change.
    """
    key = cache_key(migrations)
    details = _Details(key)
    listing = _listing(names, stamps)
    snapshot = cache.load("graph", key)
    if snapshot and snapshot.get("listing") == listing:
        try:
            return _from_snapshot(snapshot, names, stamps, details, root)
        except (KeyError, ValueError):
            pass  # a damaged cache: read the files
    files = []
    for index, path in enumerate(names):
        stamp = stamps[3 * index : 3 * index + 3]
        file = details.file(path, stamp) or revision_files.read(Path(path))
        details.remember(path, stamp, file)
        files.append(file)
    graph = RevisionGraph(files, root)
    revs = [file.revision for file in files]
    cache.store(
        "graph",
        key,
        {
            "listing": listing,
            "revs": revs,
            "down": [file.down_revision for file in files],
            "deps": {f.revision: f.depends_on for f in files if f.depends_on},
            "labels": graph.labels,
            "depth": [graph.depth[rev] for rev in revs],
        },
    )
    details.save()
    return graph


def _listing(names: list[str], stamps: list[int]) -> str:
    """A digest of the folder's listing: every file's path, size, mtime and inode.
    A snapshot made of the same listing is of the same files: it keeps this, not
    the listing (the fresh one is at hand), and so stays a third of the size."""
    import array
    import hashlib

    digest = hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape"))
    try:
        digest.update(array.array("q", stamps))
    except OverflowError:  # an inode number past 2**63
        digest.update(str(stamps).encode())
    return digest.hexdigest()


def _from_snapshot(
    snapshot: dict[str, Any],
    names: list[str],
    stamps: list[int],
    details: _Details,
    root: Path,
) -> RevisionGraph:
    """Rebuild the graph of an unchanged, already validated history, whose files
    are `names` (with their `stamps`).

    ValueError unless every field has its shape and the graph is whole (every
    down revision and dependency is one of its revisions): a damaged cache of any
    shape is read again from the files, never trusted."""
    # each check runs in C over a whole list (map, set): a warm plan at 5,000
    # revisions reads some 20,000 values here
    revs = _strings(snapshot["revs"])
    down_lists = _only(list, _list(snapshot["down"]))
    _only(str, itertools.chain.from_iterable(down_lists))
    down = list(map(tuple, down_lists))
    depth = _only(int, _list(snapshot["depth"]))
    deps = {_string(k): _strings(v) for k, v in _dict(snapshot["deps"]).items()}
    labels = {_string(k): _string(v) for k, v in _dict(snapshot["labels"]).items()}
    index = dict(zip(revs, range(len(revs)), strict=True))
    if not len(index) == len(names) == len(down) == len(depth):
        raise ValueError("a snapshot of inconsistent lengths")
    known = set(index) | set(labels)
    if any(r not in index for rs in down for r in rs) or any(
        d not in known for ds in deps.values() for d in ds
    ):
        raise ValueError("a snapshot of a graph that is not whole")
    return RevisionGraph.trusted(
        _SnapshotFiles(index, names, stamps, details),
        dict(zip(revs, down, strict=True)),
        deps,
        labels,
        dict(zip(revs, depth, strict=True)),
        root,
    )


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"not a list: {value!r}")
    return value


def _dict(value: object) -> dict[object, object]:
    if not isinstance(value, dict):
        raise ValueError(f"not a mapping: {value!r}")
    return value


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    return value


def _strings(value: object) -> tuple[str, ...]:
    return tuple(_only(str, _list(value)))


def _only(kind: type[T], values: Iterable[object]) -> list[T]:
    """`values` as a list, each exactly of type `kind` (so no bool for int)."""
    found = list(values)
    if not set(map(type, found)) <= {kind}:
        raise ValueError(f"not all of type {kind.__name__}")
    return cast("list[T]", found)


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

    def entry(self, path: str, stamp: list[int]) -> list[object] | None:
        """The cached details of `path` if the file has not changed: [stamp,
        revision, down, depends, labels, docstring, checksum], the last two
        strings."""
        found = self._load().get(path)
        if (
            isinstance(found, list)
            and len(found) == 7
            and found[0] == stamp
            and isinstance(found[5], str)
            and isinstance(found[6], str)
        ):
            return found
        return None

    def forget(self, path: str) -> None:
        """Let go of the entry of `path`: what was needed of it is taken."""
        self._load().pop(path, None)

    def file(self, path: str, stamp: list[int]) -> RevisionFile | None:
        """Return the cached RevisionFile of `path`, if the file has not changed
        (asked once per file: the entry is let go, its values now the file's)."""
        found = self.entry(path, stamp)
        self.forget(path)
        if found is None:
            return None
        _, revision, down, depends, labels, longdoc, sha256 = found
        try:
            return RevisionFile(
                revision=_string(revision),
                down_revision=_strings(down),
                path=Path(path),
                longdoc=_string(longdoc),
                branch_labels=_strings(labels),
                depends_on=_strings(depends),
                sha256=_string(sha256),
            )
        except ValueError:
            return None  # a damaged entry: read the file

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


class _SnapshotFiles(RevisionFiles):
    """The files of a snapshot, made into RevisionFile objects only when used; a
    plan's paths, docstrings and checksums come from the cache without them."""

    def __init__(
        self,
        index: dict[str, int],
        names: Sequence[str],
        stamps: list[int],
        details: _Details,
    ) -> None:
        super().__init__()
        self._index = index
        self._names = names
        self._stamps = stamps
        self._details = details
        self._made: dict[str, RevisionFile] = {}
        self._facts: dict[str, tuple[str, str]] = {}
        """(docstring, checksum) of the files asked for and not made."""
        self._asked = 0

    def __getitem__(self, revision: str) -> RevisionFile:
        made = self._made.get(revision)
        if made is None:
            i = self._index[revision]
            path, stamp = self._names[i], self._stamps[3 * i : 3 * i + 3]
            cached = self._details.file(path, stamp) if self._worth_details() else None
            made = cached or revision_files.read(Path(path))
            self._made[revision] = made
        return made

    def _worth_details(self) -> bool:
        # a plan's few steps: read their files; many (checksums): load details
        self._asked += 1
        return self._asked > 16

    def _fact(self, revision: str) -> tuple[str, str] | None:
        """(docstring, checksum) from the details, where the file is not made
        and the details are worth loading."""
        found = self._facts.get(revision)
        if found is None and revision not in self._made and self._worth_details():
            i = self._index[revision]
            path, stamp = self._names[i], self._stamps[3 * i : 3 * i + 3]
            entry = self._details.entry(path, stamp)
            self._details.forget(path)  # the two strings kept, not the entry
            if entry is not None:
                found = self._facts[revision] = (
                    cast(str, entry[5]),
                    cast(str, entry[6]),
                )
        return found

    def path_text(self, revision: str) -> str:
        return self._names[self._index[revision]]

    def longdoc(self, revision: str) -> str:
        fact = self._fact(revision)
        return fact[0] if fact else self[revision].longdoc

    def checksum(self, revision: str) -> str:
        fact = self._fact(revision)
        return fact[1] if fact else self[revision].checksum()

    def __contains__(self, revision: object) -> bool:
        return revision in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)
