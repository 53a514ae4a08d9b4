"""The env.py corpus: migrations folders as real projects have them, generated.

Three families, each a list of `Case`s:

- Flask-Migrate: every env.py template it has shipped since 2.0, single-database
  and `--multidb`. Each release runs in a venv of its own with a Flask stack of its
  time (cached under `$MIGPLAN_CORPUS_CACHE`, else ~/.cache/migplan-corpus), and
  its own `flask db init` and `flask db migrate` make the migrations folder.
- Alembic: every template `alembic init -t` offers, made by the Alembic of
  migplan's venv; the revision file comes from `alembic revision`.
- Hand-written: env.py patterns of real projects, on a folder made by
  `alembic init -t generic`.

Nothing here is copied from another project: every folder is generated, and
cached by what made it (release, stack, template, the generating app), so a
second run only copies it into the test's project. `python tests/envpy_corpus.py`
builds the whole cache ahead of a run.

`make_project` writes the project a test hands to migplan: the generated folder,
the app's own code (on migplan's current Flask stack), and a migplan.yaml whose
environment `corpus` points at the test's database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import sqlalchemy as sa

CACHE = Path(
    os.environ.get("MIGPLAN_CORPUS_CACHE", "~/.cache/migplan-corpus")
).expanduser()
HARNESS = "1"
"""Part of every cache key: bump it when the way a folder is generated changes."""

MIGPLAN_PYTHON = Path(sys.executable)
"""migplan runs in the venv of the test run (/work/main/.venv)."""
ALEMBIC = MIGPLAN_PYTHON.parent / "alembic"
ENV = "corpus"
"""The environment every corpus project's migplan.yaml declares."""

# -- Flask-Migrate releases and the stacks they ran on -----------------------------


@dataclass(frozen=True)
class Stack:
    """A Python and the pinned packages a Flask-Migrate release ran with."""

    python: str
    pins: tuple[str, ...]


FLASK_1 = Stack(
    "3.8",
    (
        "Flask==1.1.4",
        "Werkzeug==1.0.1",
        "Jinja2==2.11.3",
        "MarkupSafe==2.0.1",
        "itsdangerous==1.1.0",
        "click==7.1.2",
        "Flask-SQLAlchemy==2.5.1",
        "SQLAlchemy==1.3.24",
        "alembic==1.4.3",
        "Flask-Script==2.0.6",
    ),
)
FLASK_2_0 = Stack(
    "3.9",
    (
        "Flask==2.0.3",
        "Werkzeug==2.0.3",
        "Jinja2==3.0.3",
        "MarkupSafe==2.1.1",
        "itsdangerous==2.0.1",
        "click==8.0.4",
        "Flask-SQLAlchemy==2.5.1",
        "SQLAlchemy==1.4.46",
        "alembic==1.7.7",
    ),
)
FLASK_2_2_SQLA_1_4 = Stack(
    "3.10",
    (
        "Flask==2.2.5",
        "Werkzeug==2.2.3",
        "Jinja2==3.1.2",
        "MarkupSafe==2.1.3",
        "itsdangerous==2.1.2",
        "click==8.1.3",
        "Flask-SQLAlchemy==3.0.3",
        "SQLAlchemy==1.4.46",
        "alembic==1.9.4",
    ),
)
FLASK_2_2_SQLA_2_0 = Stack(
    "3.10",
    (
        "Flask==2.2.5",
        "Werkzeug==2.2.3",
        "Jinja2==3.1.2",
        "MarkupSafe==2.1.3",
        "itsdangerous==2.1.2",
        "click==8.1.3",
        "Flask-SQLAlchemy==3.0.5",
        "SQLAlchemy==2.0.19",
        "alembic==1.11.1",
    ),
)
FLASK_3 = Stack(
    "3.11",
    (
        "Flask==3.0.3",
        "Werkzeug==3.0.6",
        "Jinja2==3.1.4",
        "MarkupSafe==2.1.5",
        "itsdangerous==2.2.0",
        "click==8.1.7",
        "blinker==1.8.2",
        "Flask-SQLAlchemy==3.1.1",
        "SQLAlchemy==2.0.36",
        "alembic==1.13.3",
    ),
)


