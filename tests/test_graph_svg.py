"""`migplan graph --format svg`: the DOT drawing rendered by Graphviz's dot, and a
one-line error saying how to get it where it is not installed."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest
from conftest import linear_project
from conftest import run

SVG = "{http://www.w3.org/2000/svg}svg"
HOW = (
    "Error: Graphviz's dot is not installed: apt-get install graphviz / "
    "brew install graphviz (or print DOT with --format dot)\n"
)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_is_an_svg_document_with_every_revision(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2", "c3")
    assert run(project.root, "apply").exit_code == 0

    result = run(project.root, "graph", "--format", "svg")

    assert result.exit_code == 0, result.stderr
    root = ET.fromstring(result.stdout)
    assert root.tag == SVG
    texts = " ".join(
        t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")
    )
    for rev in ("a1", "b2", "c3"):
        assert rev in texts
    assert "dev: current" in texts
    assert "\x1b[" not in result.output


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_without_databases_and_uncollapsed(project, sqlite_url):
    revs = [f"r{i}" for i in range(12)]
    linear_project(project, sqlite_url, *revs)

    collapsed = run(project.root, "graph", "--format", "svg", "--no-databases")
    every = run(
        project.root, "graph", "--format", "svg", "--no-databases", "--collapse", "0"
    )

    assert collapsed.exit_code == every.exit_code == 0
    assert "revisions ..." in collapsed.stdout
    assert "marker" not in collapsed.stdout
    assert all(f">{rev} " in every.stdout or f">{rev}<" in every.stdout for rev in revs)


def test_without_dot_one_line_says_how_to_get_it(
    project, sqlite_url, tmp_path, monkeypatch
):
    linear_project(project, sqlite_url, "a1")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    result = run(project.root, "graph", "--format", "svg")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == HOW
    # the other formats need no Graphviz
    assert run(project.root, "graph", "--format", "dot").exit_code == 0


def test_a_dot_that_fails_gives_its_first_line(
    project, sqlite_url, tmp_path, monkeypatch
):
    linear_project(project, sqlite_url, "a1")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"
    fake.write_text(
        "#!/bin/sh\necho 'Error: <stdin>: syntax error in line 1' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))

    result = run(project.root, "graph", "--format", "svg")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Graphviz's dot failed (exit 1): Error: <stdin>: syntax error in line 1\n"
    )


def test_svg_in_the_help(project, sqlite_url):
    linear_project(project, sqlite_url, "a1")
    assert "svg" in run(project.root, "graph", "--help").stdout
