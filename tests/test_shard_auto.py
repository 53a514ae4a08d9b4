"""`--shard auto`: the shard from the runner's environment (a Kubernetes Indexed
Job's JOB_COMPLETION_INDEX with --shards N or MIGPLAN_SHARDS, or MIGPLAN_SHARD=i/n
of a CI matrix); anything missing or inconsistent is a one-line error.

Then N migplan processes started at once on a fleet of PostgreSQL schemas, each
taking its shard from those variables: every schema is migrated exactly once (each
revision logs itself in the tenant's schema), the shards are disjoint and their
union is the fleet. 12 schemas on 3 runners in the default run, 200 on 4 under
`pytest -m soak`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from conftest import Project
from conftest import run
from hypothesis import given
from hypothesis import strategies as st
from shardfleet import URL_VAR
from shardfleet import fleet_state
from shardfleet import log_fleet
from shardfleet import revision_ids
from shardfleet import run_together
from shardfleet import schema_names

from migplan.core.fleet import Member
from migplan.core.fleet import in_shard
from migplan.core.fleet import resolve_shard
from migplan.core.url import DatabaseURL
from migplan.errors import ConfigError

# -- the shard, from the environment (pure) ------------------------------------------


@pytest.mark.parametrize(
    ("text", "shards", "environ", "shard"),
    [
        (None, None, {}, None),
        (None, None, {"MIGPLAN_SHARD": "2/4", "JOB_COMPLETION_INDEX": "0"}, None),
        ("3/8", None, {"MIGPLAN_SHARD": "1/2"}, (3, 8)),  # explicit: no variable read
        # a CI matrix: 1-based, as --shard
        ("auto", None, {"MIGPLAN_SHARD": "2/4"}, (2, 4)),
        ("auto", None, {"MIGPLAN_SHARD": "4/4"}, (4, 4)),
        ("auto", "4", {"MIGPLAN_SHARD": "4/4", "MIGPLAN_SHARDS": "4"}, (4, 4)),
        # a Kubernetes Indexed Job: 0-based, the count beside it
        ("auto", "4", {"JOB_COMPLETION_INDEX": "0"}, (1, 4)),
        ("auto", "4", {"JOB_COMPLETION_INDEX": "3"}, (4, 4)),
        ("auto", None, {"JOB_COMPLETION_INDEX": "2", "MIGPLAN_SHARDS": "3"}, (3, 3)),
        ("auto", "3", {"JOB_COMPLETION_INDEX": "2", "MIGPLAN_SHARDS": "3"}, (3, 3)),
        # both, agreeing
        ("auto", None, {"JOB_COMPLETION_INDEX": "1", "MIGPLAN_SHARD": "2/5"}, (2, 5)),
        # an empty variable (a matrix's unset value) counts as unset
        ("auto", "2", {"MIGPLAN_SHARD": "", "JOB_COMPLETION_INDEX": "1"}, (2, 2)),
        ("auto", None, {"MIGPLAN_SHARD": "1/1", "MIGPLAN_SHARDS": ""}, (1, 1)),
    ],
)
def test_a_shard_from_the_environment(
    text: str | None,
    shards: str | None,
    environ: Mapping[str, str],
    shard: tuple[int, int] | None,
) -> None:
    assert resolve_shard(text, shards, environ) == shard


NO_SHARD = (
    "--shard auto: no shard in the environment: set MIGPLAN_SHARD=i/n (1-based), "
    "or run as a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) with --shards N"
)


@pytest.mark.parametrize(
    ("text", "shards", "environ", "error"),
    [
        ("auto", None, {}, NO_SHARD),
        ("auto", "4", {}, NO_SHARD),
        ("auto", "4", {"MIGPLAN_SHARD": "", "JOB_COMPLETION_INDEX": ""}, NO_SHARD),
        ("auto", None, {"MIGPLAN_SHARDS": "4"}, NO_SHARD),
        (
            "auto",
            None,
            {"JOB_COMPLETION_INDEX": "1"},
            "--shard auto: JOB_COMPLETION_INDEX=1 but no shard count: pass --shards N "
            "or set MIGPLAN_SHARDS",
        ),
        (
            "auto",
            "4",
            {"JOB_COMPLETION_INDEX": "4"},
            "--shard auto: JOB_COMPLETION_INDEX=4 is not below the shard count 4 "
            "(--shards 4); it counts from 0",
        ),
        (
            "auto",
            None,
            {"JOB_COMPLETION_INDEX": "9", "MIGPLAN_SHARD": "1/4"},
            "--shard auto: JOB_COMPLETION_INDEX=9 is not below the shard count 4 "
            "(MIGPLAN_SHARD 1/4); it counts from 0",
        ),
        (
            "auto",
            "4",
            {"JOB_COMPLETION_INDEX": "two"},
            "--shard auto: JOB_COMPLETION_INDEX 'two': expected a number, 0 or more",
        ),
        (
            "auto",
            "4",
            {"JOB_COMPLETION_INDEX": "-1"},
            "--shard auto: JOB_COMPLETION_INDEX '-1': expected a number, 0 or more",
        ),
        (
            "auto",
            None,
            {"MIGPLAN_SHARD": "5/4"},
            "--shard auto: MIGPLAN_SHARD '5/4': i must be between 1 and n",
        ),
        (
            "auto",
            None,
            {"MIGPLAN_SHARD": "0/4"},
            "--shard auto: MIGPLAN_SHARD '0/4': i must be between 1 and n",
        ),
        (
            "auto",
            None,
            {"MIGPLAN_SHARD": "2"},
            "--shard auto: MIGPLAN_SHARD '2': expected i/n, e.g. 2/8",
        ),
        (
            "auto",
            "x",
            {"MIGPLAN_SHARD": "1/2"},
            "--shards 'x': expected a number of shards, e.g. 8",
        ),
        (
            "auto",
            "0",
            {"JOB_COMPLETION_INDEX": "0"},
            "--shards '0': expected a number of shards, e.g. 8",
        ),
        (
            "auto",
            None,
            {"JOB_COMPLETION_INDEX": "0", "MIGPLAN_SHARDS": "four"},
            "--shard auto: MIGPLAN_SHARDS 'four': expected a number of shards, e.g. 8",
        ),
        (
            "auto",
            "4",
            {"JOB_COMPLETION_INDEX": "0", "MIGPLAN_SHARDS": "3"},
            "--shard auto: the shard counts disagree: --shards 4, MIGPLAN_SHARDS 3",
        ),
        (
            "auto",
            "3",
            {"MIGPLAN_SHARD": "2/4"},
            "--shard auto: the shard counts disagree: --shards 3, MIGPLAN_SHARD 2/4",
        ),
        (
            "auto",
            None,
            {"MIGPLAN_SHARD": "2/4", "JOB_COMPLETION_INDEX": "2"},
            "--shard auto: the shards disagree: MIGPLAN_SHARD 2/4, "
            "JOB_COMPLETION_INDEX 2 (shard 3/4)",
        ),
        (None, "3", {"JOB_COMPLETION_INDEX": "0"}, "--shards 3 goes with --shard auto"),
        (
            "1/3",
            "3",
            {"JOB_COMPLETION_INDEX": "0"},
            "--shards 3 goes with --shard auto, not --shard 1/3",
        ),
        ("4/3", None, {}, "--shard '4/3': i must be between 1 and n"),
    ],
)
def test_a_shard_missing_or_inconsistent(
    text: str | None, shards: str | None, environ: Mapping[str, str], error: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_shard(text, shards, environ)
    assert str(raised.value) == error


@st.composite
def job_indexes(draw: st.DrawFn) -> tuple[int, int]:
    """(JOB_COMPLETION_INDEX, completions) of one pod."""
    n = draw(st.integers(min_value=1, max_value=64))
    return draw(st.integers(min_value=0, max_value=n - 1)), n


@given(job_indexes())
def test_every_index_of_a_job_is_one_shard(pod: tuple[int, int]) -> None:
    index, n = pod
    shard = resolve_shard("auto", str(n), {"JOB_COMPLETION_INDEX": str(index)})
    assert shard == (index + 1, n)
    # the same runner, told both ways, agrees
    both = {"JOB_COMPLETION_INDEX": str(index), "MIGPLAN_SHARD": f"{index + 1}/{n}"}
    assert resolve_shard("auto", None, both) == shard


# -- the command line -----------------------------------------------------------------


@pytest.fixture
def offline_fleet(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A schemas fleet on a server nobody reaches: the shard is checked first."""
    for var in ("MIGPLAN_SHARD", "MIGPLAN_SHARDS", "JOB_COMPLETION_INDEX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(URL_VAR, "postgresql://nobody@127.0.0.1:9/none")
    log_fleet(project, ["a", "b"])
    return project


@pytest.mark.parametrize("command", ["plan", "apply"])
@pytest.mark.parametrize(
    ("args", "environ", "error"),
    [
        (["--shard", "auto"], {}, NO_SHARD),
        (
            ["--shard", "auto", "--shards", "2"],
            {"JOB_COMPLETION_INDEX": "2"},
            "--shard auto: JOB_COMPLETION_INDEX=2 is not below the shard count 2 "
            "(--shards 2); it counts from 0",
        ),
        (
            ["--shard", "auto"],
            {
                "MIGPLAN_SHARD": "1/2",
                "JOB_COMPLETION_INDEX": "1",
                "MIGPLAN_SHARDS": "2",
            },
            "--shard auto: the shards disagree: MIGPLAN_SHARD 1/2, "
            "JOB_COMPLETION_INDEX 1 (shard 2/2)",
        ),
        (["--shards", "2"], {}, "--shards 2 goes with --shard auto"),
        (
            ["--shards", "2", "--shard", "1/2"],
            {},
            "--shards 2 goes with --shard auto, not --shard 1/2",
        ),
    ],
)
def test_the_command_line_says_what_is_wrong(
    offline_fleet: Project,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    args: list[str],
    environ: dict[str, str],
    error: str,
) -> None:
    for var, value in environ.items():
        monkeypatch.setenv(var, value)
    yes = ["--yes"] if command == "apply" else []
    result = run(offline_fleet.root, command, *args, *yes)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {error}\n"
    assert result.stdout == ""


# -- N processes on a fleet of PostgreSQL schemas --------------------------------------


def shard_of(schema: str, k: int, n: int) -> bool:
    """Whether `schema` is in the k-th (1-based) of n shards, as migplan splits."""
    member = Member(f"schema {schema}", DatabaseURL.parse("postgresql://x/y"), schema)
    return in_shard(member, (k, n))


def runner_variables(how: str, n: int) -> list[dict[str, str]]:
    """The variables of each of `n` runners: a Kubernetes Indexed Job's pods, or
    the jobs of a CI matrix."""
    if how == "indexed-job":
        return [
            {"JOB_COMPLETION_INDEX": str(k), "MIGPLAN_SHARDS": str(n)} for k in range(n)
        ]
    return [{"MIGPLAN_SHARD": f"{k + 1}/{n}"} for k in range(n)]


def sharded_apply(
    project: Project, pg_url: str, schemas: list[str], revisions: int, n: int, how: str
) -> None:
    """Apply the fleet with `n` processes at once, each `--shard auto`; check that
    every schema was migrated exactly once, by the runner of its shard."""
    envs = [{URL_VAR: pg_url, **v} for v in runner_variables(how, n)]
    results = run_together(
        project.root, ["apply", "tenants", "--shard", "auto", "--yes", "--json"], envs
    )
    applied: list[set[str]] = []
    for k, result in enumerate(results, start=1):
        assert result.returncode == 0, (k, result.stdout[-2000:], result.stderr)
        body = json.loads(result.stdout)
        outcomes = {d["database"]: d["outcome"] for d in body["result"]["databases"]}
        assert set(outcomes.values()) <= {"applied"}, outcomes
        applied.append(set(outcomes))
        # the k-th runner (JOB_COMPLETION_INDEX k - 1) took the k-th shard
        assert applied[-1] == {f"schema {s}" for s in schemas if shard_of(s, k, n)}
    # disjoint, and together the whole fleet
    assert sum(len(a) for a in applied) == len(schemas)
    assert set().union(*applied) == {f"schema {s}" for s in schemas}
    # each schema at head, each revision run in it once
    head = revision_ids(revisions)[-1]
    state = fleet_state(pg_url, schemas)
    wrong = {
        s: got for s, got in state.items() if got != ([head], revision_ids(revisions))
    }
    assert wrong == {}


@pytest.mark.parametrize("how", ["indexed-job", "ci-matrix"])
def test_runners_split_a_fleet_of_schemas(
    project: Project, pg_url: str, how: str
) -> None:
    schemas = schema_names(12)
    log_fleet(project, schemas, revisions=3)
    sharded_apply(project, pg_url, schemas, 3, 3, how)
    # again: every runner finds its shard up to date, nothing runs twice
    envs = [{URL_VAR: pg_url, **v} for v in runner_variables(how, 3)]
    again = run_together(project.root, ["apply", "--shard", "auto", "--yes"], envs)
    for result in again:
        assert result.returncode == 0, result.stderr
    assert fleet_state(pg_url, schemas) == {
        s: (["r03"], revision_ids(3)) for s in schemas
    }


@pytest.mark.soak
@pytest.mark.parametrize("how", ["indexed-job", "ci-matrix"])
def test_four_runners_split_200_schemas(
    project: Project, pg_url: str, how: str
) -> None:
    schemas = schema_names(200)
    log_fleet(project, schemas, revisions=5, concurrency=2)
    sharded_apply(project, pg_url, schemas, 5, 4, how)
