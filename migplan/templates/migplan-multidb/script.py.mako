<%!
    def database_names(context):
        """The default database (""), then the Flask app's binds, then any
        other database autogenerate wrote code for."""
        from flask import current_app
        from flask import has_app_context

        names = [""]
        if has_app_context() and "sqlalchemy" in current_app.extensions:
            engines = current_app.extensions["sqlalchemy"].engines
            names += [key for key in engines if key is not None]
        for key in context.keys():
            name = key[: -len("_upgrades")]
            if key.endswith("_upgrades") and name not in names:
                names.append(name)
        return names
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# this revision, the one(s) it follows, its branch labels and dependencies
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


# env.py runs upgrade(engine_name) once per database, "" being the default one
def upgrade(engine_name):
    globals()[f"upgrade_{engine_name}"]()


def downgrade(engine_name):
    globals()[f"downgrade_{engine_name}"]()
% for name in database_names(context):


def upgrade_${name}():
    ${context.get(name + "_upgrades") or "pass"}


def downgrade_${name}():
    ${context.get(name + "_downgrades") or "pass"}
% endfor
