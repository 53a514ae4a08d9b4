"""Alembic environment for migplan.

migplan runs this file on the connection of the environment you name
(`migplan db upgrade -e staging`); the URL comes from migplan.yaml, never from
here, and the models' MetaData from its `app:` or `metadata:` setting.
"""

import logging
from logging.config import fileConfig

from alembic import context

config = context.config
if config.config_file_name is not None and config.file_config.has_section("loggers"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_metadata = config.attributes.get("target_metadata")
migplan_tables = frozenset(config.attributes.get("migplan.tables", ()))


def include_name(name, type_, parent_names):
    """Leave migplan's own tables (its audit trail) out of autogenerate."""
    return not (type_ == "table" and name in migplan_tables)


def process_revision_directives(context, revision, directives):
    """Write no revision file when autogenerate finds no change."""
    if getattr(config.cmd_opts, "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")


def run_migrations_offline():
    """Write the SQL of the migrations instead of running it (--sql)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations on migplan's connection (or one made from the URL)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    from sqlalchemy import engine_from_config
    from sqlalchemy import pool

    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        run_on(connection)


def run_on(connection):
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite can only ALTER a table by copying it: let autogenerate say so
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
        process_revision_directives=process_revision_directives,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
