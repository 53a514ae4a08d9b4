"""The plan is what Alembic runs: a differential test on random revision graphs.

Hypothesis draws revision graphs (several roots, branch points, merges,
`depends_on` across branches, branch labels), writes them as real revision
files whose upgrade() and downgrade() log their revision id into a `steplog`
table, brings a SQLite file to a random state with Alembic's own commands, and
draws a target. Then `make_plan` on the graph migplan reads from those files
must list exactly the steps Alembic's `command.upgrade` / `command.downgrade`
log on a copy of that database, in the same order, ending at the same heads;
when Alembic refuses the target, migplan must refuse it too, and the other way
round. migplan's executor, running the planned steps on another copy, must log
the same steps again.

Which command is Alembic's answer is migplan's rule: a target at or above the
current revisions is `alembic upgrade TARGET` (the target is above when that
runs something), one below is `alembic downgrade TARGET`; a relative target that
`upgrade` refuses is tried with `downgrade`. A list target first runs
`alembic downgrade REV` for each of its revisions that is already applied, in
order, then `alembic upgrade` to the whole list. A `downgrade` that Alembic
refuses although the database is at its target runs nothing. Alembic's own
crashes on a target (asserts in revision.py) are refusals, and so is a
`downgrade -1` from several heads, which Alembic warns is ambiguous: it walks
down from whichever row of the version table the database returns first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import RangeNotAncestorError
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from migplan.core.graph import RevisionGraph
from migplan.core.planner import make_plan
from migplan.core.revisions import RevisionFile
from migplan.db.executor import run_steps
from migplan.db.session import open_session
from migplan.errors import MigplanError
from migplan.project.config import load_config
from migplan.project.history import load_graph

ENV_PY = (
    Path(__file__).parent.parent / "migplan" / "templates" / "migplan" / "env.py"
).read_text()

HEX = "0123456789abcdef"
MISSING = "deadbeefcafe"  # a well-formed revision id that no generated file declares


# -- the graph model --------------------------------------------------------------------


@dataclass(frozen=True)
class Rev:
    """One revision file to write."""

    id: str
    down: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()  # revision ids or branch labels
    annotated: bool = False  # `revision: str = ...`, as Alembic's newer template
    as_list: bool = False  # `down_revision = ['a']`: a list, even for one revision


@dataclass(frozen=True)
class Case:
    """A graph, the commands that bring a database to its current state, a target."""

    revs: tuple[Rev, ...]
    upgrades: tuple[str, ...]
    downgrade: str | None
    target: tuple[str, ...]
    form: str = ""

    def __repr__(self) -> str:
        lines = ["Case("]
        for r in self.revs:
            extra = "".join(
                (
                    f", labels={r.labels}" if r.labels else "",
                    f", depends_on={r.depends_on}" if r.depends_on else "",
                )
            )
            lines.append(f"  {r.id!r} <- {r.down or 'base'}{extra}")
        lines.append(
            f"  state: upgrade {self.upgrades}, then downgrade {self.downgrade}"
        )
        lines.append(f"  target: {self.target})")
        return "\n".join(lines)


def ancestors(revs: dict[str, Rev], start: list[str]) -> set[str]:
    """Return `start` and every revision below it, dependencies included."""
    owner = {label: r.id for r in revs.values() for label in r.labels}
    seen: set[str] = set()
    todo = [owner.get(s, s) for s in start]
    while todo:
        rev = todo.pop()
        if rev in seen:
            continue
        seen.add(rev)
        todo += [owner.get(d, d) for d in (*revs[rev].down, *revs[rev].depends_on)]
    return seen


@st.composite
def revision_graphs(
    draw: st.DrawFn, max_size: int = 25, history: bool = False
) -> tuple[Rev, ...]:
    """Draw a valid graph, in an order where every revision follows its parents.

    With `history`, the graph looks like a project's: one line with side branches
    merged back, no depends_on, no labels (the cases migplan orders itself).
    """
    size = draw(st.integers(1, max_size))
    ids = draw(
        st.lists(
            st.text(HEX, min_size=4, max_size=12).filter(lambda s: s != MISSING),
            min_size=size,
            max_size=size,
            unique=True,
        )
    )
    revs: dict[str, Rev] = {}
    order: list[str] = []
    for index, rev in enumerate(ids):
        # 0-6: a child (of a recent revision, so chains grow long), 7: a new
        # root, 8-9: a merge; shrinking goes to 0, a straight line
        kind = draw(st.integers(0, 9)) if order else 7
        if history and order and kind == 7:
            kind = 0
        down: tuple[str, ...] = ()
        if kind != 7:
            back = draw(
                st.integers(0, min(2, len(order) - 1) if history else len(order) - 1)
            )
            first = order[-1 - back]
            down = (first,)
        if kind >= 8:
            # a merge joins revisions neither of which lies below the other
            for _ in range(draw(st.integers(1, 2))):
                below = ancestors(revs, list(down))
                apart = [
                    r
                    for r in order
                    if r not in below and not set(down) & ancestors(revs, [r])
                ]
                if not apart:
                    break
                down += (draw(st.sampled_from(apart)),)
        depends_on: tuple[str, ...] = ()
        if order and not history and draw(st.integers(0, 4)) == 4:
            # depend on a revision of another branch, by id or by its label
            below = ancestors(revs, list(down))
            others = [r for r in order if r not in below]
            if len(down) > 1:
                # Alembic cannot run a merge that depends on a revision above one
                # of its parents: its version table update deletes that parent,
                # which is no longer there (KeyError in HeadMaintainer)
                others = [r for r in others if not set(down) & ancestors(revs, [r])]
            if others:
                dep = draw(st.sampled_from(others))
                if revs[dep].labels and draw(st.booleans()):
                    dep = revs[dep].labels[0]
                depends_on = (dep,)
        labelled = (
            False
            if history
            else draw(st.booleans())
            if not down
            else draw(st.integers(0, 7)) == 7
        )
        revs[rev] = Rev(
            rev,
            down,
            labels=(f"lbl{index}",) if labelled else (),
            depends_on=depends_on,
            annotated=draw(st.booleans()),
            as_list=draw(st.booleans()),
        )
        order.append(rev)
    return tuple(revs[r] for r in order)


TARGET_FORMS = (
    "rev",
    "prefix",
    "symbol",
    "+N",
    "rev+N",
    "head+N",
    "label",
    "label@head",
    "label@+N",
    "label@rev",
)


@st.composite
def targets(
    draw: st.DrawFn, revs: tuple[Rev, ...], history: bool = False
) -> tuple[str, tuple[str, ...]]:
    """Draw (form, target): ids, prefixes, symbols, labels, relatives, lists."""
    ids = st.sampled_from([r.id for r in revs])
    labels = [label for r in revs for label in r.labels]
    forms = [f for f in TARGET_FORMS if labels or not f.startswith("label")]
    if history:
        forms = ["rev", "symbol"]  # what migplan.yaml says in a real project
    elif len(revs) > 1:
        forms[1:1] = ["list", "list"]  # Hypothesis favours the first forms
    form = draw(st.sampled_from(forms))
    if form == "list":
        # mostly revisions on different branches: neither lies below another
        by_id = {r.id: r for r in revs}
        below = {r.id: ancestors(by_id, [r.id]) for r in revs}
        apart = {
            a: [b for b in below if a not in below[b] and b not in below[a]]
            for a in below
        }
        spread = [a for a in apart if apart[a]]
        if spread and draw(st.integers(0, 3)):
            first = draw(st.sampled_from(spread))
            rest = draw(st.lists(st.sampled_from(apart[first]), min_size=1, max_size=2))
        else:
            first, *rest = draw(st.lists(ids, min_size=2, max_size=3))
        return form, tuple(dict.fromkeys([first, *rest]))
    rev = draw(ids)
    label = draw(st.sampled_from(labels)) if labels else ""
    step = f"{draw(st.sampled_from('+-'))}{draw(st.integers(1, 3))}"
    symbol = draw(st.sampled_from(("heads", "head", "base")))
    target = {
        "rev": rev,
        "prefix": rev[: draw(st.integers(4, len(rev)))],
        "symbol": draw(st.sampled_from((symbol, MISSING))),
        "+N": step,
        "rev+N": rev + step,
        "head+N": symbol + step,
        "label": label,
        "label@head": f"{label}@{draw(st.sampled_from(('head', 'base')))}",
        "label@+N": f"{label}@{step}",
        "label@rev": f"{label}@{rev}",
    }[form]
    return form, (target,)


@st.composite
def cases(draw: st.DrawFn, max_size: int = 25, history: bool = False) -> Case:
    revs = draw(revision_graphs(max_size, history))
    ids = st.sampled_from([r.id for r in revs])
    # the current state: base, or `alembic upgrade` to one or more revisions
    # (or heads), then perhaps `alembic downgrade` to one
    upgrades: tuple[str, ...] = ()
    if draw(st.integers(0, 5)):
        upgrades = tuple(draw(st.lists(st.just("heads") | ids, min_size=1, max_size=3)))
    downgrade = draw(ids) if upgrades and draw(st.booleans()) else None
    form, target = draw(targets(revs, history))
    by_id = {r.id: r for r in revs}
    above = [
        r.id
        for r in revs
        if r.id != target[0] and target[0] in ancestors(by_id, [r.id])
    ]
    if form == "list" and above and draw(st.integers(0, 3)):
        # a list whose first revision is below the current ones: downgrades, then
        # an upgrade if another of its revisions is not applied
        upgrades, downgrade = (draw(st.sampled_from(above)),), None
    return Case(revs, upgrades, downgrade, target, form)


# -- the project on disk ----------------------------------------------------------------


def _literal(values: tuple[str, ...], as_list: bool) -> str:
    """`None`, `'a'`, `('a', 'b')` or `['a']`: each way a revision file says it."""
    if not values:
        return "None"
    if as_list:
        return repr(list(values))
    return repr(values[0]) if len(values) == 1 else repr(values)


def write_project(root: Path, revs: tuple[Rev, ...]) -> Path:
    """Write migplan.yaml and the migrations folder; return the migrations folder."""
    migrations = root / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (migrations / "env.py").write_text(ENV_PY)
    (root / "migplan.yaml").write_text(
        f"environments:\n  dev:\n    url: sqlite:///{root / 'exec.db'}\n"
    )
    log = (
        'op.execute("CREATE TABLE IF NOT EXISTS steplog '
        '(id INTEGER PRIMARY KEY AUTOINCREMENT, step TEXT NOT NULL)")'
    )
    for r in revs:
        names = {
            "revision": repr(r.id),
            "down_revision": _literal(r.down, r.as_list),
            "branch_labels": _literal(r.labels, r.as_list),
            "depends_on": _literal(r.depends_on, r.as_list),
        }
        kinds = {"revision": "str"}
        header = "\n".join(
            f"{name}: {kinds.get(name, 'Union[str, Sequence[str], None]')} = {value}"
            if r.annotated
            else f"{name} = {value}"
            for name, value in names.items()
        )
        (migrations / "versions" / f"{r.id}_step.py").write_text(
            f'"""step {r.id}\n\nRevision ID: {r.id}\n"""\n'
            "from typing import Sequence, Union\n\n"
            "from alembic import op\n\n"
            f"{header}\n\n\n"
            f"def upgrade():\n    {log}\n"
            f"    op.execute(\"INSERT INTO steplog (step) VALUES ('{r.id}')\")\n\n\n"
            f"def downgrade():\n    {log}\n"
            f"    op.execute(\"INSERT INTO steplog (step) VALUES ('-{r.id}')\")\n"
        )
    return migrations


def alembic_cfg(migrations: Path, db: Path) -> Config:
    """Alembic's own Config for `db`: no ini file, nothing of migplan's."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{db}")
    return cfg


