"""A fresh database at head: loading a checkpoint vs replaying the history.

    python bench/checkpoint.py                      # 1,000 and 5,000 revisions
    python bench/checkpoint.py --sizes 1000 --repeat 5

For each size, on the generated project of bench/genproject.py (the "app"
shape: migplan.yaml names a Flask app), `migplan checkpoint` is made once, then
three whole commands bring an empty database to head, in turns:
`migplan apply` (the checkpoint, then nothing), `migplan apply --no-checkpoint`
(the replay) and `alembic upgrade heads` (the same replay by Alembic). On SQLite
(a new file each time) and PostgreSQL (a new database each time, where the
server at $MIGPLAN_BENCH_PG or 127.0.0.1:5432 answers). Medians; machines here
are noisy, so read the ratios. The goals are issue 12's: at least 10x faster
than the replay at 1,000 revisions, 25x at 5,000.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from genproject import as_users_run  # noqa: E402
from genproject import generate  # noqa: E402
from run import ALEMBIC  # noqa: E402
from run import MIGPLAN  # noqa: E402
from run import PG_SERVER  # noqa: E402
from run import Cmd  # noqa: E402
from run import _apply_config  # noqa: E402
from run import _apply_ini  # noqa: E402
from run import _drop_pg  # noqa: E402
from run import _pg_reachable  # noqa: E402
from run import _print  # noqa: E402
from run import _recreate_pg  # noqa: E402
from run import run as run_one  # noqa: E402
from run import turns  # noqa: E402

GOALS = {1000: 10.0, 5000: 25.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--repeat-large",
        type=int,
        default=1,
        help="rounds at 5,000 revisions and more (a replay takes minutes there)",
    )
    args = parser.parse_args()
    as_users_run()
    sizes = [int(s) for s in args.sizes.split(",")]
    pg = _pg_reachable()
    body = []
    for size in sizes:
        root = Path(tempfile.mkdtemp(prefix=f"migplan-bench-ckpt-{size}-"))
        try:
            generate(root, size, shape="app")
            env = {"PYTHONPATH": str(root)}
            targets = [("SQLite", None)]
            if pg:
                targets.append(("PostgreSQL", f"mp_bench_{secrets.token_hex(4)}"))
            for dialect, pg_db in targets:
                repeat = args.repeat if size < 5000 else args.repeat_large
                body.append(one(root, size, dialect, pg_db, env, repeat))
                print(" ".join(body[-1]), file=sys.stderr)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print()
    _print(
        [
            "revisions",
            "database",
            "checkpoint made",
            "file",
            "apply (checkpoint)",
            "apply --no-checkpoint",
            "alembic upgrade",
            "speed-up",
            "goal",
            "ok",
        ],
        body,
    )


def one(
    root: Path,
    size: int,
    dialect: str,
    pg_db: str | None,
    env: dict[str, str],
    repeat: int,
) -> list[str]:
    if pg_db is None:
        fresh = root / "fresh.db"
        url = f"sqlite:///{fresh}"

        def reset() -> None:
            fresh.unlink(missing_ok=True)

        ini = _apply_ini(root, fresh)
        scratch: list[str] = []
    else:
        url = f"{PG_SERVER}/{pg_db}"
        scratch_db = pg_db + "_scratch"
        _recreate_pg(scratch_db)
        scratch = ["--url", f"{PG_SERVER}/{scratch_db}"]

        def reset() -> None:
            _recreate_pg(pg_db)

        ini = _apply_ini(root, None, "pg.ini", url)
    cfg = _apply_config(root, "app", f"ckpt-{dialect}.yaml")
    run_env = {**env, "BENCH_URL": url}
    started = time.perf_counter()
    try:
        run_one(
            [*MIGPLAN, "-c", str(cfg), "checkpoint", "-e", "fresh", *scratch],
            root,
            run_env,
        )
    except SystemExit as err:  # said, with the reason, in the table
        if pg_db is not None:
            _drop_pg(pg_db + "_scratch")
        reason = str(err).strip().splitlines()[-1][-120:]
        return [f"{size:,}", dialect, "failed", "", reason, "", "", "", "", "NO"]
    made = time.perf_counter() - started
    files = list((root / "migrations" / "checkpoints").glob("*.sql"))
    suffix = ".sqlite.sql" if pg_db is None else ".postgresql.sql"
    size_kb = sum(f.stat().st_size for f in files if f.name.endswith(suffix)) / 1024
    apply = [*MIGPLAN, "-c", str(cfg), "apply", "fresh"]
    loaded, replayed, alembic = turns(
        repeat,
        Cmd(apply, root, reset, run_env),
        Cmd([*apply, "--no-checkpoint"], root, reset, run_env),
        Cmd([*ALEMBIC, "-c", str(ini), "upgrade", "heads"], root, reset),
    )
    if pg_db is not None:
        _drop_pg(pg_db)
        _drop_pg(pg_db + "_scratch")
    speed = replayed.seconds / loaded.seconds
    goal = GOALS.get(size)
    return [
        f"{size:,}",
        dialect,
        f"{made:.1f} s",
        f"{size_kb:,.0f} KiB",
        f"{loaded.seconds:.2f} s",
        f"{replayed.seconds:.2f} s",
        f"{alembic.seconds:.2f} s",
        f"{speed:.1f}x",
        f">= {goal:.0f}x" if goal else "",
        ("yes" if speed >= goal else "NO") if goal else "",
    ]


if __name__ == "__main__":
    main()
