"""Generate a realistic Alembic project: a linear chain with side branches merged
back every ~50 revisions; each revision real small DDL with an exact downgrade."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ENV_PY = Path(__file__).resolve().parent.parent / "migplan" / "templates" / "migplan" / "env.py"

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


def rev_id(n: int) -> str:
    return hashlib.sha1(f"rev{n}".encode()).hexdigest()[:12]


def generate(root: Path, count: int, db_file: str = "bench.db") -> Path:
    """Write alembic.ini, migrations/ and migplan.yaml for `count` revisions."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    (root / "migrations" / "env.py").write_text(ENV_PY.read_text())
    (root / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\n"
        f"sqlalchemy.url = sqlite:///%(here)s/{db_file}\n"
    )
    envs = "".join(
        f"  env{i}:\n    url: sqlite:///env{i}.db\n    target: heads\n" for i in range(10)
    )
    (root / "migplan.yaml").write_text(
        "migrations: migrations\ndefault_env: dev\nenvironments:\n"
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
                message=message, rev=rev, down=down, down_text=down_text,
                upgrade=upgrade, downgrade=downgrade,
            )
        )
    return root


if __name__ == "__main__":
    generate(Path(sys.argv[1]), int(sys.argv[2]))
