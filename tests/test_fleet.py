"""Fleets on the real PostgreSQL server: 20 databases, 20 schemas of one database,
and a catalog that lists them; `plan` groups them, `apply` goes canaries first,
then `concurrency` at a time, and stops starting new ones past `max_failures`.

Revisions a1 -> b2 -> c3 each create their table t_<rev>. c3 raises, after its
CREATE TABLE, on a tenant named in the project's `broken` file (a database's or a
schema's name, one a line): the failure belongs to the database, not to the run,
so removing the file and applying again finishes the fleet. While one is broken,
every other tenant's c3 sleeps a little, so that the broken one fails before most
of the rest have started. PostgreSQL's DDL is transactional: the broken tenant
stays at b2, without t_c3.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Project
from conftest import create_table
from conftest import display_url
from conftest import driver_url
from conftest import query
from conftest import run
from conftest import run_process
from conftest import tables
from conftest import version_rows

TENANTS = 20
SECRET = "s3cr3t"
CATALOG_SECRET = "c4t4l0g"

C3_UPGRADE = """\
import pathlib
here = op.get_bind().exec_driver_sql(
    'SELECT current_database(), current_schema()'
).one()
op.create_table('t_c3', sa.Column('id', sa.Integer, primary_key=True))
marker = pathlib.Path({marker!r})
broken = set(marker.read_text().split()) if marker.exists() else set()
if broken & set(here):
    raise RuntimeError(f'tenant {{here[0]}}/{{here[1]}} is broken')
if broken:
    op.execute('SELECT pg_sleep(0.2)')
"""


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet_databases(pg_admin: sa.Engine) -> Iterator[list[str]]:
    """20 databases, <prefix>_00 .. <prefix>_19 (so in name order), made once for
    the module: a DROP DATABASE waits for the disk, an emptied schema does not."""
    prefix = f"migplan_fleet_{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}_{i:02d}" for i in range(TENANTS)]
    with pg_admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield [
        pg_admin.url.set(database=name).render_as_string(hide_password=False)
        for name in names
    ]

    def drop(name: str) -> None:
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(drop, names))


@pytest.fixture
def fleet_urls(fleet_databases: list[str]) -> list[str]:
    """The 20 databases, emptied: every one at base, without a table."""
    for url in fleet_databases:
        engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        engine.dispose()
    return fleet_databases


@pytest.fixture
def schema_names(pg_url: str) -> list[str]:
    """The names of 20 schemas of the fresh database `pg_url`, not created: apply
    creates them."""
    prefix = f"tenant_{uuid.uuid4().hex[:8]}"
    return [f"{prefix}_{i:02d}" for i in range(TENANTS)]


# -- helpers ----------------------------------------------------------------------


def database_name(url: str) -> str:
    return str(sa.make_url(url).database)


def abc_project(project: Project, *members: str, **settings: str) -> Path:
    """Revisions a1 -> b2 -> c3 and the environment `fleet`, whose lines (after
    `fleet:`) are `members` then `settings`; returns the `broken` marker file."""
    marker = project.root / "broken"
    project.add_revision("a1", None, *create_table("t_a1"))
    project.add_revision("b2", "a1", *create_table("t_b2"))
    upgrade = C3_UPGRADE.format(marker=str(marker))
    project.add_revision("c3", "b2", upgrade, create_table("t_c3")[1])
    lines = ["default_env: fleet", "environments:", "  fleet:", *members]
    lines += ["    target: head"]
    lines += [f"    {key}: {value}" for key, value in settings.items()]
    project.write_config("\n".join(lines) + "\n")
    return marker


def databases_fleet(project: Project, urls: list[str], **settings: str) -> Path:
    members = ["    databases:", *(f"      - {url}" for url in urls)]
    return abc_project(project, *members, **settings)


def rollout(canary: int = 1, concurrency: int = 4, max_failures: int = 0) -> str:
    return f"{{canary: {canary}, concurrency: {concurrency}, max_failures: {max_failures}}}"


def summary(stdout: str) -> dict[str, tuple[str, str, str]]:
    """The summary table of a fleet apply: name -> (from, to, outcome)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Database "))
    assert lines[start].split() == ["Database", "From", "To", "Outcome", "Took"]
    rows = {}
    for line in lines[start + 1 :]:
        if not line:
            break
        match = re.fullmatch(
            r"(\S+(?: \S+)?)\s{2,}(\S+)\s+(\S+)\s+(.+?)\s+\d+\.\ds", line
        )
        assert match, line
        rows[match.group(1)] = match.group(2, 3, 4)
    return rows


