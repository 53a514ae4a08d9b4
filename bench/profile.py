"""Where migplan's time goes beyond Alembic's, on a generated project (issue 15).

    .venv/bin/pip install pyinstrument
    .venv/bin/python bench/profile.py                  # app shape, apply 1,000, plan 5,000
    .venv/bin/python bench/profile.py --shape plain --out /tmp/prof

1. Per step and per run: CPU time (user+sys of the child, so that a loaded
   machine matters less than for wall time) of `migplan apply` and `alembic
   upgrade heads` at two sizes; the slope is the cost of a step, the intercept
   that of a run. The databases live on tmpfs (/dev/shm) when there is one, so
   that fsync (where migplan commits once per migration and Alembic once per
   statement) is left out: what is left is Python.
   Then the same on PostgreSQL (when reachable; --no-pg skips it), with wall
   time beside CPU time: wall minus CPU is the time spent waiting on the
   server, where one transaction per migration and its audit row cost migplan
   three round trips a step (BEGIN, the step's row, COMMIT) that Alembic's
   single transaction does not make.
2. pyinstrument profiles of the apply and of a warm `plan` at the large size
   (HTML and text in --out), with the heaviest migplan functions printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from genproject import SHAPES  # noqa: E402
from genproject import as_users_run  # noqa: E402
from genproject import generate  # noqa: E402
from run import ALEMBIC  # noqa: E402
from run import MIGPLAN  # noqa: E402
from run import PG_SERVER  # noqa: E402
from run import _drop_pg  # noqa: E402
from run import _pg_reachable  # noqa: E402
from run import _recreate_pg  # noqa: E402
from run import near_head  # noqa: E402
from run import stamp  # noqa: E402


def cpu(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)}: {proc.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss


def apply_config(root: Path, shape: str) -> Path:
    path = root / "apply.yaml"
    app = "app: benchapp:create_app\n" if shape == "app" else ""
    path.write_text(
        f"migrations: migrations\n{app}environments:\n  fresh:\n"
        "    url: ${BENCH_URL}\n    target: heads\n"
    )
    return path


def apply_ini(root: Path, db: Path | str) -> Path:
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    path = root / ("pg.ini" if isinstance(db, str) else "apply.ini")
    path.write_text(
        f"[alembic]\nscript_location = %(here)s/migrations\nsqlalchemy.url = {url}\n"
    )
    return path


def split(
    roots: dict[int, Path],
    shape: str,
    repeat: int,
    reset: Callable[[], None],
    env: dict[str, str],
    target: Path | str,
    wall: bool,
) -> None:
    """Run `migplan apply` and `alembic upgrade heads` at both sizes, in turns
    (`reset` empties the database before each), and print each one's cost of a
    step (the slope) and of a run (the intercept), CPU and, with `wall`, wall."""
    results: dict[tuple[str, int], list[tuple[float, float, int]]] = {}
    for root in roots.values():
        # migplan.yaml checked and the revisions linted once, as on a machine
        # that has deployed the project: the runs measured are warm
        reset()
        cpu(
            [*MIGPLAN, "-c", str(apply_config(root, shape)), "plan", "fresh"], root, env
        )
    for _ in range(repeat):
        for n, root in roots.items():
            cmds = {
                "migplan apply": [
                    *MIGPLAN,
                    "-c",
                    str(apply_config(root, shape)),
                    "apply",
                    "fresh",
                ],
                "alembic upgrade heads": [
                    *ALEMBIC,
                    "-c",
                    str(apply_ini(root, target)),
                    "upgrade",
                    "heads",
                ],
            }
            for name, args in cmds.items():
                reset()
                results.setdefault((name, n), []).append(cpu(args, root, env))
    small, big = sorted(roots)
    kinds = [("CPU", 0), ("wall", 1)] if wall else [("CPU", 0)]
    print(
        f"{'command':24} {'':4} {str(small) + ' revs':>9} {str(big) + ' revs':>9}"
        f"  {'ms/step':>8} {'ms/run':>7}  {'peak MB':>7}"
    )
    for name in ("migplan apply", "alembic upgrade heads"):
        rss = max(r[2] for r in results[(name, big)]) / 1024
        for kind, i in kinds:
            at_small = statistics.median(r[i] for r in results[(name, small)])
            at_big = statistics.median(r[i] for r in results[(name, big)])
            slope = (at_big - at_small) / (big - small)
            print(
                f"{name:24} {kind:4} {at_small:8.3f}s {at_big:8.3f}s"
                f"  {slope * 1000:8.3f} {(at_small - small * slope) * 1000:7.0f}  {rss:7.0f}"
            )


def top(session_file: Path, prefix: str, count: int) -> list[tuple[float, str]]:
    """Inclusive seconds of the heaviest functions under `prefix` (a recursive
    function counted once per stack)."""
    from pyinstrument.session import Session

    sys.setrecursionlimit(100_000)
    totals: dict[str, float] = {}

    def walk(frame, active: frozenset[str]) -> None:  # type: ignore[no-untyped-def]
        name = f"{frame.function}  {frame.file_path_short}:{frame.line_no}"
        if name not in active and prefix in (frame.file_path or ""):
            totals[name] = totals.get(name, 0.0) + frame.time
        for child in frame.children:
            walk(child, active | {name})

    walk(Session.load(str(session_file)).root_frame(), frozenset())
    return sorted(((t, n) for n, t in totals.items()), reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=SHAPES, default="app")
    parser.add_argument("--apply-size", type=int, default=1000)
    parser.add_argument("--plan-size", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where the profiles go (default: a temp folder, kept)",
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--no-pg", action="store_true", help="skip PostgreSQL even if reachable"
    )
    options = parser.parse_args()
    as_users_run()
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        raise SystemExit("pip install pyinstrument first") from None
    out = options.out or Path(tempfile.mkdtemp(prefix="migplan-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="migplan-profile-work-"))
    shm = Path("/dev/shm")
    dbdir = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else work
    env = {"MIGPLAN_CACHE_DIR": str(work / "cache")}
    migplan_pkg = str(Path(__import__("migplan").__file__).parent)
    try:
        big, small = options.apply_size, max(1, options.apply_size // 10)
        roots = {
            n: generate(work / f"a{n}", n, shape=options.shape) for n in (small, big)
        }
        db = dbdir / "apply.db"
        apply_env = {**env, "BENCH_URL": f"sqlite:///{db}"}

        def reset_sqlite() -> None:
            for old in dbdir.glob("apply.db*"):
                old.unlink()

        print(
            f"shape {options.shape}; SQLite databases in {dbdir} "
            f"(fsync {'free' if dbdir.parent == shm else 'paid'})"
        )
        split(roots, options.shape, options.repeat, reset_sqlite, apply_env, db, False)
        if not options.no_pg and _pg_reachable():
            name = f"migplan_profile_{os.getpid()}"
            url = f"{PG_SERVER}/{name}"
            print(f"\nPostgreSQL ({PG_SERVER}): wall - CPU is waiting on the server")
            try:
                split(
                    roots,
                    options.shape,
                    options.repeat,
                    lambda: _recreate_pg(name),
                    {**env, "BENCH_URL": url},
                    url,
                    True,
                )
            finally:
                _drop_pg(name)

        root = roots[big]
        reset_sqlite()
        profile = out / f"apply-{options.shape}-{big}"
        _pyinstrument(
            profile,
            [*MIGPLAN, "-c", str(apply_config(root, options.shape)), "apply", "fresh"],
            root,
            apply_env,
        )
        plan_root = generate(
            work / f"p{options.plan_size}", options.plan_size, shape=options.shape
        )
        stamp(plan_root / "bench.db", near_head(plan_root))
        for _ in range(2):  # warm the cache
            cpu([*MIGPLAN, "plan", "dev"], plan_root, env)
        plan_profile = out / f"plan-warm-{options.shape}-{options.plan_size}"
        _pyinstrument(
            plan_profile, [*MIGPLAN, "plan", "dev"], plan_root, env, interval="0.0001"
        )
        for title, session in (("apply", profile), ("warm plan", plan_profile)):
            print(
                f"\n{title}: heaviest migplan functions (inclusive s; {session}.html)"
            )
            for seconds, name in top(
                session.with_suffix(".pyisession"), migplan_pkg, options.top
            ):
                print(f"  {seconds:7.3f}  {name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if dbdir != work:
            shutil.rmtree(dbdir, ignore_errors=True)


def _pyinstrument(
    base: Path,
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    interval: str = "0.0005",
) -> None:
    """Profile a command: a session (for `top`), HTML and text renderings."""
    module = args[2:] if args[:2] == [sys.executable, "-m"] else None
    command = ["-m", *module] if module else args
    session = base.with_suffix(".pyisession")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pyinstrument",
            "-i",
            interval,
            "-r",
            "session",
            "-o",
            str(session),
            *command,
        ],
        cwd=cwd,
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for renderer, suffix in (("html", ".html"), ("text", ".txt")):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pyinstrument",
                "--load",
                str(session),
                "-r",
                renderer,
                "-o",
                str(base.with_suffix(suffix)),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )


if __name__ == "__main__":
    main()
