"""Checkpoints on the real databases: made by `migplan checkpoint` (pg_dump,
mariadb-dump, sqlite3's iterdump), loaded by apply into empty databases at base,
proven by verify, refused once stale.

Each revision writes a row to a log table, so a revision that ran twice (once
in the checkpoint, once replayed) is seen in the data. A database loaded from a
checkpoint is compared, by SQLAlchemy's reflection and its rows, with one that
replayed the same history.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from conftest import MYSQL_ADMIN_URL
from conftest import PG_ADMIN_URL
from conftest import Project
from conftest import driver_url
from conftest import query
from conftest import run
from conftest import version_rows

ENUM = "sa.Enum('new', 'done', name='item_status')"


def log(rev: str) -> str:
    return f"op.execute(\"INSERT INTO log (rev) VALUES ('{rev}')\")"


def history(project: Project) -> None:
    """r1: a lookup table with its rows and the log; r2: a table with an enum
    column, a foreign key, a check and an index; r3: a view."""
    project.add_revision(
        "r1",
        None,
        "op.create_table('log', sa.Column('rev', sa.String(8), nullable=False))\n"
        "color = op.create_table('color', "
        "sa.Column('id', sa.Integer, primary_key=True), "
        "sa.Column('name', sa.String(20), nullable=False, unique=True), "
        "sa.Column('rank', sa.Integer, server_default='0'))\n"
        "op.bulk_insert(color, [{'name': 'red'}, {'name': 'it''s 100%; green'}])\n"
        + log("r1"),
        "op.drop_table('color')\nop.drop_table('log')",
    )
    project.add_revision(
        "r2",
        "r1",
        "op.create_table('item', "
        "sa.Column('id', sa.Integer, primary_key=True), "
        "sa.Column('name', sa.String(40), nullable=False), "
        f"sa.Column('status', {ENUM}, nullable=False, server_default='new'), "
        "sa.Column('color_id', sa.Integer, sa.ForeignKey('color.id')), "
        "sa.CheckConstraint('length(name) > 0', name='ck_item_name'))\n"
        "op.create_index('ix_item_name', 'item', ['name'])\n"
        "op.execute(\"INSERT INTO item (name, color_id) VALUES ('pen', 1)\")\n"
        + log("r2"),
        "op.drop_table('item')\n"
        "sa.Enum(name='item_status').drop(op.get_bind(), checkfirst=True)\n"
        "op.execute(\"DELETE FROM log WHERE rev = 'r2'\")",
    )
    project.add_revision(
        "r3",
        "r2",
        "op.execute('CREATE VIEW item_names AS SELECT name FROM item')\n" + log("r3"),
        "op.execute('DROP VIEW item_names')\n"
        "op.execute(\"DELETE FROM log WHERE rev = 'r3'\")",
    )


def configure(project: Project, **envs: str) -> None:
    lines = ["default_env: dev", "environments:"]
    for name, url in envs.items():
        lines += [f"  {name}:", f"    url: {url}", "    target: head"]
    project.write_config("\n".join(lines) + "\n")


def fresh_database(url: str) -> Iterator[str]:
    """Another empty database on the same server (a SQLite file beside)."""
    if url.startswith("sqlite"):
        yield url.replace(".db", f"_{uuid.uuid4().hex[:6]}.db")
        return
    admin = PG_ADMIN_URL if url.startswith("postgresql") else MYSQL_ADMIN_URL
    engine = sa.create_engine(driver_url(admin), isolation_level="AUTOCOMMIT")
    name = f"migplan_ck_{uuid.uuid4().hex[:10]}"
    quote = '"' if url.startswith("postgresql") else "`"
    with engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {quote}{name}{quote}")
    try:
        yield sa.make_url(url).set(database=name).render_as_string(False)
    finally:
        force = " WITH (FORCE)" if quote == '"' else ""
        with engine.connect() as connection:
            connection.exec_driver_sql(
                f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"
            )
        engine.dispose()


@pytest.fixture
def other(db_url: str) -> Iterator[str]:
    yield from fresh_database(db_url)


@pytest.fixture
def scratch(db_url: str) -> Iterator[list[str]]:
    """`--url SCRATCH` for a server dialect; nothing for SQLite."""
    if db_url.startswith("sqlite"):
        yield []
        return
    for url in fresh_database(db_url):
        yield ["--url", url]


def looks(url: str) -> dict[str, object]:
    """What a user would compare of two databases: tables, columns (type,
    nullability, default), keys, indexes, checks, views, and every row."""
    engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        found: dict[str, object] = {}
        names = [t for t in inspector.get_table_names() if not t.startswith("migplan")]
        with engine.connect() as connection:
            for table in sorted(names):
                found[table] = (
                    [
                        (c["name"], str(c["type"]), c["nullable"], str(c["default"]))
                        for c in inspector.get_columns(table)
                    ],
                    inspector.get_pk_constraint(table)["constrained_columns"],
                    sorted(str(i["name"]) for i in inspector.get_indexes(table)),
                    sorted(
                        (tuple(f["constrained_columns"]), f["referred_table"])
                        for f in inspector.get_foreign_keys(table)
                    ),
                    sorted(
                        str(c["name"]) for c in inspector.get_check_constraints(table)
                    ),
                    sorted(
                        repr(tuple(r))
                        for r in connection.exec_driver_sql(f"SELECT * FROM {table}")
                    ),
                )
            found["views"] = sorted(inspector.get_view_names())
            if engine.dialect.name == "postgresql":
                found["enums"] = inspector.get_enums()  # type: ignore[attr-defined]
                found["next ids"] = [
                    connection.exec_driver_sql(f"SELECT nextval('{s}')").scalar()
                    for s in sorted(inspector.get_sequence_names())
                ]
        return found
    finally:
        engine.dispose()


def checkpoint_file(project: Project, rev: str, url: str) -> Path:
    dialect = sa.make_url(url).get_dialect().name
    return project.root / "migrations" / "checkpoints" / f"{rev}.{dialect}.sql"


def test_a_fresh_database_loads_the_checkpoint_and_equals_a_replay(
    project: Project, db_url: str, other: str, scratch: list[str]
):
    history(project)
    configure(project, dev=db_url, replayed=other)
    made = run(project.root, "checkpoint", *scratch, "--json")
    assert made.exit_code == 0, made.stderr
    body = json.loads(made.stdout)
    assert (body["revision"], body["revisions"]) == ("r3", 3)
    assert checkpoint_file(project, "r3", db_url).is_file()
    project.add_revision("r4", "r3", log("r4"), "op.execute('DELETE FROM log')")

    plan = json.loads(run(project.root, "plan", "dev", "--json").stdout)
    assert [(s["direction"], s["revision"]) for s in plan["steps"]] == [
        ("checkpoint", "r3"),
        ("upgrade", "r4"),
    ]
    assert plan["steps"][0]["replaces"] == 3
    applied = run(project.root, "apply", "dev")
    assert applied.exit_code == 0, applied.stderr
    assert "[1/2] checkpoint r3" in applied.stdout
    assert "[2/2] upgrade r4" in applied.stdout
    assert version_rows(db_url) == ["r4"]
    # every revision ran once: three in the checkpoint's rows, one replayed
    assert sorted(r[0] for r in query(db_url, "SELECT rev FROM log")) == [
        "r1",
        "r2",
        "r3",
        "r4",
    ]

    replay = run(project.root, "apply", "replayed", "--no-checkpoint")
    assert replay.exit_code == 0, replay.stderr
    assert "[1/4] upgrade r1" in replay.stdout
    assert looks(db_url) == looks(other)

    logged = json.loads(run(project.root, "log", "dev", "--json").stdout)
    runs = logged["databases"][0]["runs"]
    steps = runs[0]["steps"]
    assert [(s["direction"], s["revision"], s["outcome"]) for s in steps] == [
        ("checkpoint", "r3", "done"),
        ("upgrade", "r4", "done"),
    ]
    assert sorted(steps[0]["covers"]) == ["r1", "r2", "r3"]


def test_rolling_back_below_a_checkpoint_runs_the_real_downgrades(
    project: Project, db_url: str, scratch: list[str]
):
    history(project)
    configure(project, dev=db_url)
    assert run(project.root, "checkpoint", *scratch).exit_code == 0
    assert run(project.root, "apply", "dev").exit_code == 0
    back = run(project.root, "rollback", "dev", "--to", "r1", "-y")
    assert back.exit_code == 0, back.stderr
    assert "downgrade r3" in back.stdout and "downgrade r2" in back.stdout
    assert version_rows(db_url) == ["r1"]
    assert [r[0] for r in query(db_url, "SELECT rev FROM log")] == ["r1"]


def test_a_changed_covered_revision_makes_the_checkpoint_stale(
    project: Project, db_url: str, scratch: list[str]
):
    history(project)
    configure(project, dev=db_url)
    assert run(project.root, "checkpoint", *scratch).exit_code == 0
    r2 = next(project.versions.glob("r2_*.py"))
    r2.write_text(r2.read_text() + "\n# reviewed\n")
    plan = json.loads(run(project.root, "plan", "dev", "--json").stdout)
    assert [s["direction"] for s in plan["steps"]] == ["upgrade"] * 3
    assert any("is stale" in n and "r2_" in n for n in plan["notes"])
    assert run(project.root, "apply", "dev").exit_code == 0
    assert sorted(r[0] for r in query(db_url, "SELECT rev FROM log")) == [
        "r1",
        "r2",
        "r3",
    ]


def test_a_database_that_is_not_empty_or_is_versioned_never_loads_one(
    project: Project, db_url: str, scratch: list[str]
):
    history(project)
    configure(project, dev=db_url)
    assert run(project.root, "checkpoint", *scratch).exit_code == 0
    engine = sa.create_engine(driver_url(db_url), poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE legacy (id INTEGER)")
    engine.dispose()
    plan = json.loads(run(project.root, "plan", "dev", "--json").stdout)
    assert [s["direction"] for s in plan["steps"]] == ["upgrade"] * 3
    assert any("not empty" in n for n in plan["notes"])
    # versioned: at r1, the rest replays
    assert run(project.root, "apply", "dev", "--no-checkpoint").exit_code == 0
    assert run(project.root, "rollback", "dev", "--to", "r1", "-y").exit_code == 0
    plan = json.loads(run(project.root, "plan", "dev", "--json").stdout)
    assert [s["direction"] for s in plan["steps"]] == ["upgrade", "upgrade"]


def test_verify_proves_a_checkpoint_and_catches_a_forged_one(
    project: Project, db_url: str, scratch: list[str]
):
    history(project)
    configure(project, dev=db_url)
    assert run(project.root, "checkpoint", *scratch).exit_code == 0
    proven = run(project.root, "verify", *scratch, "--json")
    assert proven.exit_code == 0, proven.stdout + proven.stderr
    assert json.loads(proven.stdout)["checkpoints"] == [
        checkpoint_file(project, "r3", db_url).relative_to(project.root).as_posix()
    ]

    path = checkpoint_file(project, "r3", db_url)
    text = path.read_text()
    assert "red" in text
    # edited by hand: plan sees it, and replays
    path.write_text(text.replace("red", "blue"))
    plan = json.loads(run(project.root, "plan", "dev", "--json").stdout)
    assert [s["direction"] for s in plan["steps"]] == ["upgrade"] * 3
    assert any("edited after it was made" in n for n in plan["notes"])

    # forged with a header to match: only the comparison with a replay finds it
    from migplan.core import checkpoint

    found = checkpoint.parse_header(text)
    forged = checkpoint.render(
        found.revision,
        found.dialect,
        found.covers,
        checkpoint.body(text).replace("red", "blue"),
        schema=found.schema,
        tool=found.tool,
    )
    path.write_text(forged)
    caught = run(project.root, "verify", *scratch, "--json")
    assert caught.exit_code == 1
    problems = json.loads(caught.stdout)["problems"]
    assert any("does not match a replay" in p and "color" in p for p in problems)


def test_a_fleets_new_schemas_start_from_the_checkpoint(project: Project, pg_url: str):
    history(project)
    for url in fresh_database(pg_url):
        configure(project, dev=pg_url)
        assert run(project.root, "checkpoint", "--url", url).exit_code == 0
    project.write_config(
        f"""
        default_env: tenants
        environments:
          tenants:
            url: {pg_url}
            schemas: [acme, Globex]
            target: head
        """
    )
    plan = run(project.root, "plan", "tenants")
    assert plan.exit_code == 0, plan.stderr
    applied = run(project.root, "apply", "tenants", "-y")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    for schema in ("acme", "Globex"):
        rows = query(pg_url, f'SELECT rev FROM "{schema}".log')
        assert sorted(r[0] for r in rows) == ["r1", "r2", "r3"]
        assert query(pg_url, f'SELECT version_num FROM "{schema}".alembic_version') == [
            ("r3",)
        ]
        audit = query(pg_url, f'SELECT steps FROM "{schema}".migplan_audit')
        assert json.loads(str(audit[0][0]))[0]["direction"] == "checkpoint"
    assert query(
        pg_url,
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_name = 'log'",
    ) == [(0,)]


def test_a_load_that_fails_leaves_base_or_a_dirty_database_said(
    project: Project, db_url: str, scratch: list[str]
):
    history(project)
    configure(project, dev=db_url)
    assert run(project.root, "checkpoint", *scratch).exit_code == 0
    from migplan.core import checkpoint

    path = checkpoint_file(project, "r3", db_url)
    text = path.read_text()
    found = checkpoint.parse_header(text)
    failing = checkpoint.body(text) + "\nINSERT INTO no_such_table VALUES (1);\n"
    path.write_text(
        checkpoint.render(
            found.revision,
            found.dialect,
            found.covers,
            failing,
            schema=found.schema,
            tool=found.tool,
        )
    )
    failed = run(project.root, "apply", "dev")
    assert failed.exit_code == 1
    assert "checkpoint r3 failed" in failed.stderr
    assert version_rows(db_url) == []
    after = run(project.root, "plan", "dev")
    if db_url.startswith("mysql"):
        # its DDL committed as it went: dirty until resolved, and said
        assert "not transactional" in failed.stderr
        assert "dirty" in after.stdout + after.stderr
        refused = run(project.root, "apply", "dev")
        assert refused.exit_code == 1 and "dirty" in refused.stderr
    else:
        assert "the database is at base" in failed.stderr
        engine = sa.create_engine(driver_url(db_url), poolclass=sa.pool.NullPool)
        left = [
            t
            for t in sa.inspect(engine).get_table_names()
            if not t.startswith("migplan")
        ]
        engine.dispose()
        assert left == []
        assert after.exit_code == 0 and "checkpoint" in after.stdout


def test_plain_alembic_never_sees_a_checkpoint_and_keeps_replaying(
    project: Project, sqlite_url: str
):
    from alembic import command
    from alembic.config import Config

    history(project)
    configure(project, dev=sqlite_url)
    assert run(project.root, "checkpoint").exit_code == 0
    config = Config()
    config.set_main_option("script_location", str(project.root / "migrations"))
    config.set_main_option("sqlalchemy.url", sqlite_url)
    assert {
        s.revision for s in ScriptDirectory.from_config(config).walk_revisions()
    } == {
        "r1",
        "r2",
        "r3",
    }
    command.upgrade(config, "head")
    assert version_rows(sqlite_url) == ["r3"]
    assert sorted(r[0] for r in query(sqlite_url, "SELECT rev FROM log")) == [
        "r1",
        "r2",
        "r3",
    ]


def test_a_checkpoint_too_big_for_one_postgresql_transaction_is_replayed(
    project: Project, pg_url: str
):
    from migplan.core import checkpoint

    history(project)
    configure(project, dev=pg_url)
    for url in fresh_database(pg_url):
        assert run(project.root, "checkpoint", "--url", url).exit_code == 0
    path = checkpoint_file(project, "r3", pg_url)
    text = path.read_text()
    found = checkpoint.parse_header(text)
    assert found.relations >= 8  # color, item, log: tables, keys, sequences, TOAST
    # as if its history had created a million relations
    path.write_text(
        checkpoint.render(
            found.revision,
            found.dialect,
            found.covers,
            checkpoint.body(text),
            schema=found.schema,
            tool=found.tool,
            relations=1_000_000,
        )
    )
    plan = json.loads(run(project.root, "plan", "dev", "--json").stdout)
    assert [s["direction"] for s in plan["steps"]] == ["upgrade"] * 3
    assert any("max_locks_per_transaction" in n for n in plan["notes"])
