"""The terminal: colour only on a TTY without NO_COLOR (never in a document), and
-q/--quiet for scripts.

The CLI run in-process (conftest.run) writes to no terminal; the coloured cases run
`python -m migplan` on a pseudo-terminal, as a user's shell runs it.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from conftest import create_table
from conftest import linear_project
from conftest import run
from conftest import version_rows

from migplan.core.planner import Plan
from migplan.core.planner import Step
from migplan.render import plan_lines
from migplan.render import plan_text

ANSI = re.compile(r"\x1b\[[0-9;]*m")
"""An SGR sequence: what colours text."""


def run_tty(
    root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, str]:
    """Run migplan as a process whose stdin, stdout and stderr are a terminal;
    return its exit code and everything it wrote there."""
    full_env = {**os.environ, "TERM": "xterm-256color"}
    for name in ("NO_COLOR", "MIGPLAN_CONFIG", "FORCE_COLOR"):
        full_env.pop(name, None)
    full_env.update(env or {})
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "migplan", *args],
            cwd=root,
            env=full_env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
    finally:
        os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, b"".join(chunks).decode("utf-8", "replace")


def flagged_project(project, url):
    """dev at a1, with b2 (which drops a1's table: destructive) to apply."""
    linear_project(project, url, "a1")
    assert run(project.root, "apply").exit_code == 0
    project.add_revision("b2", "a1", "op.drop_table('t_a1')", create_table("t_a1")[0])
    return project


# -- renderers: a style callable, the same text without one -----------------------------


def _tag(text: str, role: str) -> str:
    return f"<{role}>{text}</>"


def _untagged(text: str) -> str:
    return re.sub(r"<[a-z]+>|</>", "", text)


def _plan() -> Plan:
    from migplan.core.lint import Finding

    steps = (
        Step("b2", "upgrade", "drop it", ("a1",), "v/b2.py", "", (Finding("destructive", "drop table t", 3),)),
        Step("c3", "upgrade", "index", ("b2",), "v/c3.py", "", (Finding("locking", "create index", 4), Finding("destructive", "drop column", 5))),
        Step("d4", "upgrade", "plain", ("c3",), "v/d4.py"),
    )  # fmt: skip
    return Plan(
        "prod",
        ("a1",),
        ("head",),
        ("d4",),
        steps,
        notes=("apply will refuse: b2 is destructive", "a warning only"),
    )


def test_plan_text_styles_flags_kinds_and_refusals_and_keeps_its_columns():
    plan = _plan()
    plain = plan_text(plan, "sqlite:///x.db")
    styled = plan_text(plan, "sqlite:///x.db", style=_tag)

    assert _untagged(styled) == plain
    assert "<destructive>destructive</>, <locking>locking</>" in styled
    assert "Note: <refusal>apply will refuse: b2 is destructive</>" in styled
    assert "Note: a warning only\n" in styled
    assert "  1. <destructive>destructive</>: drop table t" in styled
    # the columns line up by the text shown, not by the codes around it, and the
    # padding of the last column is still cut
    assert all(not line.endswith(" ") for line in styled.splitlines())


def test_plan_lines_style_flags_and_refusals():
    plan = _plan()
    styled = plan_lines(plan, style=_tag)
    assert _untagged(styled) == plan_lines(plan)
    assert "[<destructive>destructive</>]" in styled
    assert "Note: <refusal>apply will refuse" in styled


def test_without_a_style_nothing_changes():
    plan = _plan()
    assert plan_text(plan) == plan_text(plan, style=lambda text, role: text)


# -- colour: on a terminal only --------------------------------------------------------


def test_plan_on_a_terminal_is_coloured(project, sqlite_url):
    flagged_project(project, sqlite_url)

    code, out = run_tty(project.root, "plan", "dev")

    assert code == 0, out
    assert ANSI.search(out), out
    assert re.search(r"\x1b\[[0-9;]*mdestructive\x1b\[0m", out), out
    assert (
        ANSI.sub("", out).replace("\r\n", "\n")
        == run(project.root, "plan", "dev").stdout
    )


def test_no_color_set_to_anything_turns_colour_off(project, sqlite_url):
    flagged_project(project, sqlite_url)

    for value in ("1", "0", "no"):
        code, out = run_tty(project.root, "plan", "dev", env={"NO_COLOR": value})
        assert code == 0, out
        assert "destructive" in out
        assert not ANSI.search(out), (value, out)
    # an empty NO_COLOR is as good as none (no-color.org)
    code, out = run_tty(project.root, "plan", "dev", env={"NO_COLOR": ""})
    assert ANSI.search(out), out


def test_no_color_option_on_a_terminal(project, sqlite_url):
    flagged_project(project, sqlite_url)
    code, out = run_tty(project.root, "--no-color", "plan", "dev")
    assert code == 0, out
    assert "destructive" in out
    assert not ANSI.search(out), out


def test_the_error_prefix_is_coloured_on_a_terminal(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")

    code, out = run_tty(project.root, "plan", "nope")

    assert code == 1
    assert re.search(r"\x1b\[[0-9;]*mError:\x1b\[0m unknown environment", out), out
    code, out = run_tty(project.root, "plan", "nope", env={"NO_COLOR": "1"})
    assert out.startswith("Error: unknown environment"), out


def test_graph_markers_are_coloured_on_a_terminal(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")
    assert run(project.root, "apply").exit_code == 0

    code, out = run_tty(project.root, "graph")

    assert code == 0, out
    assert re.search(r"\x1b\[[0-9;]*m\[dev: current\]\x1b\[0m", out), out
    assert re.search(r"\x1b\[[0-9;]*m\[dev: target\]\x1b\[0m", out), out
    for fmt in ("mermaid", "dot"):
        code, out = run_tty(project.root, "graph", "--format", fmt)
        assert code == 0, out
        assert not ANSI.search(out), (fmt, out)


def test_documents_are_never_coloured_even_on_a_terminal(project, sqlite_url):
    flagged_project(project, sqlite_url)

    for args in (
        ("plan", "dev", "--json"),
        ("plan", "dev", "--format", "markdown"),
        ("plan", "nope", "--json"),  # its error too, on stderr
        ("--color", "plan", "dev", "--json"),
        ("graph", "--json"),
        ("status", "--json"),
    ):
        code, out = run_tty(project.root, *args)
        assert '"ok"' in out or "destructive" in out, (args, out)
        assert not ANSI.search(out), (args, out)
    code, out = run_tty(project.root, "plan", "dev", "--json")
    json.loads(out)


def test_not_a_terminal_no_colour(project, sqlite_url):
    flagged_project(project, sqlite_url)
    result = run(project.root, "plan", "dev")
    assert "destructive" in result.stdout
    assert not ANSI.search(result.output)
    error = run(project.root, "plan", "nope")
    assert error.stderr.startswith("Error: unknown environment")


def test_color_forces_it_where_there_is_no_terminal(project, sqlite_url):
    flagged_project(project, sqlite_url)
    result = run(project.root, "--color", "plan", "dev")
    assert re.search(r"\x1b\[[0-9;]*mdestructive\x1b\[0m", result.stdout)
    assert ANSI.search(run(project.root, "--color", "plan", "nope").stderr)
    assert not ANSI.search(run(project.root, "--color", "plan", "dev", "--json").stdout)


# -- quiet ---------------------------------------------------------------------------------


def test_quiet_apply_prints_nothing_and_applies(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")

    result = run(project.root, "-q", "apply", "dev")

    assert result.exit_code == 0
    assert (result.stdout, result.stderr) == ("", "")
    assert version_rows(sqlite_url) == ["b2"]
    again = run(project.root, "--quiet", "apply", "dev")
    assert (again.exit_code, again.stdout, again.stderr) == (0, "", "")


def test_quiet_keeps_errors(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", lint="{destructive: refuse}")
    run(project.root, "apply")
    project.add_revision("b2", "a1", "op.drop_table('t_a1')", create_table("t_a1")[0])

    result = run(project.root, "-q", "apply")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: apply refused: b2 is destructive")
    assert version_rows(sqlite_url) == ["a1"]


def test_quiet_failed_migration_says_only_its_error(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    project.add_revision("b2", "a1", "op.execute('SELECT * FROM no_such_table')")

    result = run(project.root, "-q", "apply")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert "no_such_table" in result.stderr
    assert "[1/" not in result.stderr


def test_quiet_rollback(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")
    run(project.root, "apply")

    result = run(project.root, "-q", "rollback", "--steps", "1")

    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert version_rows(sqlite_url) == ["a1"]


def test_quiet_plan_the_exit_code_tells(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")

    result = run(project.root, "-q", "plan", "--detailed-exitcode")

    assert (result.exit_code, result.stdout, result.stderr) == (2, "", "")
    run(project.root, "-q", "apply")
    result = run(project.root, "-q", "plan", "--detailed-exitcode")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_quiet_keeps_what_is_asked_for_in_a_machine_format(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")

    document = run(project.root, "-q", "plan", "--json")
    assert json.loads(document.stdout)["steps"][0]["revision"] == "a1"
    applied = run(project.root, "-q", "apply", "--json")
    assert applied.exit_code == 0
    assert json.loads(applied.stdout)["ok"] is True
    assert applied.stderr == ""
    markdown = run(project.root, "-q", "plan", "--format", "markdown")
    assert markdown.stdout.startswith("#") or "dev" in markdown.stdout
    assert run(project.root, "-q", "graph", "--format", "dot").stdout.startswith(
        "digraph migplan {"
    )
    assert run(project.root, "-q", "graph").stdout == ""


def test_quiet_validate_and_db_upgrade(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")

    validated = run(project.root, "-q", "validate")
    assert (validated.exit_code, validated.stdout, validated.stderr) == (0, "", "")
    upgraded = run(project.root, "-q", "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "Applied" not in upgraded.output
    assert version_rows(sqlite_url) == ["b2"]


def test_quiet_is_in_the_help():
    from click.testing import CliRunner

    from migplan.cli import cli

    out = CliRunner().invoke(cli, ["--help"]).output
    assert "-q, --quiet" in out
    assert "--color / --no-color" in out