@contextlib.contextmanager
def _db(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def _has(conn: sqlite3.Connection, table: str) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (table,)).fetchone() is not None


def logged(db: Path) -> list[tuple[str, str]]:
    """The steps the migrations logged, in order, as (direction, revision)."""
    with _db(db) as conn:
        if not _has(conn, "steplog"):
            return []
        rows = conn.execute("SELECT step FROM steplog ORDER BY id").fetchall()
    return [
        ("downgrade", step[1:]) if step.startswith("-") else ("upgrade", step)
        for (step,) in rows
    ]


def heads(db: Path) -> tuple[str, ...]:
    """The rows of the version table, sorted."""
    with _db(db) as conn:
        if not _has(conn, "alembic_version"):
            return ()
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return tuple(sorted(r[0] for r in rows))


def clear_log(db: Path) -> None:
    with _db(db) as conn:
        if _has(conn, "steplog"):
            conn.execute("DELETE FROM steplog")


def copy(db: Path, name: str) -> Path:
    to = db.with_name(name)
    if db.exists():
        shutil.copyfile(db, to)
    return to


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    # SQLite commits after every migration; on a disk each commit is an fsync,
    # which would make this file ten times slower than it is on tmpfs
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        yield Path(tmp)


# -- Alembic's answer -------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    """Alembic ran these steps and left these heads."""

    steps: list[tuple[str, str]]
    heads: tuple[str, ...]


