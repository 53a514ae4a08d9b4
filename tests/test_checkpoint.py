"""core.checkpoint: the file's header, staleness, and where a plan uses one. Pure."""

from __future__ import annotations

import pytest

from migplan.core import checkpoint
from migplan.core import planner
from migplan.core.checkpoint import CheckpointError
from migplan.core.graph import RevisionGraph
from migplan.core.planner import make_plan


def steps(plan):
    return [(s.direction, s.revision) for s in plan.steps]


@pytest.fixture
def graph():
    # a -> b -> c -> d, and a side branch s1 -> s2 from a, merged at m
    return RevisionGraph.from_pairs(
        ("a", None),
        ("b", "a"),
        ("c", "b"),
        ("s1", "a"),
        ("s2", "s1"),
        ("m", ("c", "s2")),
        ("d", "m"),
    )


def made(graph: RevisionGraph, revision: str, body: str = "CREATE TABLE t (x int);\n"):
    covers = {r: graph.checksum(r) for r in graph.ancestors([revision])}
    text = checkpoint.render(revision, "sqlite", covers, body, tool="sqlite3")
    return checkpoint.parse_header(
        text, f"migrations/checkpoints/{revision}.sqlite.sql"
    )


def test_the_header_reads_back_and_the_body_follows_it(graph):
    covers = {r: graph.checksum(r) for r in graph.ancestors(["c"])}
    text = checkpoint.render("c", "postgresql", covers, "SELECT 1;\n", schema="mp_x")
    found = checkpoint.parse_header(text, "c.postgresql.sql")
    assert (found.revision, found.dialect, found.schema) == ("c", "postgresql", "mp_x")
    assert dict(found.covers) == covers
    assert found.body_intact and not found.problems(graph)
    assert checkpoint.body(text) == "SELECT 1;\n"


def test_a_checkpoint_is_stale_when_a_covered_file_changes_or_is_edited(graph):
    fresh = made(graph, "c")
    assert fresh.problems(graph) == []
    changed = RevisionGraph.from_pairs(("a", None), ("b", "a"), ("c", "b"))
    # same ids, other text: from_pairs writes each revision's file anew
    files = {r: f for r, f in changed.files.items()}
    edited = files["b"].__class__(
        "b", ("a",), files["b"].path, text="def upgrade(): pass  # changed"
    )
    other = RevisionGraph([files["a"], edited, files["c"]])
    assert "has changed" in fresh.problems(other)[0]
    inserted = RevisionGraph.from_pairs(("a", None), ("x", "a"), ("b", "x"), ("c", "b"))
    assert any("is stale" in p for p in fresh.problems(inserted))
    text = checkpoint.render("c", "sqlite", fresh.covers, "CREATE TABLE t (x int);\n")
    tampered = checkpoint.parse_header(text.replace("x int", "y int"), "c.sqlite.sql")
    assert "edited after it was made" in tampered.problems(graph)[0]


def upgrading(plan):
    return {s.revision for s in plan.steps if s.direction == "upgrade"}


def test_a_plan_from_base_starts_from_the_checkpoint_then_runs_the_rest(graph):
    route = planner.route(graph, (), ["head"])
    plan = planner.plan_route(graph, route)
    found = made(graph, "c")
    best, notes = checkpoint.choose(upgrading(plan), [found], graph, "sqlite")
    assert best is found and notes == []
    rest = planner.plan_route(graph, checkpoint.rest(route, found))
    started = checkpoint.start_from(rest, found)
    assert steps(started)[0] == ("checkpoint", "c")
    rest = [r for d, r in steps(started)[1:]]
    assert rest == [r for r in plan_order(plan) if r not in {"a", "b", "c"}]
    assert started.after == plan.after
    assert started.steps[0].replaces == 3


def plan_order(plan):
    return [s.revision for s in plan.steps]


def test_the_checkpoint_that_replaces_most_is_chosen_and_others_are_left(graph):
    plan = make_plan(graph, (), ["head"])
    low, high = made(graph, "b"), made(graph, "m")
    best, _ = checkpoint.choose(upgrading(plan), [low, high], graph, "sqlite")
    assert best is high
    # a target below the checkpoint, another dialect, a database not at base
    below = upgrading(make_plan(graph, (), ["c"]))
    assert checkpoint.choose(below, [high], graph, "sqlite")[0] is None
    assert checkpoint.choose(upgrading(plan), [high], graph, "postgresql")[0] is None
    partway = upgrading(make_plan(graph, ("a",), ["head"]))
    assert checkpoint.choose(partway, [high], graph, "sqlite")[0] is None


def test_a_stale_checkpoint_is_named_and_not_used(graph):
    plan = make_plan(graph, (), ["head"])
    text = checkpoint.render("c", "sqlite", {"c": "0" * 64}, "")
    stale = checkpoint.parse_header(text, "c.sqlite.sql")
    best, notes = checkpoint.choose(upgrading(plan), [stale], graph, "sqlite")
    assert best is None
    assert notes and "is stale" in notes[0] and "replaying instead" in notes[0]


@pytest.mark.parametrize(
    "text",
    [
        "CREATE TABLE t (x int);",
        '-- migplan checkpoint {"format": 99, "revision": "a", "dialect": "sqlite"}\n-- end of header\n',
        "-- migplan checkpoint {nope\n",
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_refused(text: str):
    with pytest.raises(CheckpointError):
        checkpoint.parse_header(text, "x.sqlite.sql")


def test_loading_renames_the_dumped_schema_and_keeps_settings_to_the_load():
    body = (
        "SET statement_timeout = 0;\n"
        "SELECT pg_catalog.set_config('search_path', '', false);\n"
        "CREATE SCHEMA mp_ckpt_1;\n"
        "CREATE TYPE mp_ckpt_1.mood AS ENUM ('a');\n"
        "CREATE TABLE mp_ckpt_1.t (m mp_ckpt_1.mood);\n"
        "SELECT pg_catalog.setval('mp_ckpt_1.t_id_seq', 3, true);\n"
    )
    text = checkpoint.render("a", "postgresql", {"a": "x"}, body, schema="mp_ckpt_1")
    found = checkpoint.parse_header(text)
    assert checkpoint.statements(text, found, "Acme") == [
        "SET LOCAL statement_timeout = 0",
        'CREATE SCHEMA IF NOT EXISTS "Acme"',
        "CREATE TYPE \"Acme\".mood AS ENUM ('a')",
        'CREATE TABLE "Acme".t (m "Acme".mood)',
        "SELECT pg_catalog.setval('\"Acme\".t_id_seq', 3, true)",
    ]
