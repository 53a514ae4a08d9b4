"""The revision graph with each environment's position -> ASCII, Mermaid, DOT. Pure.

All three formats draw the same view of the graph: the revisions, newest first, with
long linear runs collapsed into one ``... N revisions ...`` node, and a ``base`` node
under the roots when an environment stands at base.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migplan.render.style import Style
from migplan.render.style import plain

if TYPE_CHECKING:
    from migplan.core.graph import RevisionGraph
    from migplan.core.revisions import Marker

SHORT = 12

# revision ids cannot contain ":" (Alembic refuses it), so these never clash with one
_BASE = ":base"
_RUN = ":run:"

# Mermaid's entity codes: a quote or bracket in a message cannot end a label early,
# and "%%" cannot start a directive
_MERMAID_ESCAPES = {ch: f"#{ord(ch)};" for ch in '"#%&<>[]{}|`\\'}
_COLORS = {"current": "#d4edda", "target": "#dbe9ff"}


@dataclass(frozen=True)
class _View:
    """What is drawn: nodes newest first, each with its parents among the nodes."""

    order: tuple[str, ...]
    parents: dict[str, tuple[str, ...]]
    hidden: dict[str, int]
    """Collapsed runs: node -> how many revisions it stands for."""
    depends: tuple[tuple[str, str], ...]
    """(dependency, revision) pairs."""
    marks: dict[str, list[str]]
    """Node -> marker labels on it."""
    missing: tuple[tuple[str, str], ...]
    """(revision, marker label) for marked revisions the graph does not have."""


def _view(graph: RevisionGraph, markers: Sequence[Marker], collapse: int) -> _View:
    """Return what every format draws: collapsed runs, markers, a base node."""
    down = graph.down
    children = graph.children
    marks: dict[str, list[str]] = {}
    missing: list[tuple[str, str]] = []
    for marker in markers:
        for rev in marker.revisions or (_BASE,):
            if rev == _BASE or rev in down:
                labels = marks.setdefault(rev, [])
                if marker.label not in labels:
                    labels.append(marker.label)
            else:
                missing.append((rev, marker.label))
    depends = {
        (graph.labels.get(dep, dep), rev): None
        for rev, deps in graph.depends.items()
        for dep in deps
        if graph.labels.get(dep, dep) in down
    }
    # a marked revision or a dependency's end stays visible
    pinned = set(marks).union(*depends)

    def inner(rev: str) -> bool:
        return len(down[rev]) == 1 and len(children[rev]) == 1 and rev not in pinned

    parents: dict[str, tuple[str, ...]] = {}
    hidden: dict[str, int] = {}
    depth = graph.depth
    rank: dict[str, int] = {}
    skipped: set[str] = set()
    if collapse > 0:
        for rev in down:
            if not inner(rev) or inner(children[rev][0]):
                continue  # only walk down from the newest revision of a run
            run = [rev]
            below = down[rev][0]
            while inner(below):
                run.append(below)
                below = down[below][0]
            if len(run) > collapse and len(run) >= 3:
                node = _RUN + run[0]
                hidden[node] = len(run) - 2
                skipped.update(run[1:-1])
                parents[run[0]] = (node,)
                parents[node] = (run[-1],)
                rank[node] = depth[run[0]] - 1
    base = _BASE in marks
    for rev, downs in down.items():
        if rev not in skipped and rev not in parents:
            parents[rev] = downs or ((_BASE,) if base else ())
    if base:
        parents[_BASE] = ()
        rank[_BASE] = 0
    return _View(
        order=_newest_first(parents, {**depth, **rank}),
        parents=parents,
        hidden=hidden,
        depends=tuple(sorted(depends, key=lambda pair: (pair[1], pair[0]))),
        marks=marks,
        missing=tuple(missing),
    )


def _newest_first(
    parents: dict[str, tuple[str, ...]], depth: dict[str, int]
) -> tuple[str, ...]:
    """Order nodes children first, each line of history kept together (as git's
    --topo-order does); among nodes ready at once, deepest first, then by id."""
    waiting = dict.fromkeys(parents, 0)
    for below in parents.values():
        for parent in below:
            waiting[parent] += 1

    def priority(node: str) -> tuple[int, str]:
        return (-depth[node], node)

    stack = sorted((n for n, count in waiting.items() if not count), key=priority)
    stack.reverse()
    order: list[str] = []
    while stack:
        node = stack.pop()
        order.append(node)
        ready = []
        for parent in parents[node]:
            waiting[parent] -= 1
            if not waiting[parent]:
                ready.append(parent)
        ready.sort(key=priority, reverse=True)
        stack.extend(ready)
    return tuple(order)


def _short(rev: str) -> str:
    return rev[:SHORT]


def _revisions(count: int) -> str:
    return f"... {count} revision{'s' if count != 1 else ''} ..."


def _depends_text(graph: RevisionGraph, rev: str) -> str:
    deps = graph.depends.get(rev)
    if not deps:
        return ""
    shown = [_short(d) if d in graph.down else d for d in deps]
    return f" (depends on {', '.join(shown)})"


def _text(
    graph: RevisionGraph, view: _View, node: str, paint: Callable[[str], str]
) -> str:
    """Return the words of one ASCII line, each marker through `paint`."""
    if node in view.hidden:
        return _revisions(view.hidden[node])
    if node == _BASE:
        text = "base"
    else:
        message = graph.message(node)
        text = _short(node) + (f" {message}" if message else "")
        text += _depends_text(graph, node)
    return text + "".join(f" {paint(label)}" for label in view.marks.get(node, ()))


def ascii_graph(
    graph: RevisionGraph,
    markers: Sequence[Marker],
    *,
    collapse: int = 8,
    style: Style = plain,
) -> str:
    """Return the graph drawn like ``git log --graph``, newest revision first.

    One line per revision (``*``) or collapsed run (``:``), with lines between
    them where lanes fork, join or move; an empty line (or one of bare lanes)
    keeps a history that starts below a root from reading as its parent. Each
    marker goes through `style`, as the kind it is (current or target).
    """
    view = _view(graph, markers, collapse)
    kinds = {marker.label: marker.kind for marker in markers}

    def paint(label: str) -> str:
        return style(f"[{label}]", kinds[label])

    lines: list[str] = []
    lanes: list[str] = []  # the node each lane leads down to
    ended = -1  # the column of a lane that ended on the line above
    for node in view.order:
        if node in lanes:
            col = lanes.index(node)
        else:
            col = len(lanes)
            if col == ended:
                # right under a root, a new head would read as its child
                lines.append(" ".join("|" * col))
            lanes.append(node)
        parents = view.parents[node]
        if len(parents) == 1 and parents[0] not in lanes:
            # the common case, one line of history going on: no edge moves
            after = lanes[:]
            after[col] = parents[0]
            edges: list[list[int]] = []
        else:
            after, edges = _edges(lanes, col, parents)
        width = 2 * max(len(lanes), len(after))
        row = ["|"] * len(lanes)
        row[col] = ":" if node in view.hidden else "*"
        lines.append(" ".join(row).ljust(width) + _text(graph, view, node, paint))
        moves = _moves(edges, width) if edges else []
        lines += moves
        ended = col if not parents and not moves else -1
        lanes = after
    lines += [
        f"{style('?', 'warning')} {_short(rev)} (not in the graph) {paint(label)}"
        for rev, label in view.missing
    ]
    return "\n".join(lines)


def _edges(
    lanes: list[str], col: int, parents: tuple[str, ...]
) -> tuple[list[str], list[list[int]]]:
    """Return the lanes below the node at `col`, and the edges that lead there.

    An edge is [column, column after moving right, final column, rows to wait]:
    a lane keeps its line of history; a parent with no lane gets one next to the
    node; a parent that has one is joined where it is.
    """
    where = {lane: i for i, lane in enumerate(lanes)}
    slot = [p for p in parents if p not in where]
    joining = [p for p in parents if where.get(p, -1) > col]
    taken = None
    if not slot and joining:
        # as git does: the nearest lane on the right that leads to a parent moves
        # into this column rather than leave a gap
        taken = min(joining, key=where.__getitem__)
        slot = [taken]
    after = lanes[:col] + slot + [lane for lane in lanes[col + 1 :] if lane != taken]
    final = {lane: i for i, lane in enumerate(after)}
    spread = max(len(slot) - 1, 0)
    edges = [
        [i, max(i, final[lane]), final[lane], 0]
        for i, lane in enumerate(lanes)
        if i != col
    ]
    left = []
    right = []
    for parent in parents:
        if parent in slot or where[parent] < col:
            edge = [col, final[parent], final[parent], 0]
        else:
            # reaches the parent's lane, which may then close up to the left
            edge = [col, where[parent] + spread, final[parent], 0]
        if edge[1] < col:
            left.append(edge)
        elif edge[1] > col:
            right.append(edge)
        edges.append(edge)
    # the node's edges leave one line apart, farthest first: edges that left
    # together could not be told apart where one of them stops
    for group in (sorted(left), sorted(right, reverse=True)):
        for delay, edge in enumerate(group):
            edge[3] = delay
    return after, edges


def _moves(edges: list[list[int]], width: int) -> list[str]:
    """Return the lines that move each edge to its final column.

    An edge moves one column a line: first every edge that goes right, then
    every edge that goes left, so no two edges ever need the same character. An
    edge that passes another lane crosses it between two lines.
    """
    lines = []
    for phase in (1, 2):
        while True:
            chars = [" "] * (width + 1)
            moved = False
            for edge in edges:
                now, goal = edge[0], edge[phase]
                if goal == now or edge[3]:
                    chars[2 * now] = "|"
                    edge[3] = max(edge[3] - 1, 0)
                    moved = moved or goal != now
                    continue
                if goal > now:
                    chars[2 * now + 1] = "\\"
                else:
                    chars[2 * now - 1] = "/"
                edge[0] = now + (1 if goal > now else -1)
                moved = True
            if not moved:
                break
            lines.append("".join(chars).rstrip())
    return lines


def _numbered(view: _View) -> dict[str, int]:
    """Number the collapsed runs from the top."""
    shown = (node for node in view.order if node in view.hidden)
    return {node: i for i, node in enumerate(shown, start=1)}


def _mermaid_id(node: str, runs: dict[str, int]) -> str:
    if node == _BASE:
        return "base_"
    if node in runs:
        return f"run_{runs[node]}"
    # injective: letters and digits stay, anything else becomes _hex_
    return "r_" + "".join(
        ch if ch.isascii() and ch.isalnum() else f"_{ord(ch):x}_" for ch in node
    )


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text)


def _label(graph: RevisionGraph, view: _View, node: str) -> str:
    """Return a node's label in Mermaid and DOT: ``id: message``."""
    if node in view.hidden:
        return _revisions(view.hidden[node])
    if node == _BASE:
        return "base"
    message = graph.message(node)
    return _short(node) + (f": {message}" if message else "")