@dataclass(frozen=True)
class Refused:
    """Alembic refused the target (or crashed on it)."""

    error: Exception


class Ambiguous(Exception):
    """Alembic ran, and warned that what it ran depends on the version rows' order."""


def _alembic(fn, migrations: Path, db: Path, target) -> Exception | None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn(alembic_cfg(migrations, db), target)
        except (CommandError, RevisionError) as err:
            return err
        except AssertionError as err:
            # Alembic's own crash is its refusal too: `upgrade rev+N` past the
            # last revision, `downgrade lbl@-N` from several heads of lbl
            return err
    for warning in caught:
        if "from multiple heads is ambiguous" in str(warning.message):
            # `downgrade -1` walks down from the first row of the version table
            return Ambiguous(str(warning.message))
    return None


def is_at(migrations: Path, target: str, current: tuple[str, ...], refused) -> bool:
    """Whether a `downgrade TARGET` that Alembic refused finds the database at TARGET.

    Either there is nothing above the target to drop, or Alembic resolves the
    target to current heads but `downgrade` refuses it anyway (`heads` with
    several heads, `lbl@rev` of a rev with several children).
    """
    if isinstance(refused.__cause__, RangeNotAncestorError):
        return True
    script = ScriptDirectory.from_config(alembic_cfg(migrations, Path("unused.db")))
    try:
        revs = {r.revision for r in script.get_revisions(target) if r is not None}
    except CommandError:
        return False  # relative targets resolve only against a database
    return revs <= set(current) and bool(revs or not current)


