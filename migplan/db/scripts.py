"""A project's Alembic Config and ScriptDirectory: the ini file, the script
location, the URL, and the revisions migplan has already read."""

from __future__ import annotations

import argparse
import sys
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from alembic.config import Config

from migplan import compat
from migplan.db import database

if TYPE_CHECKING:
    from typing import TextIO

    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionMap

    from migplan.core.graph import RevisionGraph
    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class MigplanConfig(Config):
    """Alembic's Config, with migplan's env.py templates beside Alembic's own, and
    tolerant of the values old env.py templates set.

    Flask-Migrate's env.py did, for years, `config.set_main_option('sqlalchemy.url',
    current_app.config.get('SQLALCHEMY_DATABASE_URI'))`: a URL whose password holds
    a ``%`` (percent-encoded ``@ : /``) is then invalid interpolation syntax for
    ConfigParser, and a URL object no string at all. Both are taken as meant.
    """

    def get_template_directory(self) -> str:
        templates = self.attributes.get("migplan.templates")
        return str(templates) if templates else super().get_template_directory()

    def set_section_option(self, section: str, name: str, value: str) -> None:
        if not isinstance(value, str):
            render = getattr(value, "render_as_string", None)
            value = render(hide_password=False) if render else str(value)
        try:
            super().set_section_option(section, name, value)
        except ValueError:
            # a raw % the caller did not escape: the value as it was meant
            super().set_section_option(section, name, value.replace("%", "%%"))


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


def script_directory(config: Config, graph: RevisionGraph) -> ScriptDirectory:
    """Return Alembic's ScriptDirectory for `config`, sharing `graph`'s revisions
    (Alembic does not read the files again)."""
    script: ScriptDirectory = compat.script_directory(config)
    script.revision_map = script_map(graph)
    return script


_maps: weakref.WeakKeyDictionary[RevisionGraph, RevisionMap] = (
    weakref.WeakKeyDictionary()
)
_maps_lock = threading.Lock()


def script_map(graph: RevisionGraph) -> RevisionMap:
    """Alembic's RevisionMap of `graph` as Script objects, made once per graph:
    each imports its revision file only when its migration runs."""
    with _maps_lock:
        found = _maps.get(graph)
        if found is None:
            files = graph.files
            found = _maps[graph] = compat.script_map(
                (node, files.path_text(node[0]), files.longdoc(node[0]))
                for node in graph.nodes()
            )
        return found
