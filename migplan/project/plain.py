"""migplan.yaml once it is known to be valid: its data and the line of every key,
as the config cache keeps them, so that a file checked before is read without
YAML. Also what needs no YAML of the file's reading: key paths as messages write
them, and the ${VAR} of URLs."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from migplan.core.environment import Location
from migplan.errors import ConfigError

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
"""${VAR} and ${VAR:-default} in a URL."""

Lines = dict[tuple[str, ...], tuple[int, int]]
"""Each key path of a document (list positions as digits), with the line of its
key and the line of its value."""


def read_text(file: Path) -> str:
    """The text of `file`; one that cannot be read is a ConfigError."""
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{file.name}: cannot read: {err}") from err


def dotted(path: Sequence[str | int]) -> str:
    """Return a key path as written in messages: ``environments.prod.url``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def locate(
    file: Path, lines: Lines, path: Sequence[str | int], at_key: bool = False
) -> Location:
    """The location of the value (or, with at_key, the key) at `path`: the line
    of the deepest part of it that the document has."""
    parts = tuple(str(part) for part in path)
    for end in range(len(parts), -1, -1):
        found = lines.get(parts[:end])
        if found is not None:
            return Location(file, found[0] if at_key else found[1], dotted(path))
    return Location(file, 1, dotted(path))


@dataclass(frozen=True)
class KnownDocument:
    """A migplan.yaml checked before, byte for byte: its data and lines, from the
    cache (the same `data` and `locate` as a Document read with YAML)."""

    file: Path
    data: dict[str, object]
    lines: Lines

    def locate(self, path: Sequence[str | int], at_key: bool = False) -> Location:
        """Return the location of the value (or, with at_key, the key) at `path`."""
        return locate(self.file, self.lines, path, at_key)

    def to_cache(self) -> dict[str, object]:
        """The data and lines as the config cache stores them."""
        return {
            "data": self.data,
            "lines": [
                [list(path), key, value] for path, (key, value) in self.lines.items()
            ],
        }

    @classmethod
    def from_cache(cls, file: Path, entry: dict[str, object]) -> KnownDocument | None:
        """The document a cache entry holds, or None if it holds none whole."""
        data, rows = entry.get("data"), entry.get("lines")
        if (
            not isinstance(data, dict)
            or not is_plain(data)
            or not isinstance(rows, list)
        ):
            return None
        lines: Lines = {}
        for row in rows:
            if not (
                isinstance(row, list)
                and len(row) == 3
                and isinstance(row[0], list)
                and all(isinstance(part, str) for part in row[0])
                and all(type(n) is int for n in row[1:])
            ):
                return None
            lines[tuple(row[0])] = (row[1], row[2])
        return cls(file, data, lines)


_PASSWORD = re.compile(r"://[^/@\s]*?:([^@\s]*)@")


def holds_password(value: object) -> bool:
    """Whether a URL in `value` spells a password out rather than naming a
    ${VAR}: such a file's data is not copied into the cache."""
    if isinstance(value, dict):
        return any(holds_password(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_password(v) for v in value)
    if isinstance(value, str):
        return any(
            match.group(1) and not VAR.fullmatch(match.group(1))
            for match in _PASSWORD.finditer(value)
        )
    return False


def is_plain(value: object) -> bool:
    """Whether `value` comes back from JSON exactly as it is (mappings keyed by
    strings, lists, strings, numbers, booleans, null): YAML can say more."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(is_plain(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int))