def alembic_runs(
    migrations: Path, start: Path, revs: tuple[Rev, ...], target: tuple[str, ...]
) -> Ran | Refused:
    """What Alembic's own commands do to a copy of `start` for `target`."""
    work = copy(start, "alembic.db")
    current = heads(start)
    if len(target) == 1:
        up_refused = _alembic(command.upgrade, migrations, work, target[0])
        if up_refused is None and logged(work):
            return Ran(logged(work), heads(work))
        # at or below the current revisions, or only meaningful downwards
        work = copy(start, "alembic.db")
        refused = _alembic(command.downgrade, migrations, work, target[0])
        if refused is None:
            return Ran(logged(work), heads(work))
        if up_refused is None and is_at(migrations, target[0], current, refused):
            return Ran([], current)  # at the target: `upgrade` ran nothing
        return Refused(up_refused or refused)
    by_id = {r.id: r for r in revs}
    for rev in target:
        current = heads(work)
        if rev in ancestors(by_id, list(current)):
            refused = _alembic(command.downgrade, migrations, work, rev)
            if refused is not None and not is_at(migrations, rev, current, refused):
                return Refused(refused)
    refused = _alembic(command.upgrade, migrations, work, target)
    if refused is not None:
        return Refused(refused)
    return Ran(logged(work), heads(work))


# -- the tests --------------------------------------------------------------------------


def plan_or_refusal(graph, current, target):
    """Return migplan's plan, or the MigplanError it refuses the target with."""
    try:
        return make_plan(graph, current, target)
    except MigplanError as err:
        return err