def _marker_targets(
    view: _View, markers: Sequence[Marker]
) -> list[tuple[Marker, str, list[str]]]:
    """Return, per marker: itself, its label and the nodes it points at."""
    found = []
    for marker in markers:
        known = [r for r in marker.revisions or (_BASE,) if r in view.parents]
        unknown = [_short(r) for r in marker.revisions if r not in view.parents]
        label = marker.label
        if unknown:
            label += f" ({', '.join(unknown)} not in the graph)"
        found.append((marker, label, known))
    return found


def mermaid(
    graph: RevisionGraph, markers: Sequence[Marker], *, collapse: int = 8
) -> str:
    """Return the graph as a Mermaid flowchart, base at the bottom."""
    view = _view(graph, markers, collapse)
    runs = _numbered(view)
    ids = {node: _mermaid_id(node, runs) for node in view.order}
    lines = ["flowchart BT"]
    for node in view.order:
        text = _mermaid_text(_label(graph, view, node))
        if node == _BASE:
            lines.append(f'  {ids[node]}(("{text}"))')
        elif node in view.hidden:
            lines.append(f'  {ids[node]}["{text}"]:::collapsed')
        else:
            lines.append(f'  {ids[node]}["{text}"]')
    for node in view.order:
        for parent in view.parents[node]:
            lines.append(f"  {ids[parent]} --> {ids[node]}")
    for dep, rev in view.depends:
        lines.append(f"  {ids[dep]} -. depends on .-> {ids[rev]}")
    for i, (marker, label, known) in enumerate(_marker_targets(view, markers), 1):
        text = _mermaid_text(label)
        lines.append(f'  marker_{i}(["{text}"]):::{marker.kind}')
        lines += [f"  marker_{i} -.- {ids[node]}" for node in known]
    lines += [
        f"  classDef current fill:{_COLORS['current']},stroke:#2e7d32",
        f"  classDef target fill:{_COLORS['target']},stroke:#1565c0",
        "  classDef collapsed fill:#ffffff,stroke:#9e9e9e,stroke-dasharray: 4 4",
        "  classDef marked stroke-width:3px",
    ]
    marked = [ids[node] for node in view.order if node in view.marks]
    if marked:
        lines.append(f"  class {','.join(marked)} marked")
    return "\n".join(lines)


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(graph: RevisionGraph, markers: Sequence[Marker], *, collapse: int = 8) -> str:
    """Return the graph as a Graphviz digraph, base at the bottom."""
    view = _view(graph, markers, collapse)
    runs = _numbered(view)
    ids = {
        node: _dot_text(f"{_RUN}{runs[node]}" if node in runs else node)
        for node in view.order
    }
    lines = [
        "digraph migplan {",
        "  rankdir=BT;",
        '  node [shape=box, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in view.order:
        attrs = [f"label={_dot_text(_label(graph, view, node))}"]
        if node == _BASE:
            attrs.append("shape=ellipse")
        elif node in view.hidden:
            attrs.append("style=dashed")
        if node in view.marks:
            attrs.append("penwidth=2")
        lines.append(f"  {ids[node]} [{', '.join(attrs)}];")
    for node in view.order:
        for parent in view.parents[node]:
            lines.append(f"  {ids[parent]} -> {ids[node]};")
    for dep, rev in view.depends:
        lines.append(f'  {ids[dep]} -> {ids[rev]} [style=dashed, label="depends on"];')
    for i, (marker, label, known) in enumerate(_marker_targets(view, markers), 1):
        color = _COLORS[marker.kind]
        name = _dot_text(f":marker:{i}")
        lines.append(
            f"  {name} [label={_dot_text(label)}, shape=note, style=filled, "
            f'fillcolor="{color}"];'
        )
        for node in known:
            lines.append(f"  {name} -> {ids[node]} [style=dotted, arrowhead=none];")
        if len(known) == 1:
            # beside the revision it marks, where it can be
            lines.append(f"  {{ rank=same; {name}; {ids[known[0]]}; }}")
    lines.append("}")
    return "\n".join(lines)
