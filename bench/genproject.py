"""Generate a realistic Alembic project: a linear chain with side branches merged
back every ~50 revisions; each revision real small DDL with an exact downgrade.

Two shapes, the same history: "plain" (migplan.yaml names no app) and "app"
(migplan.yaml says `app: benchapp:create_app`, a small Flask-SQLAlchemy app with
Flask-Migrate initialised and a few models, written here as benchapp.py), which
is what a Flask-Migrate project looks like.

    python bench/genproject.py DIR COUNT [plain|app]
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

ENV_PY = (
    Path(__file__).resolve().parent.parent
    / "migplan"
    / "templates"
    / "migplan"
    / "env.py"
)

REVISION = '''"""{message}

Revision ID: {rev}
Revises: {down_text}
Create Date: 2026-01-01 00:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


def as_users_run() -> None:
    """Let the commands a bench runs cache their bytecode, as a user's Python
    does: with PYTHONDONTWRITEBYTECODE set (some shells and CI images set it),
    every run would compile migplan, the revision files and every library
    source again, and a bench would measure the compiler."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


SHAPES = ("app", "plain")

# The Flask app of the "app" shape: a factory, Flask-SQLAlchemy, Flask-Migrate,
# a few related models. Its own database is never touched (migplan hands the
# environment's URL to Flask-SQLAlchemy).
BENCHAPP = '''"""A small Flask-SQLAlchemy app with Flask-Migrate, as `flask db init` projects have."""

from datetime import datetime

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()

post_tags = db.Table(
    "post_tags",
    db.Column("post_id", db.Integer, db.ForeignKey("post.id"), primary_key=True),
    db.Column("tag_id", db.Integer, db.ForeignKey("tag.id"), primary_key=True),
)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(120), unique=True, nullable=False)
    name = db.Column(db.String(80))
    created_at = db.Column(db.DateTime, default=datetime.utcnow)
    posts = db.relationship("Post", back_populates="author")


class Post(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    body = db.Column(db.Text)
    author_id = db.Column(db.Integer, db.ForeignKey("user.id"), index=True)
    author = db.relationship("User", back_populates="posts")
    tags = db.relationship("Tag", secondary=post_tags, backref="posts")


class Tag(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), unique=True, nullable=False)


class Comment(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    post_id = db.Column(db.Integer, db.ForeignKey("post.id"), index=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    text = db.Column(db.Text, nullable=False)


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///benchapp-own.db"
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    db.init_app(app)
    migrate.init_app(app, db)
    return app
'''


def rev_id(n: int) -> str:
    return hashlib.sha1(f"rev{n}".encode()).hexdigest()[:12]


def generate(
    root: Path, count: int, db_file: str = "bench.db", shape: str = "plain"
) -> Path:
    """Write alembic.ini, migrations/ and migplan.yaml for `count` revisions (and
    benchapp.py, named by `app:`, for the "app" shape)."""
    if shape not in SHAPES:
        raise ValueError(f"shape {shape!r}: one of {', '.join(SHAPES)}")
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    (root / "migrations" / "env.py").write_text(ENV_PY.read_text())
    (root / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\n"
        f"sqlalchemy.url = sqlite:///%(here)s/{db_file}\n"
    )
    envs = "".join(
        f"  env{i}:\n    url: sqlite:///env{i}.db\n    target: heads\n"
        for i in range(10)
    )
    app_line = ""
    if shape == "app":
        (root / "benchapp.py").write_text(BENCHAPP)
        app_line = "app: benchapp:create_app\n"
    (root / "migplan.yaml").write_text(
        "migrations: migrations\n" + app_line + "default_env: dev\nenvironments:\n"
        f"  dev:\n    url: sqlite:///{db_file}\n    target: heads\n" + envs
    )
    main = None  # head of the main line
    side = None  # head of the open side branch
    n = 0
    table = 0
    while n < count:
        n += 1
        rev = rev_id(n)
        if side is None and n % 50 == 10 and n + 3 < count:
            # open a side branch off the main line
            side_down = main
            side = "open"
        if side == "open" and n % 50 == 20:
            down = side_down
            side = rev
        elif side not in (None, "open") and n % 50 in (21, 22, 23):
            down = side
            side = rev
        elif side not in (None, "open") and n % 50 == 40:
            down = (main, side)  # merge the side branch back
            side = None
        else:
            down = main
        if isinstance(down, tuple):
            upgrade, downgrade = "    pass", "    pass"
            message = "merge side branch"
            main = rev
        else:
            table += 1
            name = f"t{table}"
            upgrade = (
                f"    op.create_table({name!r}, sa.Column('id', sa.Integer, primary_key=True),"
                f" sa.Column('name', sa.String(50)))\n"
                f"    op.create_index('ix_{name}_name', {name!r}, ['name'])"
            )
            downgrade = f"    op.drop_index('ix_{name}_name', table_name={name!r})\n    op.drop_table({name!r})"
            message = f"create table {name}"
            if side not in (None, "open") and rev == side:
                pass
            else:
                main = rev
        down_text = ", ".join(down) if isinstance(down, tuple) else (down or "")
        (versions / f"{rev}_{message.replace(' ', '_')}.py").write_text(
            REVISION.format(
                message=message,
                rev=rev,
                down=down,
                down_text=down_text,
                upgrade=upgrade,
                downgrade=downgrade,
            )
        )
    return root


if __name__ == "__main__":
    generate(
        Path(sys.argv[1]),
        int(sys.argv[2]),
        shape=sys.argv[3] if len(sys.argv) > 3 else "plain",
    )