def fleet_line(stdout: str) -> str:
    """The `Fleet: ...` line under the summary table."""
    return next(line for line in stdout.splitlines() if line.startswith("Fleet: "))


def counts(**outcomes: int) -> str:
    """The `Fleet: ...` line for these counts (`up_to_date` for "up to date")."""
    order = ("applied", "up_to_date", "failed", "not_started")
    shown = [f"{outcomes[o]} {o.replace('_', ' ')}" for o in order if outcomes.get(o)]
    return f"Fleet: {', '.join(shown)}."


def progress(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if re.match(r"\[\d+/\d+\] ", line)]


def status_rows(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    assert lines[0].split() == [
        "Environment",
        "URL",
        "Current",
        "Target",
        "Pending",
        "State",
    ]
    return [re.split(r"\s{2,}", line) for line in lines[1:]]


def failed_error(names: list[str], not_started: int = 0) -> str:
    tail = f"; {not_started} not started" if not_started else ""
    return (
        f"Error: {len(names)} database(s) failed ({', '.join(names)}){tail}; "
        "run apply again to finish the rest\n"
    )


def c3_failure(database: str, schema: str = "public") -> str:
    return (
        f"failed: upgrade c3 failed: RuntimeError: tenant {database}/{schema} is "
        "broken; the database is at b2, the last migration that succeeded"
    )


# -- databases: ---------------------------------------------------------------------


def test_plan_groups_a_fleet_by_current_revision(
    project: Project, fleet_urls: list[str]
):
    names = [display_url(url) for url in fleet_urls]
    databases_fleet(project, fleet_urls)
    result = run(project.root, "plan")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:4] == [
        "Environment: fleet (20 databases)",
        "Target:      head",
        "",
        "20 at base: 3 steps each.",
    ]
    assert f"From base ({', '.join(names[:5])} and 15 more):" in result.stdout

    # two databases move: three groups, the biggest first
    assert run(project.root, "apply", "--database", names[3]).exit_code == 0
    result = run(project.root, "apply", "--database", names[11], "--yes")
    assert result.exit_code == 0, result.output
    rolled = run(project.root, "rollback", "--database", names[11], "--to", "a1")
    assert rolled.exit_code == 0, rolled.output
    result = run(project.root, "plan", "--detailed-exitcode")
    assert result.exit_code == 2
    assert (
        result.stdout.splitlines()[3]
        == "18 at base: 3 steps each; 1 at a1: 2 steps each; 1 at c3: up to date."
    )
    data = json.loads(run(project.root, "plan", "--json").stdout)
    assert [
        (g["current"], g["databases"], len(g["steps"])) for g in data["groups"]
    ] == [
        ([], [n for i, n in enumerate(names) if i not in (3, 11)], 3),
        (["a1"], [names[11]], 2),
        (["c3"], [names[3]], 0),
    ]
    assert (data["databases"], data["up_to_date"], data["errors"]) == (20, False, [])


