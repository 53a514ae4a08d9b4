"""Benchmark migplan against plain Alembic on generated projects, in one run.

    python bench/run.py                     # 100, 1,000 and 5,000 revisions, both shapes
    python bench/run.py --shape app --repeat 3
    python bench/run.py --sizes 100,1000 --repeat 3

Two project shapes, the same history (bench/genproject.py): "app", whose
migplan.yaml names a Flask app (`app: benchapp:create_app`, Flask-SQLAlchemy and
Flask-Migrate, a few models), as Flask-Migrate projects do: the headline; and
"plain", whose migplan.yaml names none. Plain Alembic runs the same env.py on the
same revision files (it never loads the app).

Every figure is the median wall time of a whole command run as a subprocess, as a
user would run it, next to the plain-Alembic command that does the same job on
the same project, and the ratio migplan/Alembic. Machines here are noisy:
compare ratios, not seconds; a ratio's two sides are measured in turns (one
run of each, then again), so that both see the same machine. Peak memory is the
child's max RSS (os.wait4's rusage of that one child). The table ends with the
goals of issue 15, per shape. Commands cache their bytecode as a user's Python
does, PYTHONDONTWRITEBYTECODE or not (genproject.as_users_run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from genproject import SHAPES  # noqa: E402
from genproject import as_users_run  # noqa: E402
from genproject import generate  # noqa: E402

BIN = Path(sys.executable).parent
MIGPLAN = [sys.executable, "-m", "migplan"]
ALEMBIC = [str(BIN / "alembic")]
FLASK = [str(BIN / "flask")]

FLASK_APP = """
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///flask.db"
db.init_app(app)
Migrate(app, db)
"""


@dataclass
class Sample:
    seconds: float
    max_rss_kb: int


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Sample:
    """Run a command to completion; return its wall time and peak memory."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 2):
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(args)} failed in {cwd}: {err[-500:]}")
    if proc.stderr:
        proc.stderr.close()
    return Sample(seconds, usage.ru_maxrss)


def median(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.seconds for s in samples),
        max(s.max_rss_kb for s in samples),
    )


def measure(
    repeat: int,
    args: list[str],
    cwd: Path,
    before: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> Sample:
    samples = []
    for _ in range(repeat):
        if before:
            before()
        samples.append(run(args, cwd, env))
    return median(samples)


@dataclass
class Cmd:
    args: list[str]
    cwd: Path
    before: Callable[[], None] | None = None
    env: dict[str, str] | None = None


def turns(repeat: int, *cmds: Cmd) -> list[Sample]:
    """Run the commands in turns, `repeat` rounds; the median of each."""
    samples: list[list[Sample]] = [[] for _ in cmds]
    for _ in range(repeat):
        for cmd, got in zip(cmds, samples, strict=True):
            if cmd.before:
                cmd.before()
            got.append(run(cmd.args, cmd.cwd, cmd.env))
    return [median(got) for got in samples]


def stamp(db: Path, revision: str) -> None:
    """Put a SQLite database at `revision` without running anything."""
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"
        )
        conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))


def near_head(root: Path, back: int = 3) -> str:
    """A revision a few steps below the single head, along the main line."""
    import re

    downs: dict[str, str] = {}
    heads = set()
    parents: set[str] = set()
    for path in (root / "migrations" / "versions").glob("*.py"):
        text = path.read_text()
        rev = re.search(r"^revision = '(\w+)'", text, re.M).group(1)  # type: ignore[union-attr]
        down = re.search(r"^down_revision = (.+)$", text, re.M).group(1)  # type: ignore[union-attr]
        found = re.findall(r"'(\w+)'", down)
        downs[rev] = found[0] if found else ""
        parents.update(found)
        heads.add(rev)
    heads -= parents
    (rev,) = heads
    for _ in range(back):
        rev = downs[rev]
    return rev


