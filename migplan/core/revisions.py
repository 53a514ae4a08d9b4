"""Revisions as values: ids, heads, what a revision file declares, and markers."""

from __future__ import annotations

import hashlib
import re
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
        return " ".join(re.split("\n\n", self.longdoc)[0].split())

    def checksum(self) -> str:
        """Return the sha256 of the file's bytes, as it was read."""
        if self.sha256 is not None:
            return self.sha256
        return hashlib.sha256((self.text or "").encode()).hexdigest()


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