@dataclass(frozen=True)
class Release:
    """A Flask-Migrate release whose env.py templates differ from the one before."""

    version: str
    stack: Stack
    same_as: str = ""
    """The later releases that shipped the very same env.py templates."""


# One release per change of flask/env.py or flask-multidb/env.py (git log of
# src/flask_migrate/templates); `same_as` lists the releases with identical ones.
# (2.0.0 is where `flask db` appeared. The aioflask templates of 3.1+ need the
# aioflask package, not Flask, and are left out.)
RELEASES = (
    Release("2.0.0", FLASK_1, "2.0.1-2.0.3"),
    Release("2.0.4", FLASK_1, "2.1.0-2.3.0"),  # `from __future__`, new doc links
    Release("2.3.1", FLASK_1),  # don't swallow transaction errors
    Release("2.4.0", FLASK_1),  # env.py reorganised
    Release("2.5.0", FLASK_1, "2.5.1-2.5.2"),  # `.replace('%', '%%')`
    Release("2.5.3", FLASK_1),  # str(db.engine.url): Flask-SQLAlchemy's URL
    Release("2.6.0", FLASK_1),  # imports at the top
    Release("2.7.0", FLASK_1, "3.0.0"),  # reuse db.engine, `connectable`
    Release("3.0.1", FLASK_2_0),  # get_engine(), Alchemical
    Release("3.1.0", FLASK_2_0),  # multidb: get_engine(bind)
    Release("4.0.0", FLASK_2_2_SQLA_1_4),  # Flask-SQLAlchemy 3, get_metadata()
    Release("4.0.1", FLASK_2_2_SQLA_1_4, "4.0.2"),  # db.engine on FSA 3
    Release("4.0.3", FLASK_2_2_SQLA_2_0),  # no `from __future__`
    Release("4.0.4", FLASK_2_2_SQLA_2_0),  # get_engine_url(), render_as_string
    Release("4.1.0", FLASK_3, "4.0.5-4.0.7"),  # configure_args' directives
)

# -- the cache ---------------------------------------------------------------------


class CorpusError(Exception):
    """Building part of the corpus failed (not migplan's fault)."""


