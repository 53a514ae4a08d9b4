"""`migplan verify --url` on PostgreSQL against the round trips' own work.

    python bench/verify.py                  # 20 and 200 revisions
    python bench/verify.py --sizes 20 --repeat 5

verify upgrades, downgrades and upgrades again every revision on an empty
scratch database, comparing the reflected schema after each round trip. The
baseline is the same migrations run by plain Alembic without the comparisons:
`alembic upgrade head`, `downgrade base`, `upgrade head`, three processes, on
another empty database. The goal (issue 12): verify within 3x of that. Medians
of whole commands, in turns; the project is bench/genproject.py's (plain shape,
no models, so no drift check).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
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
from run import _apply_ini  # noqa: E402
from run import _drop_pg  # noqa: E402
from run import _pg_reachable  # noqa: E402
from run import _print  # noqa: E402
from run import _recreate_pg  # noqa: E402
from run import run as run_one  # noqa: E402

GOAL = 3.0


def timed(args: list[str], cwd: Path) -> float:
    """Seconds of a whole verify; exit 1 is an answer too (a small generated
    history may end in two heads, which verify reports after checking them)."""
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if done.returncode not in (0, 1) or "round-trip" not in done.stdout + done.stderr:
        if "problem" not in done.stdout + done.stderr:
            raise SystemExit(f"verify failed: {done.stderr[-500:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,200")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    as_users_run()
    if not _pg_reachable():
        raise SystemExit(f"no PostgreSQL server answers at {PG_SERVER}")
    body = []
    for size in (int(s) for s in args.sizes.split(",")):
        root = Path(tempfile.mkdtemp(prefix=f"migplan-bench-verify-{size}-"))
        name = f"mp_verify_{secrets.token_hex(4)}"
        url = f"{PG_SERVER}/{name}"
        try:
            generate(root, size)
            ini = _apply_ini(root, None, "pg.ini", url)
            verify_s, alembic_s = [], []
            for _ in range(args.repeat):
                _recreate_pg(name)
                verify_s.append(timed([*MIGPLAN, "verify", "--url", url], root))
                _recreate_pg(name)
                started = time.perf_counter()
                for step in (
                    ("upgrade", "heads"),
                    ("downgrade", "base"),
                    ("upgrade", "heads"),
                ):
                    run_one([*ALEMBIC, "-c", str(ini), *step], root)
                alembic_s.append(time.perf_counter() - started)
            verify, alembic = (
                sorted(verify_s)[len(verify_s) // 2],
                sorted(alembic_s)[len(alembic_s) // 2],
            )
            ratio = verify / alembic
            body.append(
                [
                    f"{size:,}",
                    f"{verify:.2f} s",
                    f"{alembic:.2f} s",
                    f"{ratio:.2f}x",
                    f"<= {GOAL:.0f}x",
                    "ok" if ratio <= GOAL else "MISSED",
                ]
            )
        finally:
            _drop_pg(name)
            shutil.rmtree(root, ignore_errors=True)
    _print(
        [
            "revisions",
            "migplan verify --url",
            "alembic up + down base + up",
            "ratio",
            "goal",
            "",
        ],
        body,
    )


if __name__ == "__main__":
    main()
