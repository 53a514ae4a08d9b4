"""`migplan lint`: the lint findings of revision files given by path (as a
pre-commit hook gives the files of a commit), or of every file of the project."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from migplan.core import lint
from migplan.core.lint import Finding
from migplan.errors import MigplanError

if TYPE_CHECKING:
    from migplan.project.config import Project

# Alembic reads a revision file's `revision` from the module: it is bound at the
# top level of every one, and of no other file a versions folder may hold
_REVISION = re.compile(r"^revision\b\s*(:[^=\n]*)?=", re.M)


def lint_paths(paths: Sequence[Path]) -> list[tuple[str, tuple[Finding, ...]]]:
    """Return each revision file's path and the findings of its upgrade(), in the
    order given; files that are not revision files (no `revision = ...`) are left
    out. A downgrade is not linted: undoing an upgrade often has to drop what it
    made."""
    found = []
    for path in paths:
        try:
            source = importlib.util.decode_source(path.read_bytes())
        except OSError as err:
            raise MigplanError(f"{path}: cannot read: {err.strerror}") from err
        except (SyntaxError, UnicodeDecodeError, LookupError) as err:
            raise MigplanError(f"{path}: cannot decode: {err}") from err
        analysis = lint.analyze(source)
        if analysis.broken is None and not _REVISION.search(source):
            continue
        found.append((str(path), analysis.findings("upgrade")))
    return found


def project_paths(project: Project) -> list[Path]:
    """Return the path of every revision file of the project, sorted; relative to
    the working directory when under it, as a hook's paths are."""
    graph = project.graph
    here = Path.cwd()
    paths = []
    for rev in graph.files:
        path = Path(graph.files.path_text(rev))
        paths.append(path.relative_to(here) if path.is_relative_to(here) else path)
    return sorted(paths)
