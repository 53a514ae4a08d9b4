# Alembic settings and logging for `migplan db ...`; the database URL of each
# environment lives in migplan.yaml, not here.

[alembic]
# migplan sets script_location and sqlalchemy.url itself. Alembic's other
# options, if the project wants any, go in this section.
#
# The databases are the Flask app's own (its default one and its binds): env.py
# finds them there, so none are listed here.

# How `migplan db ...` logs, in Python's logging.config.fileConfig format:
# Alembic's progress at INFO, SQLAlchemy only when it warns, all on stderr.
[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
