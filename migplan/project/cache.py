"""A small on-disk cache, so that `plan` need not re-read thousands of revision files.

Entries are JSON files under $MIGPLAN_CACHE_DIR (else $XDG_CACHE_HOME/migplan, else
~/.cache/migplan), one per key. A cache that is missing, unreadable, corrupt or
written by another migplan version is ignored, and a failure to write one is
silent: the cache only ever saves time, it is never trusted for correctness.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from migplan import __version__


def folder() -> Path:
    """Return the cache folder."""
    configured = os.environ.get("MIGPLAN_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return Path(base) / "migplan"


def _path(kind: str, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return folder() / f"{kind}-{digest}.json"


def load(kind: str, key: str) -> dict[str, object] | None:
    """Return the entry stored under (kind, key), or None."""
    try:
        data = json.loads(_path(kind, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("migplan") != __version__
        or data.get("key") != key
    ):
        return None
    value = data.get("value")
    return value if isinstance(value, dict) else None


def store(kind: str, key: str, value: dict[str, object]) -> None:
    """Store an entry, atomically; say nothing if the cache cannot be written."""
    path = _path(kind, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"migplan": __version__, "key": key, "value": value}, out)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