@dataclass
class Row:
    shape: str
    scenario: str
    size: str
    migplan: Sample
    alembic: Sample | None
    baseline: str
    goal: str = ""
    ok: bool | None = None
    memory: bool = False  # the ratio is of peak memory, not time


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--shape",
        choices=[*SHAPES, "both"],
        default="both",
        help="project shape: with a Flask app in migplan.yaml, without, or both (default)",
    )
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--apply-repeat",
        type=int,
        default=None,
        help="runs of each apply (default: --repeat)",
    )
    parser.add_argument(
        "--apply-sizes", default="100,1000", help="sizes for the apply benchmark"
    )
    parser.add_argument(
        "--no-pg", action="store_true", help="skip PostgreSQL even if reachable"
    )
    options = parser.parse_args()
    as_users_run()
    # killed (SIGTERM): still drop the PostgreSQL database and the temp folder
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(s) for s in options.sizes.split(",")]
    apply_sizes = [int(s) for s in options.apply_sizes.split(",") if int(s) in sizes]
    shapes = list(SHAPES) if options.shape == "both" else [options.shape]
    repeat = options.repeat
    apply_repeat = options.apply_repeat or repeat
    rows: list[Row] = []
    work = Path(tempfile.mkdtemp(prefix="migplan-bench-"))
    pg_db = f"migplan_bench_{os.getpid()}_{secrets.token_hex(4)}"
    pg = not options.no_pg and _pg_reachable()
    try:
        flask_dir = work / "flaskapp"
        flask_dir.mkdir()
        (flask_dir / "fapp.py").write_text(FLASK_APP)
        help_m = measure(repeat, [*MIGPLAN, "--help"], work)
        help_p = measure(repeat, [*MIGPLAN, "plan", "--help"], work)
        help_a = measure(repeat, [*ALEMBIC, "--help"], work)
        help_f = measure(repeat, [*FLASK, "--app", "fapp", "db", "--help"], flask_dir)
        rows.append(
            Row(
                "-",
                "migplan --help",
                "-",
                help_m,
                help_f,
                "flask db --help",
                "<= 1/3",
                help_m.seconds <= help_f.seconds / 3,
            )
        )
        rows.append(
            Row(
                "-",
                "migplan plan --help",
                "-",
                help_p,
                help_f,
                "flask db --help",
                "<= 1/3",
                help_p.seconds <= help_f.seconds / 3,
            )
        )
        rows.append(Row("-", "migplan --help", "-", help_m, help_a, "alembic --help"))
        for shape in shapes:
            found = bench_shape(
                shape,
                work / shape,
                sizes,
                apply_sizes,
                repeat,
                apply_repeat,
                pg_db if pg else None,
            )
            rows += found
            if len(shapes) > 1:
                # each shape's rows as soon as they are measured (to stderr, so
                # that stdout is the one table): a long run interrupted keeps them
                with contextlib.redirect_stdout(sys.stderr):
                    print_table(found)
                    print(file=sys.stderr, flush=True)
    finally:
        if pg:
            _drop_pg(pg_db)
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    print()
    print_goals(rows, shapes, sizes)


