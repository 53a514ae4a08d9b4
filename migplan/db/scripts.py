"""A project's Alembic Config and ScriptDirectory: the ini file, the script
location, the URL, and the revision files exactly as Alembic lists them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from alembic.config import Config
from alembic.script import Script
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from migplan.db import database
from migplan.errors import RevisionGraphError

if TYPE_CHECKING:
    from typing import TextIO

    from migplan.core.revisions import RevisionFile
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class MigplanConfig(Config):
    """Alembic's Config, with migplan's env.py templates beside Alembic's own."""

    def get_template_directory(self) -> str:
        templates = self.attributes.get("migplan.templates")
        return str(templates) if templates else super().get_template_directory()


def alembic_config(
    project: Project,
    url: DatabaseURL | None = None,
    *,
    cmd_opts: argparse.Namespace | None = None,
    stdout: TextIO | None = None,
) -> Config:
    """Return the Alembic Config of a project, pointed at `url` when given.

    The script location and the URL come from migplan.yaml, whatever the ini says.
    """
    options = cmd_opts or argparse.Namespace()
    if not hasattr(options, "x"):
        options.x = []
    config = MigplanConfig(project.ini, cmd_opts=options, stdout=stdout or sys.stdout)
    config.set_main_option("script_location", str(project.migrations))
    if url is not None:
        config.set_main_option(
            "sqlalchemy.url", database.driver_url(url).replace("%", "%%")
        )
    return config


def script_directory(config: Config) -> ScriptDirectory:
    """Return Alembic's ScriptDirectory, turning its errors into ours."""
    try:
        return ScriptDirectory.from_config(config)
    except CommandError as err:
        raise RevisionGraphError(str(err)) from err


def revision_paths(project: Project) -> list[Path]:
    """Return the revision files Alembic would load, in Alembic's order."""
    from alembic.script.base import _only_source_rev_file

    script = script_directory(alembic_config(project))
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


def is_sourceless(project: Project) -> bool:
    """Whether Alembic is told to load compiled revision files."""
    return script_directory(alembic_config(project)).sourceless


def from_modules(project: Project) -> Iterator[RevisionFile]:
    """Read revisions by importing them, as Alembic does (compiled-only files)."""
    from alembic.script import revision as alembic_revision

    from migplan.core.revisions import RevisionFile
    from migplan.core.revisions import as_revisions

    script = script_directory(alembic_config(project))
    try:
        for rev in script.walk_revisions():
            yield RevisionFile(
                rev.revision,
                tuple(rev._versioned_down_revisions),
                Path(rev.path),
                rev.longdoc,
                tuple(sorted(rev.branch_labels)),
                as_revisions(rev.dependencies),
            )
    except (CommandError, alembic_revision.RevisionError) as err:
        raise RevisionGraphError(str(err)) from err
