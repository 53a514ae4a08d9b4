"""migplan's own upgrade order against Alembic's, on histories of 1,000 to 3,000
revisions: long lines with side branches merged back, several roots, branch
labels, merges of three, a database part-way up each branch. No database: the
order of test_differential's executed runs is the same RevisionMap's, so here
both orders come from the same graph, migplan's (`RevisionGraph`, which orders
a plan without depends_on itself) and Alembic's (`RevisionMap.iterate_revisions`,
as `alembic upgrade` calls it).
"""

from __future__ import annotations

import random

import pytest

from migplan.core.graph import RevisionGraph
from migplan.core.revisions import Heads


def history(seed: int, size: int) -> RevisionGraph:
    """A project-like history: a main line per root, side branches opened off it
    and merged back (some into each other first), labelled branches left open."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str | tuple[str, ...] | None]] = []
    labels: dict[str, str] = {}
    roots = rng.randint(1, 3)
    mains: list[str] = []
    open_sides: list[str] = []
    for n in range(size):
        rev = f"r{n:05d}"
        if len(mains) < roots:
            pairs.append((rev, None))
            mains.append(rev)
            continue
        line = rng.randrange(len(mains))
        roll = rng.random()
        if roll < 0.06:
            # open a side branch off some recent revision of a line
            open_sides.append(rev)
            pairs.append((rev, mains[line]))
            if rng.random() < 0.3:
                labels[rev] = f"feature{n}"
        elif roll < 0.25 and open_sides:
            side = rng.randrange(len(open_sides))
            pairs.append((rev, open_sides[side]))
            open_sides[side] = rev
        elif roll < 0.30 and open_sides:
            # merge one or two side branches back into the line
            take = rng.sample(
                range(len(open_sides)), min(len(open_sides), rng.randint(1, 2))
            )
            merged = tuple([mains[line], *(open_sides[i] for i in take)])
            for i in sorted(take, reverse=True):
                del open_sides[i]
            pairs.append((rev, merged))
            mains[line] = rev
        elif roll < 0.31 and len(mains) > 1:
            # two lines become one
            other = (line + 1) % len(mains)
            pairs.append((rev, (mains[line], mains[other])))
            mains[line] = rev
            del mains[other]
        else:
            pairs.append((rev, mains[line]))
            mains[line] = rev
    graph = RevisionGraph.from_pairs(*pairs)
    if labels:
        files = [
            file.__class__(
                file.revision,
                file.down_revision,
                file.path,
                branch_labels=(labels[file.revision],)
                if file.revision in labels
                else (),
                text="",
            )
            for file in graph.files.values()
        ]
        graph = RevisionGraph(files)
    return graph


def alembic_order(graph: RevisionGraph, target: str, current: Heads) -> list[str]:
    revisions = graph.map.iterate_revisions(target, current, implicit_base=True)
    return [r.revision for r in reversed(list(revisions))]


def states(graph: RevisionGraph, seed: int) -> list[Heads]:
    """Base, and databases part-way: a random revision's heads after upgrading to
    it, and to a few of them at once."""
    rng = random.Random(seed)
    revisions = sorted(graph.files)
    found: list[Heads] = [()]
    for _ in range(4):
        picks = rng.sample(revisions, rng.randint(1, 3))
        below = graph.ancestors(picks)
        # the heads of that applied set: none of its revisions lies on another
        heads = tuple(
            sorted(r for r in below if not any(r in graph.down[c] for c in below))
        )
        found.append(heads)
    return found


@pytest.mark.parametrize(
    ("seed", "size"), [(1, 1000), (2, 1500), (3, 2000), (4, 3000), (5, 1200)]
)
def test_the_native_order_is_alembics_on_large_histories(seed: int, size: int):
    graph = history(seed, size)
    assert not graph.has_dependencies
    assert len(graph) == size
    rng = random.Random(seed)
    targets = ["heads", *rng.sample(sorted(graph.files), 3)]
    if len(graph.heads) == 1:
        targets.append("head")
    checked = 0
    for current in states(graph, seed):
        for target in targets:
            if target not in ("heads", "head") and target in graph.ancestors(current):
                continue  # at or above it: `alembic upgrade` runs nothing
            native = graph._line_up([target], current)
            assert native is not None, "the native order must cover this case"
            assert native == alembic_order(graph, target, current), (seed, target)
            assert graph.upgrade_revisions([target], current) == native
            checked += 1
    assert checked >= 8
