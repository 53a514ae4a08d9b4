"""Import the project's Flask app (or factory) or MetaData from "module:attr".

The environment's URL always wins: while the app is created, Flask-SQLAlchemy's
`init_app` is given that URL, and afterwards the app's default engine is the one
migplan connects with. The database named in the app's own config is never
touched.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from migplan.errors import AppLoadError

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Engine

    from migplan.core.url import DatabaseURL
    from migplan.project.config import Project

_load_lock = threading.RLock()


def ensure_importable(root: Path) -> None:
    """Put the project's folder first on sys.path, as `flask` and `alembic` do."""
    folder = str(root)
    if folder not in sys.path:
        sys.path.insert(0, folder)


def import_object(spec: str, root: Path, what: str) -> object:
    """Return the object named by "module:attr.attr" (attr optional)."""
    ensure_importable(root)
    module_name, _, attr = spec.partition(":")
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as err:
        raise AppLoadError(
            f"{what} {spec!r}: cannot import {module_name!r}: {err}"
        ) from err
    except Exception as err:  # the project's own module raised while importing
        raise AppLoadError(
            f"{what} {spec!r}: importing {module_name!r} raised "
            f"{type(err).__name__}: {err}"
        ) from err
    for part in filter(None, attr.removesuffix("()").split(".")):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppLoadError(
                f"{what} {spec!r}: {module_name!r} has no attribute {part!r}"
            ) from None
    return target


def load_app(
    spec: str,
    root: Path,
    engine: Engine | None,
    binds: Mapping[str, str] | None = None,
) -> Flask:
    """Return the Flask app named by `spec`, bound to `engine`'s database.

    A factory is called with no arguments. Without `engine` the app is loaded as
    it is configured (for commands that need no database).
    """
    from flask import Flask

    with _load_lock, _init_app_url(engine, binds):
        found = import_object(spec, root, "app")
        if ":" not in spec:
            found = _find_app(found, spec)
        if not isinstance(found, Flask) and callable(found):
            try:
                found = found()
            except Exception as err:  # the project's factory raised
                raise AppLoadError(
                    f"app {spec!r}: the factory raised {type(err).__name__}: {err}"
                ) from err
        if not isinstance(found, Flask):
            raise AppLoadError(f"app {spec!r} is not a Flask app or app factory")
    if engine is not None:
        _bind_engine(found, engine, spec)
    _ensure_migrate_extension(found)
    return found


def _find_app(module: object, spec: str) -> object:
    from flask import Flask

    for name in ("app", "application"):
        if isinstance(getattr(module, name, None), Flask):
            return getattr(module, name)
    for name in ("create_app", "make_app"):
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    raise AppLoadError(
        f"app {spec!r}: found no 'app' or 'create_app' in it; write 'module:name'"
    )


@contextmanager
def _init_app_url(
    engine: Engine | None, binds: Mapping[str, str] | None = None
) -> Iterator[None]:
    """While the app is created, make Flask-SQLAlchemy use `engine`'s URL, and the
    environment's URL for each bind it names."""
    if engine is None:
        yield
        return
    try:
        from flask_sqlalchemy import SQLAlchemy
    except ImportError:
        yield
        return
    original = SQLAlchemy.init_app
    # a string, as the app's own config has it: env.py templates hand it on to
    # Alembic's config, which takes strings only
    url = engine.url.render_as_string(hide_password=False)

    def init_app(self: Any, app: Flask) -> None:
        app.config["SQLALCHEMY_DATABASE_URI"] = url
        if binds:
            own = dict(app.config.get("SQLALCHEMY_BINDS") or {})
            app.config["SQLALCHEMY_BINDS"] = {**own, **binds}
        original(self, app)

    SQLAlchemy.init_app = init_app  # type: ignore[method-assign]
    try:
        yield
    finally:
        SQLAlchemy.init_app = original  # type: ignore[method-assign]


def _bind_engine(app: Flask, engine: Engine, spec: str) -> None:
    db = app.extensions.get("sqlalchemy")
    if db is None:
        return  # env.py finds its database some other way; the URL is set for it
    with app.app_context():
        engines = db.engines
        if not isinstance(engines, dict):
            raise AppLoadError(f"app {spec!r}: cannot set its database engine")
        previous = engines.get(None)
        engines[None] = engine
    if previous is not None and previous is not engine:
        previous.dispose()


def _ensure_migrate_extension(app: Flask) -> None:
    """Let a Flask-Migrate env.py run on an app that never called Migrate()."""
    db: Any = app.extensions.get("sqlalchemy")
    if db is None or "migrate" in app.extensions:
        return

    class _MigrateConfig:
        def __init__(self) -> None:
            self.db = db
            self.directory = "migrations"
            self.configure_args: dict[str, object] = {
                "compare_type": True,
                "render_as_batch": True,
            }

        @property
        def metadata(self) -> object:
            return db.metadata

    app.extensions["migrate"] = _MigrateConfig()


@dataclass(frozen=True)
class _SkipTables:
    """An autogenerate `include_name` hook that leaves `tables` out, then asks `then`."""

    tables: frozenset[str]
    then: Callable[..., object] | None = None

    def __call__(
        self, name: str | None, type_: str, parent_names: Mapping[str, str | None]
    ) -> bool:
        if type_ == "table" and name in self.tables:
            return False
        return self.then is None or bool(self.then(name, type_, parent_names))


def _skip_tables(app: Flask, tables: Collection[str]) -> None:
    """Keep `tables` out of autogenerate in a Flask-Migrate env.py.

    That env.py passes the Migrate extension's `configure_args` to
    `context.configure`; a hook the project set there still runs for the rest.
    """
    args = getattr(app.extensions.get("migrate"), "configure_args", None)
    if not isinstance(args, dict):
        return
    own = args.get("include_name")
    if isinstance(own, _SkipTables):  # the same app, loaded again
        own = own.then
    args["include_name"] = _SkipTables(frozenset(tables), own)


@contextmanager
def app_context(
    project: Project,
    engine: Engine | None,
    binds: Mapping[str, DatabaseURL] | None = None,
) -> Iterator[Flask | None]:
    """Push the project's app context (if it has an app) for env.py to use, its
    database `engine`'s, its binds the environment's where it names them."""
    if project.app is None:
        with nullcontext():
            yield None
        return
    from migplan.db.database import sync_url

    urls = {name: sync_url(url) for name, url in (binds or {}).items()}
    app = load_app(project.app, project.root, engine, urls)
    # migplan's audit table is not in the models: autogenerate must not drop it
    _skip_tables(app, project.tables.own)
    with app.app_context():
        yield app


def target_metadata(project: Project, app: Flask | None) -> MetaData | None:
    """Return the models' MetaData: `metadata:`, else the Flask app's db.metadata."""
    from sqlalchemy import MetaData

    if project.metadata:
        found = import_object(project.metadata, project.root, "metadata")
        if not isinstance(found, MetaData):
            raise AppLoadError(
                f"metadata {project.metadata!r} is not a SQLAlchemy MetaData"
            )
        return found
    if app is not None:
        db = app.extensions.get("sqlalchemy")
        if db is not None:
            return db.metadata  # type: ignore[no-any-return]
    return None