def _key(name: str, *inputs: object) -> str:
    digest = hashlib.sha256(json.dumps([HARNESS, *inputs], default=str).encode())
    return f"{name}-{digest.hexdigest()[:10]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (xdist workers build the same entry)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached(kind: str, key: str, build: Callable[[Path], None], *, move: bool) -> Path:
    """Return CACHE/kind/key, made by `build(folder)` unless a complete one exists.

    With `move`, `build` works in a scratch folder renamed into place at the end;
    without (a venv, which cannot move), in place, marked complete at the end.
    """
    final = CACHE / kind / key
    done = final / ".complete"
    if done.exists():
        return final
    with _locked(CACHE / kind / f"{key}.lock"):
        if done.exists():
            return final
        shutil.rmtree(final, ignore_errors=True)
        work = final.with_name(f"{key}.building-{os.getpid()}") if move else final
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            build(work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        (work / ".complete").write_text("")
        if move:
            work.rename(final)
    return final


def _check(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        raise CorpusError(
            f"{' '.join(cmd)} (in {cwd}) exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result.stdout + result.stderr


def find_python(version: str) -> Path:
    """A `python{version}` interpreter: pyenv's, else one on PATH."""
    root = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
    for candidate in sorted(root.glob(f"{version}.*"), reverse=True):
        exe = candidate / "bin" / f"python{version}"
        if exe.exists():
            return exe
    found = shutil.which(f"python{version}")
    if found:
        return Path(found)
    raise CorpusError(f"no Python {version} (pyenv or PATH) to run its stack")


def _clean_env(**extra: str) -> dict[str, str]:
    """The process environment with nothing that would point a tool elsewhere."""
    drop = {
        "FLASK_APP",
        "FLASK_ENV",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "DATABASE_URL",
        "MIGPLAN_CONFIG",
        "PYTHONHOME",
    }
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


def release_venv(release: Release) -> Path:
    """A venv with `release` and its stack installed (cached)."""
    requirements = (f"Flask-Migrate=={release.version}", *release.stack.pins)

    def build(folder: Path) -> None:
        python = find_python(release.stack.python)
        _check([str(python), "-m", "venv", str(folder)], cwd=folder.parent)
        _check(
            [
                str(folder / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *requirements,
            ],
            cwd=folder,
            env=_clean_env(),
        )

    key = _key(f"flask-migrate-{release.version}", release.stack, requirements)
    return cached("venvs", key, build, move=False)


ASYNC_DRIVERS = ("greenlet==3.5.6", "aiosqlite==0.22.1", "asyncpg==0.32.0")


def async_drivers() -> Path:
    """A folder with async drivers for migplan's own Python, put on PYTHONPATH of
    the migplan processes of async cases: the test venv does not have them."""

    def build(folder: Path) -> None:
        _check(
            [
                str(MIGPLAN_PYTHON),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--target",
                str(folder / "site"),
                *ASYNC_DRIVERS,
            ],
            cwd=folder,
            env=_clean_env(),
        )

    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return cached("async", _key(f"py{version}", ASYNC_DRIVERS), build, move=True) / (
        "site"
    )


# -- the apps ---------------------------------------------------------------------

FLASK_APP = '''\
"""The app of a Flask-Migrate project: one model per database."""
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()


class Author(db.Model):
    __tablename__ = "author"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(64), nullable=False)
{bind_model}

def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = {own_url!r}
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
{binds_line}    db.init_app(app)
    migrate.init_app(app, db)
    return app
'''

BIND_MODEL = """

class Member(db.Model):
    __bind_key__ = "users"
    __tablename__ = "member"
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(120), nullable=False)
"""


def flask_app(own_url: str, bind_url: str | None = None) -> str:
    """The source of the Flask app: `Author` on its own database, and with
    `bind_url` a `Member` on the bind "users"."""
    binds = (
        f'    app.config["SQLALCHEMY_BINDS"] = {{"users": {bind_url!r}}}\n'
        if bind_url
        else ""
    )
    return FLASK_APP.format(
        own_url=own_url,
        bind_model=BIND_MODEL if bind_url else "",
        binds_line=binds,
    )


def flask_migrate_folder(release: Release, multidb: bool) -> Path:
    """The migrations folder `release`'s own `flask db init` and `flask db migrate`
    make for the Flask app (cached)."""

    def build(folder: Path) -> None:
        venv = release_venv(release)
        with tempfile.TemporaryDirectory(prefix="corpus-gen-") as scratch:
            work = Path(scratch)
            (work / "app.py").write_text(
                flask_app(
                    f"sqlite:///{work / 'app.db'}",
                    f"sqlite:///{work / 'users.db'}" if multidb else None,
                )
            )
            env = _clean_env(
                FLASK_APP="app",
                PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            )
            flask = str(venv / "bin" / "flask")
            _check(
                [flask, "db", "init", *(["--multidb"] if multidb else [])],
                cwd=work,
                env=env,
            )
            _check([flask, "db", "migrate", "-m", "create author"], cwd=work, env=env)
            shutil.copytree(
                work / "migrations",
                folder / "migrations",
                ignore=shutil.ignore_patterns("__pycache__"),
            )

    template = "flask-multidb" if multidb else "flask"
    key = _key(
        f"flask-migrate-{release.version}-{template}",
        release.stack,
        flask_app("sqlite://", "sqlite://" if multidb else None),
    )
    return cached("generated", key, build, move=True)


ACCOUNT_UP = """\
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
"""
ACCOUNT_DOWN = '    op.drop_table("account")\n'
AUDIT_UP = """\
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
"""
AUDIT_DOWN = '    op.drop_table("audit_entry")\n'

MODELS = '''\
"""The project's models."""
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(200))
'''
"""The models of the hand-written projects: what their one revision creates."""


def _fill(path: Path, bodies: dict[str, str]) -> None:
    text = path.read_text()
    for old, new in bodies.items():
        if old not in text:
            raise CorpusError(f"{path.name}: no {old.strip()!r} to fill in")
        text = text.replace(old, new)
    path.write_text(text)


def alembic_folder(template: str) -> Path:
    """The project `alembic init -t TEMPLATE migrations` makes, with one revision
    from `alembic revision -m "create account"` (cached by Alembic's version)."""
    import alembic

    def build(folder: Path) -> None:
        env = _clean_env()
        _check(
            [str(ALEMBIC), "init", "-t", template, "migrations"], cwd=folder, env=env
        )
        out = _check(
            [str(ALEMBIC), "revision", "-m", "create account"], cwd=folder, env=env
        )
        found = re.search(r"Generating (\S+\.py) \.\.\.  done", out)
        if not found:
            raise CorpusError(f"alembic revision printed no file name:\n{out}")
        revision = Path(found.group(1))
        if template == "multidb":
            _fill(
                revision,
                {
                    '    """Upgrade engine1 schema."""\n    pass\n': ACCOUNT_UP,
                    '    """Downgrade engine1 schema."""\n    pass\n': ACCOUNT_DOWN,
                    '    """Upgrade engine2 schema."""\n    pass\n': AUDIT_UP,
                    '    """Downgrade engine2 schema."""\n    pass\n': AUDIT_DOWN,
                },
            )
        else:
            _fill(
                revision,
                {
                    '    """Upgrade schema."""\n    pass\n': ACCOUNT_UP,
                    '    """Downgrade schema."""\n    pass\n': ACCOUNT_DOWN,
                },
            )
        for cache in folder.rglob("__pycache__"):
            shutil.rmtree(cache)

    key = _key(f"alembic-{alembic.__version__}-{template}", ACCOUNT_UP, AUDIT_UP)
    return cached("generated", key, build, move=True)


# -- hand-written env.py files ------------------------------------------------------

_HEADER = '''\
"""{doc}"""
{imports}
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config
from sqlalchemy import pool

from models import Base

config = context.config
{logging}
target_metadata = Base.metadata
{setup}

def run_migrations_offline():
    context.configure(
        url={offline_url},
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={{"paramstyle": "named"}},{offline_extra}
    )
    with context.begin_transaction():
        context.run_migrations()


'''
_FOOTER = """

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"""
_FILE_CONFIG = """\
if config.config_file_name is not None:
    fileConfig(config.config_file_name)"""
_MAIN_URL = 'config.get_main_option("sqlalchemy.url")'
_ENGINE_FROM_CONFIG = """\
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
"""


def _online(
    configure_extra: str = "", *, connectable: str = _ENGINE_FROM_CONFIG
) -> str:
    return f"""\
def run_migrations_online():
{connectable}
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,{configure_extra}
        )
        with context.begin_transaction():
            context.run_migrations()
"""


def hand_written(
    doc: str,
    online: str,
    *,
    imports: str = "",
    setup: str = "",
    offline_url: str = _MAIN_URL,
    offline_extra: str = "",
    logging: str = _FILE_CONFIG,
) -> str:
    """An env.py in the shape of Alembic's generic one, with the given parts."""
    return (
        _HEADER.format(
            doc=doc,
            imports=imports,
            logging=logging,
            setup=setup,
            offline_url=offline_url,
            offline_extra=offline_extra,
        )
        + online
        + _FOOTER
    )


HAND_WRITTEN: dict[str, str] = {
    "environ-database-url": hand_written(
        "The URL comes from the process environment, as on Heroku.",
        _online(),
        imports="import os\n",
        setup='config.set_main_option("sqlalchemy.url", os.environ["DATABASE_URL"])\n',
    ),
    "settings-object": hand_written(
        "The URL comes from the app's settings; env.py makes its own engine.",
        _online(
            connectable="    connectable = create_engine(settings.database_url, "
            "poolclass=pool.NullPool)\n"
        ),
        imports="from sqlalchemy import create_engine\n\nfrom settings import settings\n",
        offline_url="settings.database_url",
    ),
    "app-engine": hand_written(
        "The app's own engine (a FastAPI-style database module) runs the migrations.",
        _online(connectable="    connectable = engine\n"),
        imports="from database import engine\n",
        offline_url="engine.url.render_as_string(hide_password=False)",
    ),
    "shared-connection": hand_written(
        "Alembic's cookbook: use a connection handed in config.attributes.",
        """\
def do_run_migrations(connection):
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connectable = config.attributes.get("connection", None)
    if connectable is None:
        connectable = engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
        with connectable.connect() as connection:
            do_run_migrations(connection)
    else:
        do_run_migrations(connectable)
""",
    ),
    "transaction-per-migration": hand_written(
        "Each migration in a transaction of its own.",
        _online("\n            transaction_per_migration=True,"),
    ),
    "render-as-batch": hand_written(
        "SQLite-friendly: batch mode for ALTER.",
        _online("\n            render_as_batch=True,"),
        offline_extra="\n        render_as_batch=True,",
    ),
    "include-hooks": hand_written(
        "Autogenerate filters: skip PostGIS's table and anything marked as external.",
        _online(
            "\n            include_name=include_name,"
            "\n            include_object=include_object,"
        ),
        setup='''

def include_name(name, type_, parent_names):
    """Leave PostGIS's table and migplan's own tables out."""
    if type_ == "table":
        return name != "spatial_ref_sys" and not name.startswith("migplan_")
    return True


def include_object(object, name, type_, reflected, compare_to):
    """Leave tables the models mark as managed elsewhere out."""
    if type_ == "table" and object.info.get("external"):
        return False
    return True
''',
        offline_extra="\n        include_object=include_object,",
    ),
    "version-table": hand_written(
        "The version table has a name of the project's own.",
        _online('\n            version_table="my_versions",'),
        offline_extra='\n        version_table="my_versions",',
    ),
    "version-table-schema": hand_written(
        "The version table lives in a schema of its own, which env.py creates.",
        _online(
            '\n            version_table_schema="meta",\n            include_schemas=True,',
            connectable=_ENGINE_FROM_CONFIG
            + """\
    with connectable.connect() as connection:
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS meta"))
        connection.commit()
""",
        ),
        imports="from sqlalchemy import text\n",
        offline_extra='\n        version_table_schema="meta",\n        include_schemas=True,',
    ),
    "ini-without-logging": hand_written(
        "alembic.ini has no logging sections: fileConfig only when it has.",
        _online(),
        logging="""\
if config.config_file_name is not None and config.file_config.has_section(
    "formatters"
):
    fileConfig(config.config_file_name)""",
    ),
    "engine-begin": hand_written(
        "env.py opens the transaction itself: `with engine.begin()`.",
        "def run_migrations_online():\n"
        + _ENGINE_FROM_CONFIG
        + """
    with connectable.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        context.run_migrations()
""",
    ),
    "connection-begin": hand_written(
        "env.py begins a transaction before configure, and commits it.",
        "def run_migrations_online():\n"
        + _ENGINE_FROM_CONFIG
        + """
    with connectable.connect() as connection:
        transaction = connection.begin()
        context.configure(connection=connection, target_metadata=target_metadata)
        try:
            context.run_migrations()
            transaction.commit()
        except Exception:
            transaction.rollback()
            raise
""",
    ),
}

# -- the cases ----------------------------------------------------------------------

SERVERS = ("sqlite", "postgresql", "mysql")
TWO = ("sqlite", "postgresql")
"""Most cases run on SQLite and PostgreSQL; MariaDB for the newest of each family
(its env.py handling is the same code, and a run of the corpus must stay short)."""
STALE_MULTIDB = {"2.5.3", "2.6.0", "2.7.0"}
"""Flask-Migrate releases whose multidb env.py calls `db.get_engine(app, bind)`,
which Flask-SQLAlchemy 3 removed: they fail with the project's own `flask db
upgrade` on today's stack too (the control test shows it), so migplan is not
tried on them."""


@dataclass(frozen=True)
class Case:
    """One env.py, and how a project that has it is made."""

    id: str
    family: str
    """flask-migrate, alembic or hand-written."""
    backends: tuple[str, ...] = TWO
    multidb: bool = False
    release: Release | None = None
    template: str = "generic"
    is_async: bool = False
    has_models: bool = False
    version_table: str = "alembic_version"
    version_table_schema: str | None = None


def _cases() -> list[Case]:
    cases = []
    for release in RELEASES:
        cases.append(
            Case(
                f"flask-migrate-{release.version}",
                "flask-migrate",
                SERVERS if release is RELEASES[-1] else TWO,
                release=release,
                template="flask",
                has_models=True,
            )
        )
        if release.version in STALE_MULTIDB:
            continue
        cases.append(
            Case(
                f"flask-migrate-{release.version}-multidb",
                "flask-migrate",
                ("sqlite", "postgresql"),
                multidb=True,
                release=release,
                template="flask-multidb",
                has_models=True,
            )
        )
    cases += [
        Case("alembic-generic", "alembic", SERVERS),
        Case("alembic-pyproject", "alembic", template="pyproject"),
        Case(
            "alembic-async",
            "alembic",
            ("sqlite", "postgresql"),
            template="async",
            is_async=True,
        ),
        Case(
            "alembic-pyproject_async",
            "alembic",
            ("sqlite", "postgresql"),
            template="pyproject_async",
            is_async=True,
        ),
        Case(
            "alembic-multidb", "alembic", ("sqlite",), multidb=True, template="multidb"
        ),
    ]
    for name in HAND_WRITTEN:
        extra: dict[str, object] = {}
        if name == "version-table":
            extra["version_table"] = "my_versions"
        if name == "version-table-schema":
            # a schema of its own: PostgreSQL's (a MariaDB schema is a database)
            extra["version_table_schema"] = "meta"
            extra["backends"] = ("postgresql",)
        cases.append(Case(name, "hand-written", has_models=True, **extra))  # type: ignore[arg-type]
    return cases


CASES = _cases()

# -- a test's project ---------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    """A database a project's migrations reach: its URL as migplan.yaml spells it,
    a synchronous URL to inspect it with, and what the revision creates there."""

    url: str
    check_url: str
    tables: frozenset[str]


@dataclass
class CorpusProject:
    """A project made from a case, ready for `migplan`."""

    root: Path
    case: Case
    database: Database
    """The environment's database (for a multidb case: the default one)."""
    binds: tuple[Database, ...]
    """The other databases of a multidb case, at URLs of the project's own."""
    head: str
    message: str
    own: tuple[Path, ...]
    """The SQLite files of the app's own configuration: never to be created."""
    env: dict[str, str] = field(default_factory=dict)
    """Process environment migplan runs with (the app's DATABASE_URL, drivers)."""
    own_command: tuple[str, ...] = ()
    """How the project migrates without migplan: `flask db upgrade`, `alembic
    upgrade head`."""

    def migplan(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run migplan in the project, as a user would."""
        return subprocess.run(
            [str(MIGPLAN_PYTHON), "-m", "migplan", *args],
            cwd=self.root,
            env=_clean_env(**self.env),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def run_own_tool(self) -> subprocess.CompletedProcess[str]:
        """Migrate the way the project did before migplan, on its own databases."""
        return subprocess.run(
            list(self.own_command),
            cwd=self.root,
            env=_clean_env(**self.env),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def version_rows(self, database: Database | None = None) -> list[str]:
        """The rows of the version table env.py uses ([] when there is none)."""
        db = database or self.database
        table = self.case.version_table
        schema = self.case.version_table_schema
        return version_rows(db.check_url, table, schema)


def version_rows(url: str, table: str, schema: str | None = None) -> list[str]:
    engine = sa.create_engine(_sync(url), poolclass=sa.pool.NullPool)
    try:
        if not sa.inspect(engine).has_table(table, schema=schema):
            return []
        quoted = engine.dialect.identifier_preparer.quote
        name = f"{quoted(schema)}.{quoted(table)}" if schema else quoted(table)
        with engine.connect() as conn:
            return sorted(
                r[0] for r in conn.exec_driver_sql(f"SELECT version_num FROM {name}")
            )
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    """The tables of a database's default schema (a SQLite file is not created)."""
    if url.startswith("sqlite") and not Path(sa.make_url(url).database or "").exists():
        return set()
    engine = sa.create_engine(_sync(url), poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def table_owner(url: str, table: str) -> str | None:
    """Who owns `table` on PostgreSQL."""
    engine = sa.create_engine(_sync(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT tableowner FROM pg_tables WHERE tablename = %(t)s", {"t": table}
            ).scalar()
    finally:
        engine.dispose()


def _sync(url: str) -> str:
    """A URL SQLAlchemy connects with here: psycopg 3 for postgresql://."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _async(url: str) -> str:
    for sync, driver in (("sqlite://", "sqlite+aiosqlite://"),):
        if url.startswith(sync):
            return driver + url[len(sync) :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    raise CorpusError(f"no async driver for {url.split(':')[0]}")


def _head(versions: Path) -> tuple[str, str]:
    """(revision, message) of the one revision file in `versions`."""
    (path,) = [p for p in versions.glob("*.py") if p.is_file()]
    text = path.read_text()
    found = re.search(r"^revision\s*(?::[^=]*)?=\s*['\"](\w+)['\"]", text, re.M)
    if not found:
        raise CorpusError(f"{path}: no revision identifier")
    return found.group(1), text.splitlines()[0].strip('"')


def _yaml(case: Case, url: str, app: str | None, metadata: str | None) -> str:
    lines = ["migrations: migrations"]
    if app:
        lines.append(f"app: {app}")
    if metadata:
        lines.append(f"metadata: {metadata}")
    if case.version_table != "alembic_version":
        lines.append(f"version_table: {case.version_table}")
    if case.version_table_schema:
        lines.append(f"version_table_schema: {case.version_table_schema}")
    lines += [
        f"default_env: {ENV}",
        "environments:",
        f"  {ENV}:",
        f"    url: {url}",
        "    target: head",
        "    rollback: {allowed: true, max_steps: 1, allow_destructive: true}",
    ]
    return "\n".join(lines) + "\n"


def _copy(source: Path, root: Path) -> None:
    shutil.copytree(
        source,
        root,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".complete", "__pycache__"),
    )


def _set_ini_url(ini: Path, section_urls: dict[str, str]) -> None:
    """Point alembic.ini's `sqlalchemy.url` of each section at the project's own
    database (the placeholder `driver://...` is what `alembic init` writes)."""
    lines = ini.read_text().splitlines(keepends=True)
    section = None
    for i, line in enumerate(lines):
        header = re.match(r"\[(\w+)\]", line)
        if header:
            section = header.group(1)
        elif line.startswith("sqlalchemy.url") and section in section_urls:
            lines[i] = f"sqlalchemy.url = {section_urls[section]}\n"
    ini.write_text("".join(lines))


def _strip_logging(ini: Path) -> None:
    """alembic.ini with its [alembic] section only."""
    text = ini.read_text()
    ini.write_text(text[: text.index("[post_write_hooks]")])


def make_project(
    case: Case,
    tmp_path: Path,
    url: str,
    bind_urls: tuple[str, ...] = (),
    *,
    own_url: str | None = None,
) -> CorpusProject:
    """Write the project of `case` under tmp_path/project, its environment on `url`
    (a synchronous URL; async cases get the async driver's spelling of it).

    The app's own configuration (its SQLALCHEMY_DATABASE_URI, alembic.ini, its
    DATABASE_URL, settings or engine) names SQLite files under tmp_path/own, or
    `own_url` when given.
    """
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "own").mkdir()
    own: list[Path] = []

    def own_database(name: str) -> str:
        if own_url is not None:
            return own_url
        path = tmp_path / "own" / f"{name}.db"
        own.append(path)
        return f"sqlite:///{path}"

    app_url = own_database("app")
    env: dict[str, str] = {}
    app = metadata = None
    binds: tuple[Database, ...] = ()
    if case.family == "flask-migrate":
        assert case.release is not None
        _copy(flask_migrate_folder(case.release, case.multidb), root)
        bind_url = bind_urls[0] if case.multidb else None
        (root / "app.py").write_text(flask_app(app_url, bind_url))
        app = "app:create_app"
        tables = frozenset({"author"})
        if bind_url:
            binds = (Database(bind_url, bind_url, frozenset({"member"})),)
        command = [
            str(MIGPLAN_PYTHON.parent / "flask"),
            "--app",
            "app",
            "db",
            "upgrade",
        ]
    else:
        command = [str(ALEMBIC), "upgrade", "head"]
        tables = frozenset({"account"})
        _copy(alembic_folder(case.template), root)
        ini = root / "alembic.ini"
        if case.multidb:
            _set_ini_url(ini, {"engine1": bind_urls[0], "engine2": bind_urls[1]})
            binds = (
                Database(bind_urls[0], bind_urls[0], frozenset({"account"})),
                Database(bind_urls[1], bind_urls[1], frozenset({"audit_entry"})),
            )
            tables = frozenset()
        else:
            _set_ini_url(
                ini, {"alembic": _async(app_url) if case.is_async else app_url}
            )
    if case.family == "hand-written":
        (root / "migrations" / "env.py").write_text(HAND_WRITTEN[case.id])
        (root / "models.py").write_text(MODELS)
        metadata = "models:Base.metadata"
        if case.id == "environ-database-url":
            env["DATABASE_URL"] = own_database("environ")
        if case.id == "settings-object":
            (root / "settings.py").write_text(
                '"""The app\'s settings."""\n\n\nclass Settings:\n'
                f"    database_url = {own_database('settings')!r}\n\n\n"
                "settings = Settings()\n"
            )
        if case.id == "app-engine":
            (root / "database.py").write_text(
                '"""The app\'s database."""\nfrom sqlalchemy import create_engine\n\n'
                f"engine = create_engine({own_database('engine')!r})\n"
            )
        if case.id == "ini-without-logging":
            _strip_logging(ini)
    env_url = _async(url) if case.is_async else url
    if case.is_async:
        env["PYTHONPATH"] = str(async_drivers())
    (root / "migplan.yaml").write_text(_yaml(case, env_url, app, metadata))
    head, message = _head(root / "migrations" / "versions")
    return CorpusProject(
        root=root,
        case=case,
        database=Database(env_url, url, tables),
        binds=binds,
        head=head,
        message=message,
        own=tuple(own),
        env=env,
        own_command=tuple(command),
    )


def password_url(url: str, user: str, password: str) -> str:
    """`url` with the given user and password, percent-encoded as a user writes
    them in a URL."""
    parsed = urllib.parse.urlsplit(url)
    userinfo = (
        f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    )
    host = parsed.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parsed._replace(netloc=f"{userinfo}@{host}"))


def warm() -> None:
    """Build every cached venv and folder (what the first test run would)."""
    for release in RELEASES:
        for multidb in (False, True):
            print(flask_migrate_folder(release, multidb), flush=True)
    for template in ("generic", "pyproject", "async", "pyproject_async", "multidb"):
        print(alembic_folder(template), flush=True)
    print(async_drivers(), flush=True)


if __name__ == "__main__":
    warm()