def note(case: Case, expected: Ran | Refused) -> None:
    """Tell `--hypothesis-show-statistics` what kinds of case ran."""
    size = (len(case.revs) + 4) // 5 * 5
    event(f"revisions: {size - 4}-{size}")
    kinds = [
        kind
        for kind, present in (
            ("roots", sum(not r.down for r in case.revs) > 1),
            ("merges", any(len(r.down) > 1 for r in case.revs)),
            ("depends_on", any(r.depends_on for r in case.revs)),
            ("labels", any(r.labels for r in case.revs)),
        )
        if present
    ]
    event(f"graph: {', '.join(kinds) or 'linear'}")
    event(f"target: {case.form}")
    if isinstance(expected, Refused):
        event("outcome: refused")
    else:
        directions = sorted({d for d, _ in expected.steps}) or ["nothing"]
        event(f"outcome: {' and '.join(directions)}")


def check(case: Case) -> None:
    with workdir() as root:
        migrations = write_project(root, case.revs)
        start = root / "start.db"
        for rev in case.upgrades:
            command.upgrade(alembic_cfg(migrations, start), rev)
        if case.downgrade is not None:
            # refused when the revision is not applied: the state stays as it is
            _alembic(command.downgrade, migrations, start, case.downgrade)
        clear_log(start)
        current = heads(start)

        project = load_config(root / "migplan.yaml")
        graph = load_graph(project.migrations, project.ini, project.root)
        plan = plan_or_refusal(graph, current, case.target)
        expected = alembic_runs(migrations, start, case.revs, case.target)

        note(case, expected)
        if isinstance(expected, Refused):
            assert isinstance(plan, MigplanError), (
                f"Alembic refused {case.target} from {current}: "
                f"{type(expected.error).__name__}: {expected.error}; "
                f"migplan planned {[(s.direction, s.revision) for s in plan.steps]}"
            )
            return
        assert not isinstance(plan, MigplanError), (
            f"migplan refused {case.target} from {current}: {plan}; "
            f"Alembic ran {expected.steps}"
        )
        assert [(s.direction, s.revision) for s in plan.steps] == expected.steps
        assert plan.after == expected.heads

        if plan.steps:
            # migplan's executor runs the planned steps, and only those
            work = copy(start, "exec.db")
            env = project.environment("dev")
            with open_session(env.url, project.tables, timeout=10) as session:
                result = run_steps(
                    project, graph, plan.current, plan.steps, session=session
                )
            assert result.failed is None, result.failed
            assert logged(work) == expected.steps
            assert heads(work) == plan.after


SETTINGS = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(SETTINGS, max_examples=300)
@given(cases())
def test_plan_is_what_alembic_runs(case):
    check(case)


@settings(SETTINGS, max_examples=200)
@given(cases(history=True))
def test_plan_is_what_alembic_runs_on_project_like_histories(case):
    # mostly what migplan orders itself, without Alembic's RevisionMap
    check(case)


@settings(SETTINGS, max_examples=200)
@given(cases(max_size=6))
def test_plan_is_what_alembic_runs_on_small_graphs(case):
    # few revisions: relative targets reach past both ends, labels and prefixes
    # collide, every state is close to base or to the heads
    check(case)


# -- Alembic exceptions migplan must turn into its own refusals ---------------------------


def test_relative_target_past_the_end_below_runs_nothing():
    # `alembic upgrade head-1` trips an assert in revision.py; `alembic downgrade
    # head-1` from base runs nothing, and so must the plan
    graph = RevisionGraph.from_pairs(("a1", None))
    assert make_plan(graph, (), ["head-1"]).steps == ()


def test_relative_target_past_the_end_above_is_refused():
    # `alembic upgrade a1+1` trips an assert, `alembic downgrade a1+1` walks too far
    graph = RevisionGraph.from_pairs(("a1", None))
    with pytest.raises(MigplanError):
        make_plan(graph, (), ["a1+1"])


def test_merge_depending_above_its_parent_is_refused():
    # m merges a and x and depends on b, above a: after running m, Alembic's
    # HeadMaintainer deletes a from the version table, where b replaced it
    # (KeyError); migplan's simulation of the version table does the same
    files = [
        RevisionFile("a", (), Path("a.py"), text=""),
        RevisionFile("b", ("a",), Path("b.py"), text=""),
        RevisionFile("x", (), Path("x.py"), text=""),
        RevisionFile("m", ("a", "x"), Path("m.py"), depends_on=("b",), text=""),
    ]
    with pytest.raises(MigplanError):
        make_plan(RevisionGraph(files), (), ["m"])
