"""The planner on in-memory graphs: no files, no database."""

from __future__ import annotations

import pytest

from migplan.core.graph import RevisionGraph
from migplan.core.planner import make_downgrade_plan
from migplan.core.planner import make_plan
from migplan.errors import TargetError


def steps(plan):
    return [(s.direction, s.revision) for s in plan.steps]


@pytest.fixture
def linear():
    return RevisionGraph.from_pairs(("a", None), ("b", "a"), ("c", "b"), ("d", "c"))


@pytest.fixture
def branched():
    # a -> x1 -> x2 \
    #   \-> y1 -> y2 -> m (merge)
    return RevisionGraph.from_pairs(
        ("a", None),
        ("x1", "a"),
        ("x2", "x1"),
        ("y1", "a"),
        ("y2", "y1"),
        ("m", ("x2", "y2")),
    )


def test_upgrade_from_base_runs_every_revision_in_order(linear):
    plan = make_plan(linear, (), ["head"])
    assert steps(plan) == [
        ("upgrade", "a"),
        ("upgrade", "b"),
        ("upgrade", "c"),
        ("upgrade", "d"),
    ]
    assert plan.after == ("d",)


def test_target_below_current_downgrades(linear):
    plan = make_plan(linear, ("d",), ["b"])
    assert steps(plan) == [("downgrade", "d"), ("downgrade", "c")]
    assert plan.after == ("b",)


def test_at_target_is_up_to_date(linear):
    plan = make_plan(linear, ("d",), ["head"])
    assert plan.up_to_date
    assert plan.to_dict()["steps"] == []


def test_base_target_downgrades_everything(linear):
    assert steps(make_plan(linear, ("b",), ["base"])) == [
        ("downgrade", "b"),
        ("downgrade", "a"),
    ]


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        (("b",), "+1", [("upgrade", "c")]),
        (("c",), "-1", [("downgrade", "c")]),
        ((), "head-1", [("upgrade", "a"), ("upgrade", "b"), ("upgrade", "c")]),
        (("d",), "head-1", [("downgrade", "d")]),
        (("a",), "b+1", [("upgrade", "b"), ("upgrade", "c")]),
        (("a",), "c", [("upgrade", "b"), ("upgrade", "c")]),
        (("a",), "c0", None),
    ],
)
def test_target_forms(linear, current, target, expected):
    graph = RevisionGraph.from_pairs(
        ("a", None), ("b", "a"), ("c0ffee1", "b"), ("d", "c0ffee1")
    )
    graph = linear if expected is not None else graph
    if expected is None:
        # a unique prefix of four characters or more
        assert steps(make_plan(graph, current, ["c0ff"])) == [
            ("upgrade", "b"),
            ("upgrade", "c0ffee1"),
        ]
        return
    assert steps(make_plan(graph, current, [target])) == expected


def test_head_with_several_heads_suggests_heads():
    graph = RevisionGraph.from_pairs(("a", None), ("b", "a"), ("c", "a"))
    with pytest.raises(
        TargetError,
        match=r"target 'head' is ambiguous: there are several heads \(b, c\); use 'heads'",
    ):
        make_plan(graph, (), ["head"])


def test_heads_upgrades_every_branch():
    graph = RevisionGraph.from_pairs(("a", None), ("b", "a"), ("c", "a"))
    plan = make_plan(graph, ("b",), ["heads"])
    assert steps(plan) == [("upgrade", "c")]
    assert plan.after == ("b", "c")


def test_unknown_revision_says_did_you_mean(linear):
    graph = RevisionGraph.from_pairs(("1a2b3c4d", None), ("1a2b3c5e", "1a2b3c4d"))
    with pytest.raises(
        TargetError, match=r"unknown revision '1a2b3c4f'.*did you mean '1a2b3c4d'"
    ):
        make_plan(graph, (), ["1a2b3c4f"])


def test_ambiguous_prefix_lists_candidates():
    graph = RevisionGraph.from_pairs(("abcd1111", None), ("abcd2222", "abcd1111"))
    with pytest.raises(
        TargetError, match=r"prefix 'abcd' is ambiguous: it matches abcd1111, abcd2222"
    ):
        make_plan(graph, (), ["abcd"])


def test_merge_upgrades_both_branches_first(branched):
    plan = make_plan(branched, ("x2",), ["m"])
    assert steps(plan) == [("upgrade", "y1"), ("upgrade", "y2"), ("upgrade", "m")]
    assert plan.after == ("m",)


def test_other_branch_is_left_alone(branched):
    plan = make_plan(branched, ("x2",), ["y1"])
    assert steps(plan) == [("upgrade", "y1")]
    assert plan.after == ("x2", "y1")


def test_list_target_downgrades_one_branch_and_upgrades_the_other(branched):
    plan = make_plan(branched, ("x2", "y1"), ["x1", "y2"])
    assert steps(plan) == [("downgrade", "x2"), ("upgrade", "y2")]
    assert plan.after == ("x1", "y2")


def test_branch_label_head():
    graph = RevisionGraph.from_pairs(("a", None), ("b", "a"))
    from pathlib import Path

    from migplan.core.revisions import RevisionFile

    files = [
        *graph.files.values(),
        RevisionFile("s1", (), Path("s1.py"), branch_labels=("side",), text=""),
        RevisionFile("s2", ("s1",), Path("s2.py"), text=""),
    ]
    graph = RevisionGraph(files)
    assert steps(make_plan(graph, ("b",), ["side@head"])) == [
        ("upgrade", "s1"),
        ("upgrade", "s2"),
    ]
    assert steps(make_plan(graph, ("b",), ["side"])) == [("upgrade", "s1")]


def test_unknown_current_revision_is_explained(linear):
    with pytest.raises(
        TargetError,
        match="the database is at revision zzz, which no revision file declares",
    ):
        make_plan(linear, ("zzz",), ["head"])


def test_downgrade_plan_refuses_a_target_above(linear):
    with pytest.raises(
        TargetError, match="'d' is not an ancestor of the current revision"
    ):
        make_downgrade_plan(linear, ("b",), "d")


def test_heads_when_at_several_heads_is_up_to_date():
    # `alembic downgrade heads` refuses several heads; `upgrade heads` runs nothing
    graph = RevisionGraph.from_pairs(("a", None), ("b", "a"), ("c", "a"))
    plan = make_plan(graph, ("b", "c"), ["heads"])
    assert plan.up_to_date
    assert plan.after == ("b", "c")


def test_branch_at_revision_with_two_children_when_at_it_is_up_to_date():
    # `alembic downgrade side@s1` refuses an s1 with several children, even at s1
    from pathlib import Path

    from migplan.core.revisions import RevisionFile

    graph = RevisionGraph(
        [
            RevisionFile("s1", (), Path("s1.py"), branch_labels=("side",), text=""),
            RevisionFile("s2", ("s1",), Path("s2.py"), text=""),
            RevisionFile("s3", ("s1",), Path("s3.py"), text=""),
        ]
    )
    assert make_plan(graph, ("s1",), ["side@s1"]).up_to_date
    with pytest.raises(TargetError, match="Not a valid downgrade target"):
        make_plan(graph, ("s2",), ["side@s1"])


def test_minus_one_from_several_heads_is_ambiguous():
    # Alembic would walk down from whichever row of the version table comes first
    graph = RevisionGraph.from_pairs(("a", None), ("b", "a"), ("c", "a"))
    with pytest.raises(
        TargetError,
        match=r"^target '-1' is ambiguous: the database has several heads \(b, c\); "
        r"use 'branchname@-1' or a revision$",
    ):
        make_plan(graph, ("b", "c"), ["-1"])