def test_apply_stops_past_max_failures_and_a_rerun_finishes(
    project: Project, fleet_urls: list[str]
):
    names = [display_url(url) for url in fleet_urls]
    marker = databases_fleet(project, fleet_urls, rollout=rollout(1, 4, 0))
    marker.write_text(database_name(fleet_urls[7]))

    result = run_process(project.root, "apply", "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    rows = summary(result.stdout)
    assert list(rows) == names
    outcomes = [rows[n][2] for n in names]
    # the canary and every database queued before the broken one were started
    # (and finished); after it, those started while it ran, then none
    assert outcomes[:7] == ["applied"] * 7
    assert outcomes[7] == c3_failure(database_name(fleet_urls[7]))
    after = outcomes[8:]
    started = after.count("applied")
    assert after == ["applied"] * started + ["not started"] * (len(after) - started)
    not_started = len(after) - started
    assert not_started > 0
    assert fleet_line(result.stdout) == counts(
        applied=7 + started, failed=1, not_started=not_started
    )
    assert (
        "Stopped starting databases: more than max_failures (0) failed."
        in result.stdout
    )
    assert result.stderr == failed_error([names[7]], not_started)
    # one progress line per database that ran, counting up to the fleet's size
    assert [line.split(" ", 1)[0] for line in progress(result.stdout)] == [
        f"[{i}/20]" for i in range(1, 20 - not_started + 1)
    ]
    for i, url in enumerate(fleet_urls):
        expected = {"applied": ["c3"], "not started": []}.get(outcomes[i], ["b2"])
        assert version_rows(url) == expected, names[i]
        if outcomes[i] == "not started":
            assert tables(url) == set(), names[i]
    assert "t_c3" not in tables(fleet_urls[7])
    assert rows[names[7]][:2] == ("base", "b2")
    assert rows[names[0]][:2] == ("base", "c3")
    assert rows[names[-1]][:2] == ("?", "?")

    marker.unlink()
    result = run_process(project.root, "apply", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    plan_line = result.stdout.splitlines()[3]
    assert plan_line == (
        f"{7 + started} at c3: up to date; {not_started} at base: 3 steps each; "
        "1 at b2: 1 step each."
        if 7 + started > not_started
        else f"{not_started} at base: 3 steps each; {7 + started} at c3: up to date; "
        "1 at b2: 1 step each."
    )
    rows = summary(result.stdout)
    for i, name in enumerate(names):
        before = outcomes[i]
        if before == "applied":
            assert rows[name] == ("c3", "c3", "up to date"), name
        elif before == "not started":
            assert rows[name] == ("base", "c3", "applied"), name
        else:
            assert rows[name] == ("b2", "c3", "applied"), name
    assert fleet_line(result.stdout) == counts(
        applied=1 + not_started, up_to_date=7 + started
    )
    assert "Stopped" not in result.stdout
    assert [version_rows(url) for url in fleet_urls] == [["c3"]] * TENANTS
    assert tables(fleet_urls[7]) == {
        "alembic_version",
        "migplan_audit",
        "migplan_audit_steps",
        "t_a1",
        "t_b2",
        "t_c3",
    }

    # and once more: nothing to do, nothing started
    result = run_process(project.root, "apply", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[3] == "20 at c3: up to date."
    assert "Fleet:" not in result.stdout


def test_a_failed_canary_starts_nothing_else(project: Project, fleet_urls: list[str]):
    names = [display_url(url) for url in fleet_urls]
    # max_failures would allow it: a canary stops the rollout whatever it says
    marker = databases_fleet(project, fleet_urls, rollout=rollout(1, 4, 5))
    marker.write_text(database_name(fleet_urls[0]))

    result = run_process(project.root, "apply", "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == failed_error([names[0]], 19)
    rows = summary(result.stdout)
    assert rows[names[0]] == ("base", "b2", c3_failure(database_name(fleet_urls[0])))
    assert all(rows[n] == ("?", "?", "not started") for n in names[1:])
    assert fleet_line(result.stdout) == counts(failed=1, not_started=19)
    assert f"Stopped starting databases: canary {names[0]} failed." in result.stdout
    assert len(progress(result.stdout)) == 1
    assert version_rows(fleet_urls[0]) == ["b2"]
    for url in fleet_urls[1:]:
        assert tables(url) == set()


def test_max_failures_lets_the_rollout_go_past_failures(
    project: Project, fleet_urls: list[str]
):
    names = [display_url(url) for url in fleet_urls]
    marker = databases_fleet(project, fleet_urls, rollout=rollout(2, 4, 2))
    marker.write_text(
        f"{database_name(fleet_urls[5])}\n{database_name(fleet_urls[13])}"
    )

    result = run_process(project.root, "apply", "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == failed_error([names[5], names[13]])
    assert fleet_line(result.stdout) == counts(applied=18, failed=2)
    assert "Stopped" not in result.stdout
    assert len(progress(result.stdout)) == 20
    for i, url in enumerate(fleet_urls):
        assert version_rows(url) == (["b2"] if i in (5, 13) else ["c3"]), names[i]


# -- schemas: -------------------------------------------------------------------------


def test_schemas_fleet_keeps_each_tenant_in_its_schema(
    project: Project, pg_url: str, schema_names: list[str]
):
    names = [f"schema {s}" for s in schema_names]
    marker = abc_project(
        project,
        f"    url: {pg_url}",
        "    schemas:",
        *(f"      - {s}" for s in schema_names),
        rollout=rollout(1, 4, 1),
    )
    marker.write_text(schema_names[7])

    result = run(project.root, "plan")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[3] == "20 at base: 3 steps each."
    assert (
        query(
            pg_url,
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'tenant_')",
        )
        == []
    )

    result = run_process(project.root, "apply", "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == failed_error([names[7]])
    rows = summary(result.stdout)
    assert list(rows) == names
    database = database_name(pg_url)
    assert rows[names[7]] == ("base", "b2", c3_failure(database, schema_names[7]))
    assert fleet_line(result.stdout) == counts(applied=19, failed=1)

    def in_schema(schema: str) -> tuple[list[str], set[str]]:
        versions = query(pg_url, f'SELECT version_num FROM "{schema}".alembic_version')
        found = query(
            pg_url,
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = '{schema}'",
        )
        return [v for (v,) in versions], {t for (t,) in found}

    every = {
        "alembic_version",
        "migplan_audit",
        "migplan_audit_steps",
        "t_a1",
        "t_b2",
        "t_c3",
    }
    for i, schema in enumerate(schema_names):
        if i == 7:
            assert in_schema(schema) == (["b2"], every - {"t_c3"})
        else:
            assert in_schema(schema) == (["c3"], every), schema
    assert tables(pg_url) == set()  # nothing in public

    status = run(project.root, "status")
    assert status.exit_code == 0, status.output
    assert [row[1:] for row in status_rows(status.stdout)] == [
        [name, "b2" if i == 7 else "c3", "head", "1 up" if i == 7 else "0"]
        + ["pending" if i == 7 else "up to date"]
        for i, name in enumerate(names)
    ]

    marker.unlink()
    result = run_process(project.root, "apply", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert fleet_line(result.stdout) == counts(applied=1, up_to_date=19)
    for schema in schema_names:
        assert in_schema(schema) == (["c3"], every), schema
    assert tables(pg_url) == set()

    # one schema's rollback leaves the others where they are
    rolled = run(
        project.root, "rollback", "--database", schema_names[3], "--steps", "1"
    )
    assert rolled.exit_code == 0, rolled.output
    assert in_schema(schema_names[3]) == (["b2"], every - {"t_c3"})
    assert in_schema(schema_names[4]) == (["c3"], every)


def test_a_schema_name_keeps_its_case(project: Project, pg_url: str):
    # PostgreSQL folds a bare name to lower case: Acme and acme are two tenants
    abc_project(project, f"    url: {pg_url}", "    schemas: [Acme, acme]")
    result = run_process(project.root, "apply", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(summary(result.stdout)) == ["schema Acme", "schema acme"]
    for schema in ("Acme", "acme"):
        assert query(pg_url, f'SELECT version_num FROM "{schema}".alembic_version') == [
            ("c3",)
        ]
    assert tables(pg_url) == set()


# -- databases_from: ---------------------------------------------------------------


def test_databases_from_a_catalog_never_shows_a_password(
    project: Project,
    fleet_urls: list[str],
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
):
    # trust auth ignores the password: it is there to be hidden
    with_password = sa.make_url(fleet_urls[3]).set(password=SECRET)
    tenant_urls = list(fleet_urls)
    tenant_urls[3] = with_password.render_as_string(hide_password=False)
    engine = sa.create_engine(driver_url(pg_url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE tenants (url text, active boolean)")
        for url in tenant_urls:
            conn.execute(
                sa.text("INSERT INTO tenants VALUES (:url, true)"), {"url": url}
            )
        conn.exec_driver_sql("INSERT INTO tenants VALUES ('postgresql://gone', false)")
    engine.dispose()
    catalog = sa.make_url(pg_url).set(password=CATALOG_SECRET)
    monkeypatch.setenv("CATALOG_URL", catalog.render_as_string(hide_password=False))
    marker = abc_project(
        project,
        "    databases_from:",
        "      url: ${CATALOG_URL}",
        '      query: "select url from tenants where active"',
        rollout=rollout(1, 4, 0),
    )
    names = sorted(display_url(url) for url in tenant_urls)
    masked = display_url(tenant_urls[3])
    assert masked == with_password.render_as_string(hide_password=True)
    assert names[0] == masked  # "postgres:***@" sorts before "postgres@": the canary
    outputs = []

    result = run(project.root, "plan")
    outputs.append(result.output)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:4] == [
        "Environment: fleet (20 databases)",
        "Target:      head",
        "",
        "20 at base: 3 steps each.",
    ]
    result = run(project.root, "plan", "--json")
    outputs.append(result.output)
    assert json.loads(result.stdout)["groups"][0]["databases"] == names

    # the tenant with the password is the canary, and fails: its name is everywhere
    marker.write_text(database_name(fleet_urls[3]))
    failed = run_process(project.root, "apply", "--yes")
    outputs += [failed.stdout, failed.stderr]
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert failed.stderr == failed_error([masked], 19)
    assert summary(failed.stdout)[masked][2] == c3_failure(database_name(fleet_urls[3]))
    marker.unlink()
    applied = run_process(project.root, "apply", "--yes")
    outputs += [applied.stdout, applied.stderr]
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert fleet_line(applied.stdout) == counts(applied=20)
    assert [version_rows(url) for url in fleet_urls] == [["c3"]] * TENANTS

    for args in (
        ("status",),
        ("status", "--json"),
        ("log",),
        ("log", "--json"),
        ("log", "--database", masked),
        ("plan", "--database", fleet_urls[3].rsplit("/", 1)[1]),
    ):
        result = run(project.root, *args)
        assert result.exit_code == 0, (args, result.output)
        outputs.append(result.output)
    assert masked in outputs[-1]
    for text in outputs:
        assert SECRET not in text
        assert CATALOG_SECRET not in text


def test_databases_from_a_failing_query(
    project: Project, pg_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CATALOG_URL", pg_url)
    abc_project(
        project,
        "    databases_from:",
        "      url: ${CATALOG_URL}",
        '      query: "select url from no_such_table"',
    )
    result = run(project.root, "plan")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: environment 'fleet': databases_from query failed: relation "
        '"no_such_table" does not exist\n'
    )


def test_a_database_that_cannot_be_planned(project: Project, pg_url: str):
    missing = sa.make_url(pg_url).set(database=f"zz_missing_{uuid.uuid4().hex[:8]}")
    missing_url = missing.render_as_string(hide_password=False)
    databases_fleet(project, [pg_url, missing_url], rollout=rollout(1, 2, 1))
    result = run(project.root, "plan")
    assert result.exit_code == 1
    assert (
        result.stdout.splitlines()[3]
        == "1 at base: 3 steps each; 1 could not be planned."
    )
    assert result.stderr == "Error: 1 database(s) could not be planned\n"
    # apply goes on with the others: the missing one fails in its turn
    result = run_process(project.root, "apply", "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == failed_error([display_url(missing_url)])
    assert fleet_line(result.stdout) == counts(applied=1, failed=1)
    assert version_rows(pg_url) == ["c3"]


# -- --shard / --database ---------------------------------------------------------


def test_shards_split_the_fleet(project: Project, fleet_urls: list[str]):
    names = [display_url(url) for url in fleet_urls]
    databases_fleet(project, fleet_urls, rollout=rollout(1, 4, 0))
    shards = []
    for k in (1, 2, 3):
        result = run(project.root, "plan", "--json", "--shard", f"{k}/3")
        assert result.exit_code == 0, result.output
        groups = json.loads(result.stdout)["groups"]
        shards.append([n for g in groups for n in g["databases"]])
    assert sorted(n for shard in shards for n in shard) == names  # disjoint, complete
    # every runner agrees: the same split whichever way the fleet is listed
    databases_fleet(project, list(reversed(fleet_urls)), rollout=rollout(1, 4, 0))
    again = run(project.root, "plan", "--json", "--shard", "2/3")
    assert [n for g in json.loads(again.stdout)["groups"] for n in g["databases"]] == (
        shards[1]
    )

    k = max((1, 2, 3), key=lambda k: len(shards[k - 1]))
    mine = shards[k - 1]
    result = run_process(project.root, "apply", "--yes", "--shard", f"{k}/3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(summary(result.stdout)) == mine
    assert fleet_line(result.stdout) == counts(applied=len(mine))
    for name, url in zip(names, fleet_urls, strict=True):
        assert version_rows(url) == (["c3"] if name in mine else []), name


def test_an_empty_shard(project: Project, pg_url: str):
    databases_fleet(project, [pg_url])
    outputs = {}
    for k in (1, 2):
        result = run(project.root, "apply", "--shard", f"{k}/2")
        assert result.exit_code == 0, result.output
        outputs[k] = result.stdout
    empty, full = sorted(outputs.values(), key=len)
    assert (
        empty
        == "Environment: fleet (0 databases)\nTarget:      head\n\nNo databases.\n"
    )
    assert full.splitlines()[:4] == [
        "Environment: fleet (1 database)",
        "Target:      head",
        "",
        "1 at base: 3 steps each.",
    ]
    assert fleet_line(full) == counts(applied=1)
    assert version_rows(pg_url) == ["c3"]


@pytest.mark.parametrize(
    ("shard", "error"),
    [
        ("4/3", "--shard '4/3': i must be between 1 and n"),
        ("0/3", "--shard '0/3': i must be between 1 and n"),
        ("1-3", "--shard '1-3': expected i/n, e.g. 2/8"),
        ("a/b", "--shard 'a/b': expected i/n, e.g. 2/8"),
    ],
)
def test_a_bad_shard(project: Project, pg_url: str, shard: str, error: str):
    databases_fleet(project, [pg_url])
    result = run(project.root, "plan", "--shard", shard)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {error}\n"


def test_database_option_picks_one_member(project: Project, fleet_urls: list[str]):
    names = [display_url(url) for url in fleet_urls]
    databases_fleet(project, fleet_urls)
    five = database_name(fleet_urls[5])

    result = run(project.root, "plan", "--database", five)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:3] == [
        f"Environment: fleet ({names[5]})",
        "Current:     base",
        "Target:      head -> c3",
    ]
    result = run(project.root, "apply", "--database", names[5])  # exact name
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "Applied 3 steps; fleet is at c3."
    result = run(project.root, "rollback", "--database", five, "--steps", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "Rolled back 1 step; fleet is at b2."
    assert [version_rows(url) for url in fleet_urls] == [
        ["b2"] if i == 5 else [] for i in range(TENANTS)
    ]
    result = run(project.root, "log", "--database", five, "--json")
    assert result.exit_code == 0, result.output
    (trail,) = json.loads(result.stdout)["databases"]
    runs = trail["runs"]
    assert [(r["action"], r["from"], r["to"]) for r in runs] == [
        ("rollback", ["c3"], ["b2"]),
        ("apply", [], ["c3"]),
    ]

    result = run(project.root, "plan", "--database", "no_such_tenant")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --database 'no_such_tenant' matches no database of 'fleet' "
        f"({', '.join(names[:10])})\n"
    )
    prefix = five[: -len("_05")]
    result = run(project.root, "apply", "--database", f"{prefix}_1")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: --database '{prefix}_1' matches several databases of 'fleet' "
        f"({', '.join(names[10:20])})\n"
    )
    result = run(project.root, "rollback", "--steps", "1")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: environment 'fleet' is a fleet of databases and this command works "
        "on one (plan, apply, rollback, log, drift and resolve take --database NAME)\n"
    )
    assert [version_rows(url) for url in fleet_urls] == [
        ["b2"] if i == 5 else [] for i in range(TENANTS)
    ]


# -- status / log / drift -------------------------------------------------------


def test_status_log_and_drift_per_database(project: Project, fleet_urls: list[str]):
    names = [display_url(url) for url in fleet_urls]
    databases_fleet(project, fleet_urls)
    module = f"fleet_models_{uuid.uuid4().hex[:8]}"
    (project.root / f"{module}.py").write_text(
        "import sqlalchemy as sa\n"
        "metadata = sa.MetaData()\n"
        "for name in ('t_a1', 't_b2', 't_c3'):\n"
        "    sa.Table(name, metadata, sa.Column('id', sa.Integer, primary_key=True))\n"
    )
    config = project.root / "migplan.yaml"
    config.write_text(f"metadata: {module}:metadata\n" + config.read_text())
    for i in (2, 9):
        result = run(project.root, "apply", "--database", names[i])
        assert result.exit_code == 0, result.output
    result = run(project.root, "rollback", "--database", names[9], "--to", "a1")
    assert result.exit_code == 0, result.output

    result = run(project.root, "status")
    assert result.exit_code == 0, result.output
    expected = []
    for i, name in enumerate(names):
        current, pending = {2: ("c3", "0"), 9: ("a1", "2 up")}.get(i, ("base", "3 up"))
        state = "up to date" if pending == "0" else "pending"
        expected.append(["fleet", name, current, "head", pending, state])
    assert status_rows(result.stdout) == expected
    data = json.loads(run(project.root, "status", "--json").stdout)["environments"]
    assert [(r["url"], r["current"], r["state"]) for r in data] == [
        (row[1], [] if row[2] == "base" else [row[2]], row[5]) for row in expected
    ]

    result = run(project.root, "log")
    assert result.exit_code == 0, result.output
    trails = re.split(r"^== (.+)\n", result.stdout, flags=re.M)[1:]
    assert trails[0::2] == names
    for name, text in zip(trails[0::2], trails[1::2], strict=True):
        lines = text.strip().splitlines()
        if name == names[2]:
            assert [line.split()[3:] for line in lines[1:]] == [
                ["apply", "base", "->", "c3", "3", "success"]
            ]
        elif name == names[9]:
            assert [line.split()[3:] for line in lines[1:]] == [
                ["rollback", "c3", "->", "a1", "2", "success"],
                ["apply", "base", "->", "c3", "3", "success"],
            ]
        else:
            assert lines == ["No runs recorded."], name
    trails = json.loads(run(project.root, "log", "--json").stdout)["databases"]
    assert [t["database"] for t in trails] == names
    assert [len(t["runs"]) for t in trails] == [
        {2: 1, 9: 2}.get(i, 0) for i in range(TENANTS)
    ]

    result = run(project.root, "drift")
    assert result.exit_code == 2, result.output
    lines = result.stdout.splitlines()
    assert f"{names[2]}: the database matches the models." in lines
    at_a1 = lines.index(f"{names[9]}: the database differs from the models:")
    assert lines[at_a1 + 1 : at_a1 + 3] == [
        "  add table t_b2: in the models only",
        "  add table t_c3: in the models only",
    ]
    assert sum(line.endswith("differs from the models:") for line in lines) == 19
    result = run(project.root, "drift", "--database", names[2])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{names[2]}: the database matches the models.\n"
    found = json.loads(run(project.root, "drift", "--json").stdout)["databases"]
    assert [d["database"] for d in found] == names
    assert found[2]["differences"] == []
    assert [d["subject"] for d in found[0]["differences"]] == ["t_a1", "t_b2", "t_c3"]
