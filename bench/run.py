"""Benchmark migplan against plain Alembic on generated projects, in one run.

    python bench/run.py                     # 100, 1,000 and 5,000 revisions
    python bench/run.py --sizes 100,1000 --repeat 3

Every figure is the median wall time of a whole command run as a subprocess, as a
user would run it, next to the plain-Alembic command that does the same job on
the same project, and the ratio migplan/Alembic. Machines here are noisy:
compare ratios, not seconds. Peak memory is the child's max RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
        args, cwd=cwd, env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
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
    repeat: int, args: list[str], cwd: Path, before: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> Sample:
    samples = []
    for _ in range(repeat):
        if before:
            before()
        samples.append(run(args, cwd, env))
    return median(samples)


def stamp(db: Path, revision: str) -> None:
    """Put a SQLite database at `revision` without running anything."""
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
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
    scenario: str
    size: str
    migplan: Sample
    alembic: Sample | None
    baseline: str
    goal: str = ""
    ok: bool | None = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--apply-sizes", default="100,1000", help="sizes for the apply benchmark")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    apply_sizes = [int(s) for s in options.apply_sizes.split(",") if int(s) in sizes]
    repeat = options.repeat
    rows: list[Row] = []
    work = Path(tempfile.mkdtemp(prefix="migplan-bench-"))
    cache = work / "cache"
    env = {"MIGPLAN_CACHE_DIR": str(cache)}
    try:
        flask_dir = work / "flaskapp"
        flask_dir.mkdir()
        (flask_dir / "fapp.py").write_text(FLASK_APP)
        help_m = measure(repeat, [*MIGPLAN, "--help"], work)
        help_p = measure(repeat, [*MIGPLAN, "plan", "--help"], work)
        help_a = measure(repeat, [*ALEMBIC, "--help"], work)
        help_f = measure(repeat, [*FLASK, "--app", "fapp", "db", "--help"], flask_dir)
        rows.append(Row("migplan --help", "-", help_m, help_f, "flask db --help", "<= 1/3", help_m.seconds <= help_f.seconds / 3))
        rows.append(Row("migplan plan --help", "-", help_p, help_f, "flask db --help", "<= 1/3", help_p.seconds <= help_f.seconds / 3))
        rows.append(Row("migplan --help", "-", help_m, help_a, "alembic --help"))

        for size in sizes:
            root = generate(work / f"p{size}", size)
            target = near_head(root)
            stamp(root / "bench.db", target)
            for i in range(10):
                stamp(root / f"env{i}.db", target)
            label = f"{size:,}"

            def cold() -> None:
                shutil.rmtree(cache, ignore_errors=True)

            plan_cold = measure(repeat, [*MIGPLAN, "plan", "dev"], root, cold, env)
            run([*MIGPLAN, "plan", "dev"], root, env)
            plan_warm = measure(repeat, [*MIGPLAN, "plan", "dev"], root, env=env)
            alembic_heads = measure(repeat, [*ALEMBIC, "heads"], root)
            rows.append(Row("plan, cold (no cache)", label, plan_cold, alembic_heads, "alembic heads", "<= 1x", plan_cold.seconds <= alembic_heads.seconds))
            rows.append(Row("plan, warm", label, plan_warm, alembic_heads, "alembic heads", "<= 1/5" if size >= 5000 else ""))
            if size >= 5000:
                rows[-1].ok = plan_warm.seconds <= alembic_heads.seconds / 5
            sql = measure(max(1, repeat // 2), [*ALEMBIC, "upgrade", f"{target}:head", "--sql"], root)
            rows.append(Row("plan, warm", label, plan_warm, sql, "alembic upgrade --sql (same steps)"))
            rows.append(Row("plan peak memory", label, plan_warm, alembic_heads, "alembic heads", "<= 1x (RSS)"))
            rows[-1].ok = plan_cold.max_rss_kb <= alembic_heads.max_rss_kb

            status_one = measure(repeat, [*MIGPLAN, "-c", str(_one_env(root)), "status"], root, env=env)
            status_ten = measure(repeat, [*MIGPLAN, "status"], root, env=env)
            rows.append(Row("status, 11 envs", label, status_ten, status_one, "migplan status, 1 env", "<= 2x", status_ten.seconds <= 2 * status_one.seconds))
            current = measure(max(1, repeat // 2), [*ALEMBIC, "current"], root)
            rows.append(Row("status, 1 env", label, status_one, current, "alembic current", "<= 1/20" if size >= 5000 else ""))
            if size >= 5000:
                rows[-1].ok = status_one.seconds <= current.seconds / 20

            if size in apply_sizes:
                fresh = root / "apply.db"

                def reset() -> None:
                    fresh.unlink(missing_ok=True)
                    for lock in root.glob("*.migplan-lock"):
                        lock.unlink()

                apply_env = {**env, "BENCH_URL": f"sqlite:///{fresh}"}
                cfg = _apply_config(root)
                apply_m = measure(max(1, repeat // 2), [*MIGPLAN, "-c", str(cfg), "apply", "fresh"], root, reset, apply_env)
                ini = _apply_ini(root, fresh)
                apply_a = measure(max(1, repeat // 2), [*ALEMBIC, "-c", str(ini), "upgrade", "head"], root, reset)
                rows.append(Row("apply all, fresh SQLite", label, apply_m, apply_a, "alembic upgrade head", "<= 0.8x" if size >= 1000 else ""))
                if size >= 1000:
                    rows[-1].ok = apply_m.seconds <= 0.8 * apply_a.seconds
                if _pg_reachable():
                    pg_url = f"{PG_SERVER}/migplan_bench"

                    def fresh_pg() -> None:
                        _recreate_pg("migplan_bench")

                    cfg = _apply_config(root, "pg.yaml")
                    ini = _apply_ini(root, None, "pg.ini", pg_url)
                    pg_env = {**env, "BENCH_URL": pg_url}
                    apply_pm = measure(max(1, repeat // 2), [*MIGPLAN, "-c", str(cfg), "apply", "fresh"], root, fresh_pg, pg_env)
                    apply_pa = measure(max(1, repeat // 2), [*ALEMBIC, "-c", str(ini), "upgrade", "head"], root, fresh_pg)
                    rows.append(Row("apply all, fresh PostgreSQL", label, apply_pm, apply_pa, "alembic upgrade head", "<= 1.10x" if size >= 1000 else ""))
                    if size >= 1000:
                        rows[-1].ok = apply_pm.seconds <= 1.10 * apply_pa.seconds
                    _drop_pg("migplan_bench")
        if len(sizes) > 1:
            # measured again, the two sizes taking turns, so that both see the
            # same machine: a ratio of runs minutes apart measures the noise
            small, large = min(sizes), max(sizes)
            turns: dict[int, list[Sample]] = {small: [], large: []}
            for _ in range(max(repeat, 9)):
                for size in (small, large):
                    turns[size].append(run([*MIGPLAN, "plan", "dev"], work / f"p{size}", env))
            warm_small, warm_large = median(turns[small]), median(turns[large])
            ratio = warm_large.seconds / warm_small.seconds
            rows.append(Row(f"plan warm {large:,} / plan warm {small:,}", "-", warm_large, warm_small, f"plan, warm, {small:,} (in turns)", "<= 1.25x", ratio <= 1.25))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows)


def _one_env(root: Path) -> Path:
    path = root / "one-env.yaml"
    path.write_text("migrations: migrations\nenvironments:\n  dev:\n    url: sqlite:///bench.db\n    target: heads\n")
    return path


def _apply_config(root: Path, name: str = "apply.yaml") -> Path:
    path = root / name
    path.write_text("migrations: migrations\nenvironments:\n  fresh:\n    url: ${BENCH_URL}\n    target: heads\n")
    return path


def _apply_ini(root: Path, db: Path | None, name: str = "apply.ini", url: str | None = None) -> Path:
    path = root / name
    url = url or f"sqlite:///{db}"
    path.write_text(f"[alembic]\nscript_location = %(here)s/migrations\nsqlalchemy.url = {url}\n")
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


def print_table(rows: list[Row]) -> None:
    header = ["scenario", "revisions", "migplan", "baseline", "baseline (s)", "ratio", "goal", "", "peak MB"]
    body = []
    for row in rows:
        base = row.alembic
        ratio = f"{row.migplan.seconds / base.seconds:.2f}x" if base else ""
        if row.scenario == "plan peak memory" and base:
            ratio = f"{row.migplan.max_rss_kb / base.max_rss_kb:.2f}x"
        verdict = "" if row.ok is None else ("ok" if row.ok else "MISSED")
        body.append([
            row.scenario, row.size, f"{row.migplan.seconds:.3f}s", row.baseline,
            f"{base.seconds:.3f}s" if base else "", ratio, row.goal, verdict,
            f"{row.migplan.max_rss_kb / 1024:.0f}/{base.max_rss_kb / 1024:.0f}" if base else "",
        ])
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    for line in [header, *body]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
