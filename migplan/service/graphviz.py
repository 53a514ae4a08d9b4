"""Graphviz's `dot`, run on the DOT text migplan.render.drawing makes: the graph
as SVG."""

from __future__ import annotations

import shutil
import subprocess

from migplan.errors import MigplanError

NOT_INSTALLED = (
    "Graphviz's dot is not installed: apt-get install graphviz / "
    "brew install graphviz (or print DOT with --format dot)"
)
TIMEOUT = 120.0
"""Seconds dot may take; a graph of thousands of revisions takes a few."""


def svg(dot_text: str, *, timeout: float = TIMEOUT) -> str:
    """Return `dot_text` drawn as an SVG document by ``dot -Tsvg``.

    :raises MigplanError: dot is not on PATH, or it failed.
    """
    program = shutil.which("dot")
    if program is None:
        raise MigplanError(NOT_INSTALLED)
    try:
        done = subprocess.run(
            [program, "-Tsvg"],
            input=dot_text,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise MigplanError(f"Graphviz's dot took over {timeout:g}s") from err
    except OSError as err:
        raise MigplanError(f"cannot run Graphviz's dot ({program}): {err}") from err
    if done.returncode != 0:
        said = next((ln for ln in done.stderr.splitlines() if ln.strip()), "")
        raise MigplanError(
            f"Graphviz's dot failed (exit {done.returncode})"
            + (f": {said.strip()}" if said else "")
        )
    return done.stdout.rstrip("\n")
