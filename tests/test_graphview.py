"""Drawing the revision graph: ASCII like `git log --graph`, Mermaid and DOT."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from migplan.core.graph import RevisionGraph
from migplan.core.revisions import Marker
from migplan.core.revisions import RevisionFile
from migplan.render.drawing import ascii_graph
from migplan.render.drawing import dot
from migplan.render.drawing import mermaid


def rev(revision, down=(), message="", depends_on=(), labels=()):
    return RevisionFile(
        revision,
        tuple(down),
        Path(f"{revision}.py"),
        longdoc=message,
        branch_labels=tuple(labels),
        depends_on=tuple(depends_on),
        text="",
    )


def graph(*files):
    return RevisionGraph(files)


LINEAR = graph(
    rev("a1", (), "init"),
    rev("b2", ["a1"], "add users"),
    rev("c3", ["b2"], "add orders"),
)
BRANCHED = graph(
    rev("a1", (), "init"),
    rev("b2", ["a1"], "add users"),
    rev("c3", ["a1"], "add orders"),
    rev("d4", ["b2", "c3"], "merge heads"),
    rev("e5", ["d4"], "add index"),
)
MARKERS = [
    Marker("prod", "current", ("b2",)),
    Marker("staging", "current", ("d4",)),
    Marker("staging", "target", ("e5",)),
    Marker("dev", "current", ()),
    Marker("dev", "target", ("e5",)),
]
CHAIN = graph(
    *[rev(f"r{i}", [f"r{i - 1}"] if i else [], f"step {i}") for i in range(8)]
)
CLASSES = """\
  classDef current fill:#d4edda,stroke:#2e7d32
  classDef target fill:#dbe9ff,stroke:#1565c0
  classDef collapsed fill:#ffffff,stroke:#9e9e9e,stroke-dasharray: 4 4
  classDef marked stroke-width:3px"""
DOT_HEADER = """\
digraph migplan {
  rankdir=BT;
  node [shape=box, fontname="Helvetica"];
  edge [fontname="Helvetica", fontsize=10];"""


# -- ASCII --------------------------------------------------------------------


def test_linear_history_newest_first():
    assert ascii_graph(LINEAR, []) == ("* c3 add orders\n* b2 add users\n* a1 init")


def test_branch_and_merge():
    assert ascii_graph(BRANCHED, []) == (
        "* e5 add index\n"
        "*   d4 merge heads\n"
        "|\\\n"
        "* | b2 add users\n"
        "| * c3 add orders\n"
        "|/\n"
        "* a1 init"
    )


def test_two_roots_are_drawn_apart():
    two = graph(
        rev("a1", (), "init"),
        rev("b2", ["a1"], "add users"),
        rev("x1", (), "audit root", labels=["audit"]),
        rev("x2", ["x1"], "audit log"),
    )
    assert ascii_graph(two, []) == (
        "* b2 add users\n* a1 init\n\n* x2 audit log\n* x1 audit root"
    )


def test_a_root_beside_another_lane():
    joined = graph(
        rev("a1", (), "init"),
        rev("b1", ["a1"], "users"),
        rev("x1", (), "audit root"),
        rev("m1", ["b1", "x1"], "join audit"),
    )
    assert ascii_graph(joined, []) == (
        "*   m1 join audit\n|\\\n* | b1 users\n* | a1 init\n /\n* x1 audit root"
    )


def test_octopus_merge_and_a_branch_point_far_from_its_children():
    octopus = graph(
        rev("a1", (), "init"),
        rev("b1", ["a1"], "users"),
        rev("c1", ["a1"], "orders"),
        rev("d1", ["a1"], "audit"),
        rev("m1", ["b1", "c1", "d1"], "merge three heads"),
        rev("x1", ["c1"], "hotfix on orders"),
    )
    # the merge's edges leave one line apart, so each can be followed
    assert ascii_graph(octopus, []) == (
        "*     m1 merge three heads\n"
        "|\\\n"
        "|\\ \\\n"
        "* | | b1 users\n"
        "| | * d1 audit\n"
        "| |/\n"
        "|/|\n"
        "| | * x1 hotfix on orders\n"
        "| |/\n"
        "| * c1 orders\n"
        "|/\n"
        "* a1 init"
    )


def test_merge_of_revisions_that_already_have_lanes():
    crossing = graph(
        rev("a1", (), "init"),
        rev("b1", ["a1"], "b"),
        rev("c1", ["a1"], "c"),
        rev("h1", ["b1"], "h"),
        rev("h2", ["c1"], "h2"),
        rev("m1", ["b1", "c1"], "merge"),
    )
    # m1's edge to b1 crosses c1's lane between two lines
    assert ascii_graph(crossing, []) == (
        "* h1 h\n"
        "| * h2 h2\n"
        "| | * m1 merge\n"
        "| |/|\n"
        "|/|/\n"
        "* | b1 b\n"
        "| * c1 c\n"
        "|/\n"
        "* a1 init"
    )


def test_depends_on_is_mentioned_after_the_message():
    deps = graph(
        rev("a1", (), "init"),
        rev("b2", ["a1"], "add users"),
        rev("x1", (), "audit root", labels=["audit"]),
        rev("x2", ["x1"], "audit users", depends_on=["b2"]),
        rev("x3", ["x2"], "audit more", depends_on=["audit"]),
    )
    assert ascii_graph(deps, []) == (
        "* x3 audit more (depends on audit)\n"
        "* x2 audit users (depends on b2)\n"
        "* x1 audit root\n"
        "\n"
        "* b2 add users\n"
        "* a1 init"
    )


def test_markers_on_several_revisions_and_at_base():
    assert ascii_graph(BRANCHED, MARKERS) == (
        "* e5 add index [staging: target] [dev: target]\n"
        "*   d4 merge heads [staging: current]\n"
        "|\\\n"
        "* | b2 add users [prod: current]\n"
        "| * c3 add orders\n"
        "|/\n"
        "* a1 init\n"
        "* base [dev: current]"
    )


def test_marker_on_several_heads_and_on_an_unknown_revision():
    markers = [
        Marker("prod", "current", ("b2",)),
        Marker("prod", "target", ("b2", "c3")),
        Marker("qa", "current", ("0ff1ce0ff1ce0ff1ce",)),
    ]
    heads = graph(
        rev("a1", (), "init"),
        rev("b2", ["a1"], "add users"),
        rev("c3", ["a1"], "add orders"),
    )
    assert ascii_graph(heads, markers) == (
        "* b2 add users [prod: current] [prod: target]\n"
        "| * c3 add orders [prod: target]\n"
        "|/\n"
        "* a1 init\n"
        "? 0ff1ce0ff1ce (not in the graph) [qa: current]"
    )


def test_short_revision_ids():
    long = graph(rev("1a2b3c4d5e6f7a8b", (), "init"))
    assert ascii_graph(long, []) == "* 1a2b3c4d5e6f init"


def test_collapsed_run():
    assert ascii_graph(CHAIN, [], collapse=3) == (
        "* r7 step 7\n* r6 step 6\n: ... 4 revisions ...\n* r1 step 1\n* r0 step 0"
    )


def test_a_run_collapses_only_when_longer_than_collapse():
    # r6..r1 is the run: six revisions
    assert ": ... 4 revisions ..." in ascii_graph(CHAIN, [], collapse=5)
    assert ascii_graph(CHAIN, [], collapse=6) == ascii_graph(CHAIN, [], collapse=0)
    assert len(ascii_graph(CHAIN, [], collapse=0).splitlines()) == 8


def test_a_marker_splits_a_run():
    marked = [Marker("prod", "current", ("r3",))]
    assert ascii_graph(CHAIN, marked, collapse=2) == (
        "* r7 step 7\n"
        "* r6 step 6\n"
        ": ... 1 revision ...\n"
        "* r4 step 4\n"
        "* r3 step 3 [prod: current]\n"
        "* r2 step 2\n"
        "* r1 step 1\n"
        "* r0 step 0"
    )


def test_collapsed_run_beside_another_lane():
    side = graph(
        *[rev(f"r{i}", [f"r{i - 1}"] if i else [], f"step {i}") for i in range(7)],
        rev("s1", ["r0"], "side"),
        rev("m1", ["r6", "s1"], "merge"),
    )
    assert ascii_graph(side, [], collapse=3) == (
        "*   m1 merge\n"
        "|\\\n"
        "* | r6 step 6\n"
        ": | ... 4 revisions ...\n"
        "* | r1 step 1\n"
        "| * s1 side\n"
        "|/\n"
        "* r0 step 0"
    )


def test_empty_graph():
    assert ascii_graph(graph(), []) == ""
    assert ascii_graph(graph(), [Marker("dev", "current", ())]) == (
        "* base [dev: current]"
    )


def test_output_does_not_depend_on_the_order_of_the_files():
    files = [
        rev("a1", (), "init"),
        rev("b2", ["a1"], "add users"),
        rev("c3", ["a1"], "add orders"),
        rev("x1", (), "audit"),
        rev("d4", ["b2", "c3"], "merge heads"),
    ]
    shuffled = files[:]
    random.Random(4).shuffle(shuffled)
    for draw in (ascii_graph, mermaid, dot):
        assert draw(graph(*files), MARKERS[:2]) == draw(graph(*shuffled), MARKERS[:2])


# -- reading the ASCII drawing back --------------------------------------------


def read_back(text, down):
    """Return the (revision, down revision) edges a reader follows in a drawing.

    A line that goes on diagonally keeps going that way, past vertical lanes;
    lines leaving a revision may go any way.
    """
    edges = set()
    strands = set()  # (revision above, column, way): -1, 1, 0 down, 2 just left
    for line in text.split("\n"):
        found = re.match(r"([| ]*)\*[| ]* (\w+)", line)
        if found:
            col = len(found.group(1)) // 2
            node = found.group(2)
            edges |= {(source, node) for source, x, _ in strands if x == col}
            for _, x, _ in strands:
                assert x == col or line[2 * x] == "|", line
            strands = {(s, x, 0) for s, x, _ in strands if x != col}
            if down[node]:
                strands.add((node, col, 2))
            continue
        after = set()
        used = set()
        for source, x, way in strands:
            found_ways = {
                w: i
                for w, i, ch in (
                    (-1, 2 * x - 1, "/"),
                    (1, 2 * x + 1, "\\"),
                    (0, 2 * x, "|"),
                )
                if 0 <= i < len(line) and line[i] == ch
            }
            if way == 2:
                ways = list(found_ways)
            elif way in found_ways:
                ways = [way]
            elif 0 in found_ways:
                ways = [0]
            else:
                ways = list(found_ways)  # a diagonal meets the lane it joins
            assert ways, f"a line ends in {line!r}"
            for w in ways:
                used.add(found_ways[w])
                after.add((source, x + w, 2 if way == 2 and w == 0 else w))
        stray = [ch for i, ch in enumerate(line) if ch != " " and i not in used]
        assert not stray, f"stray {stray} in {line!r}"
        strands = after
    return edges


def random_graph(rng, size):
    files = []
    for i in range(size):
        roll = rng.random()
        if not files or roll < 0.08:
            down = ()
        elif roll < 0.75:
            down = (rng.choice(files[-4:]).revision,)
        else:
            count = 3 if rng.random() < 0.2 else 2
            picked = rng.sample(files, min(count, len(files)))
            down = tuple(f.revision for f in picked)
        files.append(rev(f"r{i}", down, f"m{i}"))
    return RevisionGraph(files)


@pytest.mark.parametrize("seed", range(300))
def test_every_edge_can_be_read_back(seed):
    rng = random.Random(seed)
    history = random_graph(rng, rng.randint(1, 30))
    expected = {(r, down) for r, downs in history.down.items() for down in downs}
    drawing = ascii_graph(history, [], collapse=0)
    assert read_back(drawing, history.down) == expected


# -- Mermaid ------------------------------------------------------------------


def test_mermaid_linear():
    assert mermaid(LINEAR, []) == (
        "flowchart BT\n"
        '  r_c3["c3: add orders"]\n'
        '  r_b2["b2: add users"]\n'
        '  r_a1["a1: init"]\n'
        "  r_b2 --> r_c3\n"
        "  r_a1 --> r_b2\n" + CLASSES
    )


def test_mermaid_markers():
    assert mermaid(BRANCHED, MARKERS) == (
        "flowchart BT\n"
        '  r_e5["e5: add index"]\n'
        '  r_d4["d4: merge heads"]\n'
        '  r_b2["b2: add users"]\n'
        '  r_c3["c3: add orders"]\n'
        '  r_a1["a1: init"]\n'
        '  base_(("base"))\n'
        "  r_d4 --> r_e5\n"
        "  r_b2 --> r_d4\n"
        "  r_c3 --> r_d4\n"
        "  r_a1 --> r_b2\n"
        "  r_a1 --> r_c3\n"
        "  base_ --> r_a1\n"
        '  marker_1(["prod: current"]):::current\n'
        "  marker_1 -.- r_b2\n"
        '  marker_2(["staging: current"]):::current\n'
        "  marker_2 -.- r_d4\n"
        '  marker_3(["staging: target"]):::target\n'
        "  marker_3 -.- r_e5\n"
        '  marker_4(["dev: current"]):::current\n'
        "  marker_4 -.- base_\n"
        '  marker_5(["dev: target"]):::target\n'
        "  marker_5 -.- r_e5\n" + CLASSES + "\n"
        "  class r_e5,r_d4,r_b2,base_ marked"
    )


def test_mermaid_depends_on_and_collapsed_run():
    deps = graph(
        *[rev(f"r{i}", [f"r{i - 1}"] if i else [], f"step {i}") for i in range(6)],
        rev("x1", (), "audit", labels=["audit"]),
        rev("x2", ["x1"], "audit users", depends_on=["r5"]),
        rev("x3", ["x2"], "audit more", depends_on=["audit"]),
    )
    assert mermaid(deps, [], collapse=3) == (
        "flowchart BT\n"
        '  r_x3["x3: audit more"]\n'
        '  r_x2["x2: audit users"]\n'
        '  r_x1["x1: audit"]\n'
        '  r_r5["r5: step 5"]\n'
        '  r_r4["r4: step 4"]\n'
        '  run_1["... 2 revisions ..."]:::collapsed\n'
        '  r_r1["r1: step 1"]\n'
        '  r_r0["r0: step 0"]\n'
        "  r_x2 --> r_x3\n"
        "  r_x1 --> r_x2\n"
        "  r_r4 --> r_r5\n"
        "  run_1 --> r_r4\n"
        "  r_r1 --> run_1\n"
        "  r_r0 --> r_r1\n"
        "  r_r5 -. depends on .-> r_x2\n"
        "  r_x1 -. depends on .-> r_x3\n" + CLASSES
    )


def test_mermaid_escapes_quotes_brackets_and_directives():
    odd = graph(rev('a"1', (), 'say "hi" [to] {all} <b>#1</b> 100% a|b `x` c\\'))
    out = mermaid(odd, [Marker("p[1]", "current", ('a"1',))])
    assert out.splitlines()[1:4] == [
        '  r_a_22_1["a#34;1: say #34;hi#34; #91;to#93; #123;all#125; '
        '#60;b#62;#35;1#60;/b#62; 100#37; a#124;b #96;x#96; c#92;"]',
        '  marker_1(["p#91;1#93;: current"]):::current',
        "  marker_1 -.- r_a_22_1",
    ]


def test_mermaid_ids_are_distinct_for_similar_revisions():
    similar = graph(rev("a_b", ()), rev("a.b", ()), rev("a", ()))
    lines = mermaid(similar, []).splitlines()
    ids = [line.split("[")[0].strip() for line in lines if '["' in line]
    assert sorted(ids) == ["r_a", "r_a_2e_b", "r_a_5f_b"]


# -- DOT ----------------------------------------------------------------------


def test_dot_markers():
    assert dot(BRANCHED, MARKERS) == DOT_HEADER + (
        "\n"
        '  "e5" [label="e5: add index", penwidth=2];\n'
        '  "d4" [label="d4: merge heads", penwidth=2];\n'
        '  "b2" [label="b2: add users", penwidth=2];\n'
        '  "c3" [label="c3: add orders"];\n'
        '  "a1" [label="a1: init"];\n'
        '  ":base" [label="base", shape=ellipse, penwidth=2];\n'
        '  "d4" -> "e5";\n'
        '  "b2" -> "d4";\n'
        '  "c3" -> "d4";\n'
        '  "a1" -> "b2";\n'
        '  "a1" -> "c3";\n'
        '  ":base" -> "a1";\n'
        '  ":marker:1" [label="prod: current", shape=note, style=filled, '
        'fillcolor="#d4edda"];\n'
        '  ":marker:1" -> "b2" [style=dotted, arrowhead=none];\n'
        '  { rank=same; ":marker:1"; "b2"; }\n'
        '  ":marker:2" [label="staging: current", shape=note, style=filled, '
        'fillcolor="#d4edda"];\n'
        '  ":marker:2" -> "d4" [style=dotted, arrowhead=none];\n'
        '  { rank=same; ":marker:2"; "d4"; }\n'
        '  ":marker:3" [label="staging: target", shape=note, style=filled, '
        'fillcolor="#dbe9ff"];\n'
        '  ":marker:3" -> "e5" [style=dotted, arrowhead=none];\n'
        '  { rank=same; ":marker:3"; "e5"; }\n'
        '  ":marker:4" [label="dev: current", shape=note, style=filled, '
        'fillcolor="#d4edda"];\n'
        '  ":marker:4" -> ":base" [style=dotted, arrowhead=none];\n'
        '  { rank=same; ":marker:4"; ":base"; }\n'
        '  ":marker:5" [label="dev: target", shape=note, style=filled, '
        'fillcolor="#dbe9ff"];\n'
        '  ":marker:5" -> "e5" [style=dotted, arrowhead=none];\n'
        '  { rank=same; ":marker:5"; "e5"; }\n'
        "}"
    )


def test_dot_depends_on_and_collapsed_run():
    deps = graph(
        *[rev(f"r{i}", [f"r{i - 1}"] if i else [], f"step {i}") for i in range(5)],
        rev("x1", ["r4"], "audit", depends_on=["r0"]),
    )
    # r0 stays: a depends_on edge ends there
    assert dot(deps, [Marker("qa", "target", ("x1", "gone"))], collapse=2) == (
        DOT_HEADER + "\n"
        '  "x1" [label="x1: audit", penwidth=2];\n'
        '  "r4" [label="r4: step 4"];\n'
        '  ":run:1" [label="... 2 revisions ...", style=dashed];\n'
        '  "r1" [label="r1: step 1"];\n'
        '  "r0" [label="r0: step 0"];\n'
        '  "r4" -> "x1";\n'
        '  ":run:1" -> "r4";\n'
        '  "r1" -> ":run:1";\n'
        '  "r0" -> "r1";\n'
        '  "r0" -> "x1" [style=dashed, label="depends on"];\n'
        '  ":marker:1" [label="qa: target (gone not in the graph)", shape=note, '
        'style=filled, fillcolor="#dbe9ff"];\n'
        '  ":marker:1" -> "x1" [style=dotted, arrowhead=none];\n'
        '  { rank=same; ":marker:1"; "x1"; }\n'
        "}"
    )


def test_dot_quotes_ids_and_labels():
    odd = graph(rev('a"1', (), 'say "hi" c\\'), rev("b\\", ['a"1'], "x"))
    lines = dot(odd, []).splitlines()
    assert lines[4:7] == [
        '  "b\\\\" [label="b\\\\: x"];',
        '  "a\\"1" [label="a\\"1: say \\"hi\\" c\\\\"];',
        '  "a\\"1" -> "b\\\\";',
    ]


# -- a long history -----------------------------------------------------------


def long_history(size=5000):
    """A line of `size` revisions, with a branch and its merge every 1,000."""
    files = []
    previous = None
    side = None
    for i in range(size):
        revision = f"{i:04d}aaaaaaaaaaaa"
        down = (previous,) if previous else ()
        if i % 1000 == 500:
            side = f"{i:04d}bbbbbbbbbbbb"
            files.append(rev(side, down, f"side {i}"))
        elif i % 1000 == 510:
            down = (previous, side)
        files.append(rev(revision, down, f"revision {i}"))
        previous = revision
    return RevisionGraph(files)


def declared_and_linked(text, declaration, link):
    declared = set(re.findall(declaration, text, re.M))
    linked = set()
    for ends in re.findall(link, text, re.M):
        linked.update(ends)
    return declared, linked


def test_long_history():
    history = long_history()
    head, base = "4999aaaaaaaa", "0000aaaaaaaa"
    markers = [
        Marker("prod", "current", ("2500aaaaaaaaaaaa",)),
        Marker("staging", "target", history.heads),
    ]
    history.depth  # noqa: B018 - the graph's own cost, not the drawing's
    started = time.perf_counter()
    text = ascii_graph(history, markers)
    seconds = time.perf_counter() - started
    lines = text.splitlines()
    assert len(lines) < 80
    assert lines[0] == f"* {head} revision 4999 [staging: target]"
    assert lines[-1] == f"* {base} revision 0"
    assert "* | 2500aaaaaaaa revision 2500 [prod: current]" in lines
    assert ": ... 986 revisions ..." in lines
    assert seconds < 1  # about 10 ms here

    chart = mermaid(history, markers)
    assert chart.startswith("flowchart BT\n")
    assert chart.count("[") == chart.count("]")
    assert chart.count("(") == chart.count(")")
    declared, linked = declared_and_linked(
        chart, r"^  (\w+)[\[(]", r"^  (\w+) (?:-->|-\.-|-\. depends on \.->) (\w+)$"
    )
    assert linked <= declared
    assert len(declared) < 150

    digraph = dot(history, markers)
    assert digraph.startswith("digraph migplan {\n") and digraph.endswith("\n}")
    assert digraph.count("{") == digraph.count("}")
    quoted = r'"(?:[^"\\]|\\.)*"'
    declared, linked = declared_and_linked(
        digraph, rf"^  ({quoted}) \[", rf"^  ({quoted}) -> ({quoted})"
    )
    assert linked <= declared
    assert '"4999aaaaaaaaaaaa"' in declared and '"0000aaaaaaaaaaaa"' in declared


def test_long_history_uncollapsed_is_fast():
    history = long_history()
    history.depth  # noqa: B018
    for draw in (ascii_graph, mermaid, dot):
        started = time.perf_counter()
        out = draw(history, [], collapse=0)
        assert time.perf_counter() - started < 1  # 10-30 ms here
        assert "4999aaaaaaaa" in out and "0000aaaaaaaa" in out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
@pytest.mark.parametrize(
    "history",
    [BRANCHED, CHAIN, long_history(), graph(rev('a"1', (), 'say "hi" c\\'))],
    ids=["branched", "chain", "long", "odd"],
)
def test_graphviz_reads_the_dot_output(history):
    markers = [Marker("dev", "current", ()), Marker("prod", "target", history.heads)]
    done = subprocess.run(
        ["dot", "-Tplain"],
        input=dot(history, markers, collapse=3),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_graph_command_marks_each_environment(project, sqlite_url, tmp_path):
    from conftest import linear_project
    from conftest import run

    linear_project(project, sqlite_url, "a1", "b2", "c3")
    config = project.root / "migplan.yaml"
    config.write_text(
        config.read_text()
        + f"  prod:\n    url: sqlite:///{tmp_path / 'prod.db'}\n    target: b2\n"
    )
    assert run(project.root, "apply", "dev").exit_code == 0

    result = run(project.root, "graph")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "* c3 c3 [dev: current] [dev: target]\n"
        "* b2 b2 [prod: target]\n"
        "* a1 a1\n"
        "* base [prod: current]\n"
    )
    mermaid = run(project.root, "graph", "--format", "mermaid", "--no-databases")
    assert mermaid.stdout.startswith("flowchart BT\n")
    assert "marker" not in mermaid.stdout
