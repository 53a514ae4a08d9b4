"""Revisions as values: ids, heads, what a revision file declares, and markers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Heads = tuple[str, ...]
"""A set of revisions, sorted: the heads of a database or a resolved target."""

ILLEGAL = frozenset("@-+:")
"""Characters Alembic refuses in a revision id."""

RELATIVE = re.compile(r"^(?:(?P<branch>.+?)@)?(?P<anchor>\w+)?(?P<offset>[+-]\d+)$")
"""A relative target: ``+2``, ``-1``, ``head-1``, ``ae10+1``, ``branch@-2``."""


@dataclass(frozen=True, slots=True)
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
        return message_of(self.longdoc)

    def checksum(self) -> str:
        """Return the sha256 of the file's bytes, as it was read."""
        if self.sha256 is not None:
            return self.sha256
        return hashlib.sha256((self.text or "").encode()).hexdigest()


def message_of(longdoc: str) -> str:
    """The first paragraph of a docstring, on one line (Alembic's `doc`)."""
    return " ".join(re.split("\n\n", longdoc)[0].split())


class RevisionFiles(Mapping[str, RevisionFile]):
    """Revision files by revision, and what a plan needs of each one: where it
    is, its docstring and checksum. A history read again from a cache has those
    at hand, and makes a RevisionFile only where the whole file is wanted."""

    def __init__(self, files: Mapping[str, RevisionFile] | None = None) -> None:
        self._files = dict(files or {})

    def __getitem__(self, revision: str) -> RevisionFile:
        return self._files[revision]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def path_text(self, revision: str) -> str:
        """The file's path, as a string."""
        return str(self[revision].path)

    def longdoc(self, revision: str) -> str:
        """The file's docstring."""
        return self[revision].longdoc

    def checksum(self, revision: str) -> str:
        """The sha256 of the file as it was read."""
        return self[revision].checksum()


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
