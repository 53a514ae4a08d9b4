"""Alembic environment for migplan, over several databases at once.

The databases are the Flask-SQLAlchemy app's: its default one and one per bind
key. Each has its own version table and its own part of every revision file,
`upgrade_<name>()` / `downgrade_<name>()`, named "" for the default database.
Run by migplan (`migplan db upgrade -e staging`), the default database is
migplan's connection to the environment's URL and each bind the environment's
`binds:` URL, else the app's; the models' MetaData is the bind's own.
"""

import logging
from contextlib import ExitStack
from logging.config import fileConfig

from alembic import context
from flask import current_app
from flask import has_app_context
from sqlalchemy import MetaData
from sqlalchemy import engine_from_config
from sqlalchemy import make_url
from sqlalchemy import pool

config = context.config
if config.config_file_name is not None and config.file_config.has_section("loggers"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

if not has_app_context():
    raise RuntimeError(
        "this env.py migrates a Flask app's databases: name the app in "
        "migplan.yaml (app: module:create_app)"
    )
db = current_app.extensions["sqlalchemy"]
migplan_tables = frozenset(config.attributes.get("migplan.tables", ()))

# "" is the default database (Flask-SQLAlchemy's bind key None), then the binds
databases = [""] + [key for key in db.engines if key is not None]


def bind_key(name):
    return name or None


def models_of(name):
    """The MetaData of the models on database `name` (None: it has none)."""
    return db.metadatas.get(bind_key(name))


def default_engine():
    """The config's URL (migplan's environment), else the app's default engine."""
    if config.get_main_option("sqlalchemy.url"):
        return engine_from_config(
            config.get_section(config.config_ini_section, {}),
            prefix="sqlalchemy.",
            poolclass=pool.NullPool,
        )
    return db.engines[None]


def engine_of(name):
    return db.engines[bind_key(name)] if name else default_engine()


def url_of(name):
    """Database `name`'s URL, for --sql (which needs no connection, nor engine)."""
    if not name and config.get_main_option("sqlalchemy.url"):
        return make_url(config.get_main_option("sqlalchemy.url"))
    return db.engines[bind_key(name)].url


def include_name_for(name, then=None):
    """Autogenerate compares a database's tables with its models, leaving out
    migplan's own tables, and all of a database that has no models."""
    has_models = models_of(name) is not None

    def include_name(object_name, type_, parent_names):
        if type_ == "table" and (not has_models or object_name in migplan_tables):
            return False
        return then is None or then(object_name, type_, parent_names)

    return include_name


def process_revision_directives(context, revision, directives):
    """Write no revision file when autogenerate finds no change in any database
    (it is called once per database: decide after the last)."""
    if not getattr(config.cmd_opts, "autogenerate", False):
        return
    script = directives[0]
    if len(script.upgrade_ops_list) < len(databases):
        return
    if all(ops.is_empty() for ops in script.upgrade_ops_list):
        directives[:] = []
        logger.info("No changes in schema detected.")


def configure_args(name, dialect):
    """What env.py hands `context.configure` for database `name`: the app's
    Flask-Migrate settings (`Migrate(configure_args=...)`), with migplan's."""
    models = models_of(name)
    migrate = current_app.extensions.get("migrate")
    args = dict(getattr(migrate, "configure_args", None) or {})
    args["include_name"] = include_name_for(name, args.get("include_name"))
    args.setdefault("process_revision_directives", process_revision_directives)
    args.setdefault("compare_type", True)
    # SQLite can only ALTER a table by copying it: let autogenerate say so
    args.setdefault("render_as_batch", dialect == "sqlite")
    # each database's code goes into upgrade_<name>() / downgrade_<name>()
    args["upgrade_token"] = f"{name}_upgrades"
    args["downgrade_token"] = f"{name}_downgrades"
    args["target_metadata"] = MetaData() if models is None else models
    return args


def label(name):
    return name or "(default)"


def run_migrations_offline():
    """Write the SQL of the migrations (--sql), database after database, each
    part headed by the database's name."""
    for name in databases:
        url = url_of(name)
        args = configure_args(name, url.get_backend_name())
        args.update(literal_binds=True, dialect_opts={"paramstyle": "named"})
        context.configure(url=url, **args)
        # into the stream Alembic writes the SQL to (stdout, or migplan's)
        context.get_context().output_buffer.write(f"-- database {label(name)}\n\n")
        with context.begin_transaction():
            context.run_migrations(engine_name=name)


def run_migrations_online():
    """Run the migrations with a transaction open on every database; commit them
    all when every database is done, else roll them all back."""
    with ExitStack() as stack:
        transactions = []
        connections = {}
        for name in databases:
            connection = config.attributes.get("connection") if not name else None
            if connection is None:
                # env.py's own connection (migplan's stays open for migplan)
                connection = stack.enter_context(engine_of(name).connect())
            transactions.append(connection.begin())
            connections[name] = connection
        try:
            for name, connection in connections.items():
                logger.info("Database %s", label(name))
                args = configure_args(name, connection.dialect.name)
                context.configure(connection=connection, **args)
                context.run_migrations(engine_name=name)
        except BaseException:
            for transaction in transactions:
                if transaction.is_active:
                    transaction.rollback()
            raise
        for transaction in transactions:
            transaction.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