def bench_shape(
    shape: str,
    work: Path,
    sizes: list[int],
    apply_sizes: list[int],
    repeat: int,
    apply_repeat: int,
    pg_db: str | None,
) -> list[Row]:
    rows: list[Row] = []
    cache = work / "cache"
    env = {"MIGPLAN_CACHE_DIR": str(cache)}
    for size in sizes:
        root = generate(work / f"p{size}", size, shape=shape)
        target = near_head(root)
        stamp(root / "bench.db", target)
        for i in range(10):
            stamp(root / f"env{i}.db", target)
        label = f"{size:,}"

        def cold() -> None:
            shutil.rmtree(cache, ignore_errors=True)

        plan_cold = measure(repeat, [*MIGPLAN, "plan", "dev"], root, cold, env)
        run([*MIGPLAN, "plan", "dev"], root, env)
        plan_warm, alembic_heads = turns(
            repeat,
            Cmd([*MIGPLAN, "plan", "dev"], root, env=env),
            Cmd([*ALEMBIC, "heads"], root),
        )
        rows.append(
            Row(
                shape,
                "plan, cold (no cache)",
                label,
                plan_cold,
                alembic_heads,
                "alembic heads",
                "<= 1x",
                plan_cold.seconds <= alembic_heads.seconds,
            )
        )
        rows.append(
            Row(
                shape,
                "plan, warm",
                label,
                plan_warm,
                alembic_heads,
                "alembic heads",
                "<= 0.20x" if size >= 5000 else "",
            )
        )
        if size >= 5000:
            rows[-1].ok = plan_warm.seconds <= alembic_heads.seconds * 0.20
        # a database at base (no file yet): the whole history is the plan
        at_base = [*MIGPLAN, "-c", str(_base_env(root, shape)), "plan", "--json"]
        run(at_base, root, env)
        plan_base, heads_again = turns(
            repeat, Cmd(at_base, root, env=env), Cmd([*ALEMBIC, "heads"], root)
        )
        rows.append(
            Row(
                shape,
                "plan --json, at base",
                label,
                plan_base,
                heads_again,
                "alembic heads",
                "<= 0.15x" if size >= 5000 else "",
            )
        )
        if size >= 5000:
            rows[-1].ok = plan_base.seconds <= heads_again.seconds * 0.15
        rows.append(
            Row(
                shape,
                "plan --json, at base",
                label,
                plan_base,
                plan_warm,
                "plan, warm (up to date-ish)",
                "<= 2x" if size >= 5000 else "",
            )
        )
        if size >= 5000:
            rows[-1].ok = plan_base.seconds <= plan_warm.seconds * 2
        sql = measure(
            max(1, repeat // 2), [*ALEMBIC, "upgrade", f"{target}:head", "--sql"], root
        )
        rows.append(
            Row(
                shape,
                "plan, warm",
                label,
                plan_warm,
                sql,
                "alembic upgrade --sql (same steps)",
            )
        )
        rows.append(
            Row(
                shape,
                "plan peak memory",
                label,
                plan_warm,
                alembic_heads,
                "alembic heads",
                "<= 1x (RSS)",
                memory=True,
            )
        )
        rows[-1].ok = (
            max(plan_cold.max_rss_kb, plan_warm.max_rss_kb) <= alembic_heads.max_rss_kb
        )

        status_one = measure(
            repeat,
            [*MIGPLAN, "-c", str(_one_env(root, shape)), "status"],
            root,
            env=env,
        )
        status_ten = measure(repeat, [*MIGPLAN, "status"], root, env=env)
        rows.append(
            Row(
                shape,
                "status, 11 envs",
                label,
                status_ten,
                status_one,
                "migplan status, 1 env",
                "<= 2x",
                status_ten.seconds <= 2 * status_one.seconds,
            )
        )
        current = measure(max(1, repeat // 2), [*ALEMBIC, "current"], root)
        rows.append(
            Row(
                shape,
                "status, 1 env",
                label,
                status_one,
                current,
                "alembic current",
                "<= 1/20" if size >= 5000 else "",
            )
        )
        if size >= 5000:
            rows[-1].ok = status_one.seconds <= current.seconds / 20
        status_two = measure(
            repeat,
            [*MIGPLAN, "-c", str(_head_and_base(root, shape)), "status"],
            root,
            env=env,
        )
        rows.append(
            Row(
                shape,
                "status, 1 at head + 1 at base",
                label,
                status_two,
                current,
                "alembic current",
                "<= 0.05x" if size >= 5000 else "",
            )
        )
        if size >= 5000:
            rows[-1].ok = status_two.seconds <= current.seconds * 0.05

        if size in apply_sizes:
            fresh = root / "apply.db"

            def reset(fresh: Path = fresh, root: Path = root) -> None:
                fresh.unlink(missing_ok=True)
                for lock in root.glob("*.migplan-lock"):
                    lock.unlink()

            rows += _apply_rows(
                shape,
                size,
                "SQLite",
                root,
                _apply_config(root, shape),
                _apply_ini(root, fresh),
                reset,
                {**env, "BENCH_URL": f"sqlite:///{fresh}"},
                cache,
                apply_repeat,
                0.80,
            )
            if pg_db is not None:
                pg_url = f"{PG_SERVER}/{pg_db}"
                rows += _apply_rows(
                    shape,
                    size,
                    "PostgreSQL",
                    root,
                    _apply_config(root, shape, "pg.yaml"),
                    _apply_ini(root, None, "pg.ini", pg_url),
                    lambda db=pg_db: _recreate_pg(db),
                    {**env, "BENCH_URL": pg_url},
                    cache,
                    apply_repeat,
                    1.10,
                )
                _drop_pg(pg_db)
    if len(sizes) > 1:
        # measured again, the two sizes taking turns, so that both see the
        # same machine: a ratio of runs minutes apart measures the noise; 21
        # turns, as a median of 9 moved by 0.3 between runs on a noisy VM
        small, large = min(sizes), max(sizes)
        warm_small, warm_large = turns(
            max(repeat, 21),
            Cmd([*MIGPLAN, "plan", "dev"], work / f"p{small}", env=env),
            Cmd([*MIGPLAN, "plan", "dev"], work / f"p{large}", env=env),
        )
        ratio = warm_large.seconds / warm_small.seconds
        rows.append(
            Row(
                shape,
                f"plan warm {large:,} / plan warm {small:,}",
                "-",
                warm_large,
                warm_small,
                f"plan, warm, {small:,} (in turns)",
                "<= 1.25x",
                ratio <= 1.25,
            )
        )
    return rows


def _apply_rows(
    shape: str,
    size: int,
    database: str,
    root: Path,
    cfg: Path,
    ini: Path,
    reset: Callable[[], None],
    env: dict[str, str],
    cache: Path,
    repeat: int,
    time_goal: float,
) -> list[Row]:
    """apply of every revision to a fresh database against `alembic upgrade
    heads`: wall time and peak memory where migplan.yaml was checked and the
    revisions linted before (a machine that deployed this project already), and
    peak memory of a first run, nothing cached (a fresh CI runner: jsonschema
    checks migplan.yaml, every revision file is read and linted)."""
    label = f"{size:,}"
    migplan = [*MIGPLAN, "-c", str(cfg), "apply", "fresh"]
    reset()
    run([*MIGPLAN, "-c", str(cfg), "plan", "fresh"], root, env)
    warm, alembic = turns(
        repeat,
        Cmd(migplan, root, reset, env),
        Cmd([*ALEMBIC, "-c", str(ini), "upgrade", "heads"], root, reset),
    )

    def nothing_cached() -> None:
        reset()
        shutil.rmtree(cache, ignore_errors=True)

    first = measure(repeat, migplan, root, nothing_cached, env)
    big = size >= 1000
    return [
        Row(
            shape,
            f"apply all, fresh {database}",
            label,
            warm,
            alembic,
            "alembic upgrade heads",
            f"<= {time_goal:.2f}x" if big else "",
            ok=warm.seconds <= time_goal * alembic.seconds if big else None,
        ),
        Row(
            shape,
            f"apply peak memory, {database}",
            label,
            warm,
            alembic,
            "alembic upgrade heads",
            "<= 1x (RSS)",
            ok=warm.max_rss_kb <= alembic.max_rss_kb,
            memory=True,
        ),
        Row(
            shape,
            f"apply peak memory, {database}, nothing cached",
            label,
            first,
            alembic,
            "alembic upgrade heads",
            "<= 1x (RSS)",
            ok=first.max_rss_kb <= alembic.max_rss_kb,
            memory=True,
        ),
    ]


def _app_line(shape: str) -> str:
    return "app: benchapp:create_app\n" if shape == "app" else ""


def _one_env(root: Path, shape: str) -> Path:
    path = root / "one-env.yaml"
    path.write_text(
        "migrations: migrations\n"
        + _app_line(shape)
        + "environments:\n  dev:\n    url: sqlite:///bench.db\n    target: heads\n"
    )
    return path


def _base_env(root: Path, shape: str) -> Path:
    path = root / "base-env.yaml"
    path.write_text(
        "migrations: migrations\n"
        + _app_line(shape)
        + "environments:\n  fresh:\n    url: sqlite:///never.db\n    target: heads\n"
    )
    return path


def _head_and_base(root: Path, shape: str) -> Path:
    path = root / "head-and-base.yaml"
    path.write_text(
        "migrations: migrations\n"
        + _app_line(shape)
        + "environments:\n"
        + "  dev:\n    url: sqlite:///bench.db\n    target: heads\n"
        + "  fresh:\n    url: sqlite:///never.db\n    target: heads\n"
    )
    return path


def _apply_config(root: Path, shape: str, name: str = "apply.yaml") -> Path:
    path = root / name
    path.write_text(
        "migrations: migrations\n"
        + _app_line(shape)
        + "environments:\n  fresh:\n    url: ${BENCH_URL}\n    target: heads\n"
    )
    return path


def _apply_ini(
    root: Path, db: Path | None, name: str = "apply.ini", url: str | None = None
) -> Path:
    path = root / name
    url = url or f"sqlite:///{db}"
    path.write_text(
        f"[alembic]\nscript_location = %(here)s/migrations\nsqlalchemy.url = {url}\n"
    )
    return path


PG_SERVER = os.environ.get("MIGPLAN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


_PG_ADMIN = """
import sys
import sqlalchemy as sa
engine = sa.create_engine(sys.argv[1] + "/postgres", isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
with engine.connect() as conn:
    for sql in sys.argv[2:]:
        conn.exec_driver_sql(sql)
"""


def _pg(*sql: str) -> bool:
    """Run admin SQL on the PostgreSQL server in a child process: the bench itself
    stays small, so that its children's peak memory is theirs alone."""
    done = subprocess.run(
        [sys.executable, "-c", _PG_ADMIN, PG_SERVER, *sql], capture_output=True
    )
    return done.returncode == 0


def _pg_reachable() -> bool:
    return _pg("SELECT 1")


def _recreate_pg(name: str) -> None:
    _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')


def _drop_pg(name: str) -> None:
    _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _ratio(row: Row) -> float | None:
    base = row.alembic
    if base is None:
        return None
    if row.memory:
        return row.migplan.max_rss_kb / base.max_rss_kb
    return row.migplan.seconds / base.seconds


def _print(header: list[str], body: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    for line in [header, *body]:
        print(
            "  ".join(
                str(c).ljust(w) for c, w in zip(line, widths, strict=True)
            ).rstrip()
        )


def print_table(rows: list[Row]) -> None:
    header = [
        "shape",
        "scenario",
        "revisions",
        "migplan",
        "baseline",
        "baseline (s)",
        "ratio",
        "goal",
        "",
        "peak MB",
    ]
    body = []
    for row in rows:
        base = row.alembic
        ratio = _ratio(row)
        verdict = "" if row.ok is None else ("ok" if row.ok else "MISSED")
        body.append(
            [
                row.shape,
                row.scenario,
                row.size,
                f"{row.migplan.seconds:.3f}s",
                row.baseline,
                f"{base.seconds:.3f}s" if base else "",
                f"{ratio:.2f}x" if ratio is not None else "",
                row.goal,
                verdict,
                f"{row.migplan.max_rss_kb / 1024:.0f}/{base.max_rss_kb / 1024:.0f}"
                if base
                else "",
            ]
        )
    _print(header, body)


# issue 15's goals: (scenario, size, label, goal)
GOALS = [
    (
        "apply all, fresh SQLite",
        1000,
        "apply 1,000 on fresh SQLite / alembic upgrade heads",
        0.80,
    ),
    (
        "apply all, fresh PostgreSQL",
        1000,
        "apply 1,000 on fresh PostgreSQL / alembic upgrade heads",
        1.10,
    ),
    (
        "plan warm {large} / plan warm {small}",
        None,
        "warm plan {large} / warm plan {small} (in turns)",
        1.25,
    ),
    ("plan, warm", 5000, "warm plan 5,000 / alembic heads", 0.20),
    ("plan --json, at base", 5000, "plan --json at base 5,000 / alembic heads", 0.15),
    (
        "status, 1 at head + 1 at base",
        5000,
        "status head+base 5,000 / alembic current",
        0.05,
    ),
    ("apply peak memory, SQLite", 1000, "apply 1,000 SQLite peak RSS / alembic's", 1.0),
    (
        "apply peak memory, SQLite, nothing cached",
        1000,
        "  the same, a first run, nothing cached",
        1.0,
    ),
    (
        "apply peak memory, PostgreSQL",
        1000,
        "apply 1,000 PostgreSQL peak RSS / alembic's",
        1.0,
    ),
    (
        "apply peak memory, PostgreSQL, nothing cached",
        1000,
        "  the same, a first run, nothing cached",
        1.0,
    ),
    ("plan peak memory", 5000, "plan 5,000 peak RSS / alembic heads'", 1.0),
]


def print_goals(rows: list[Row], shapes: list[str], sizes: list[int]) -> None:
    """One line per goal, a column per shape (the app shape, the headline, first)."""
    small, large = f"{min(sizes):,}", f"{max(sizes):,}"
    header = ["goal (issues 12, 15)", "target", *shapes]
    body = []
    for scenario, size, label, goal in GOALS:
        scenario = scenario.format(small=small, large=large)
        cells = []
        for shape in shapes:
            found = [
                r
                for r in rows
                if r.shape == shape
                and r.scenario == scenario
                and (size is None or r.size == f"{size:,}")
                and (r.baseline.startswith("alembic") or size is None)
            ]
            ratio = _ratio(found[0]) if found else None
            cells.append(
                "-"
                if ratio is None
                else f"{ratio:.2f}x {'ok' if ratio <= goal else 'MISSED'}"
            )
        if all(c == "-" for c in cells):
            continue
        body.append([label.format(small=small, large=large), f"<= {goal:.2f}x", *cells])
    _print(header, body)


if __name__ == "__main__":
    main()
