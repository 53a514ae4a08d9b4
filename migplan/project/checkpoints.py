"""The checkpoints folder: beside the migrations, outside versions/, so that
Alembic and Flask-Migrate never see it (see core.checkpoint)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from migplan.core import checkpoint
from migplan.core.checkpoint import Checkpoint
from migplan.core.checkpoint import CheckpointError
from migplan.errors import ConfigError
from migplan.errors import MigplanError

if TYPE_CHECKING:
    from migplan.project.config import Project

FOLDER = "checkpoints"


def folder(project: Project) -> Path:
    """Where a project's checkpoints live."""
    return project.migrations / FOLDER


def _relative(project: Project, path: Path) -> str:
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        return str(path)


def read_all(project: Project, dialect: str | None = None) -> list[Checkpoint]:
    """The project's checkpoints (of `dialect`), by revision; none without the
    folder. A file there that is not a checkpoint is a config error."""
    found = []
    where = folder(project)
    if not where.is_dir():
        return []
    suffix = f".{dialect}.sql" if dialect else ".sql"
    for path in sorted(where.iterdir()):
        if path.name.endswith(suffix) and path.is_file():
            found.append(read(project, path)[0])
    return found


def read(project: Project, path: Path) -> tuple[Checkpoint, str]:
    """One checkpoint and its whole text."""
    shown = _relative(project, path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise MigplanError(f"cannot read {shown}: {err.strerror}") from err
    try:
        return checkpoint.parse_header(text, shown), text
    except CheckpointError as err:
        raise ConfigError(str(err)) from err


def read_step(project: Project, shown: str, checksum: str) -> tuple[Checkpoint, str]:
    """The checkpoint a plan's step loads, as it was when the plan was made."""
    from migplan.errors import StalePlan

    path = project.root / shown
    if not path.is_file():
        raise StalePlan(f"{shown} was removed since the plan was made; plan again")
    found, text = read(project, path)
    if found.checksum != checksum:
        raise StalePlan(f"{shown} changed since the plan was made; plan again")
    return found, text


def write(project: Project, revision: str, dialect: str, text: str) -> str:
    """Write a checkpoint file (atomically: a reader sees the old one or the new
    one); return its path as shown."""
    where = folder(project)
    where.mkdir(parents=True, exist_ok=True)
    path = where / checkpoint.file_name(revision, dialect)
    handle, temporary = tempfile.mkstemp(dir=where, prefix=".checkpoint-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as err:
        Path(temporary).unlink(missing_ok=True)
        raise MigplanError(f"cannot write {path}: {err.strerror}") from err
    return _relative(project, path)
