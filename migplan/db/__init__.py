"""db: everything that talks to a database or runs Alembic.

Connections and engines, reading and writing the version table, the migration lock,
the audit trail, running steps through the project's env.py, loading the Flask app,
drift, reflection, fleet catalogs, and the `db` commands (one function per Alembic
command).

May import: `core`, `project`, `errors`, `compat`. The only layer that imports
SQLAlchemy, Flask and Alembic's runtime.
"""
