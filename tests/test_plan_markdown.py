"""`plan --format markdown`: the comment a pull request gets, read back with a real
CommonMark parser (markdown-it-py, GFM tables on) and checked by its structure:
the summary paragraph, one heading per environment, the steps table's cells, the
findings and the policy's notes. And --format table|text|json beside it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from conftest import Project
from conftest import create_table
from conftest import linear_project
from conftest import run
from conftest import run_process
from markdown_it import MarkdownIt
from markdown_it.token import Token

from migplan.render.markdown import MARKER


@dataclass
class Section:
    """What an environment's section holds, as rendered text."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    tables: list[list[list[str]]] = field(default_factory=list)


@dataclass
class Document:
    summary: str
    sections: list[Section]
    html: str

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.heading == name)


def _text(inline: Token) -> str:
    """An inline token's text as a reader sees it: escapes resolved, code spans
    and emphasis reduced to their text."""
    parts = []
    for child in inline.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)


def parse(markdown: str) -> Document:
    """Read the document back into its summary and sections, by its tokens."""
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(markdown)
    summary = ""
    sections: list[Section] = []
    row: list[str] | None = None
    table: list[list[str]] | None = None
    in_item = 0
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            assert token.tag == "h3", token
            sections.append(Section(_text(tokens[i + 1])))
        elif token.type == "table_open":
            table = []
        elif token.type == "table_close":
            assert table is not None
            sections[-1].tables.append(table)
            table = None
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            assert table is not None and row is not None
            table.append(row)
        elif token.type == "list_item_open":
            in_item += 1
        elif token.type == "list_item_close":
            in_item -= 1
        elif token.type == "inline":
            if row is not None and tokens[i - 1].type in ("th_open", "td_open"):
                row.append(_text(token))
            elif tokens[i - 1].type == "paragraph_open":
                if not sections and not summary:
                    summary = _text(token)
                elif in_item:
                    sections[-1].items.append(_text(token))
                elif sections:
                    sections[-1].paragraphs.append(_text(token))
    return Document(summary, sections, md.render(markdown))


HEADER = ["#", "Revision", "Direction", "Message", "Flags"]


def drop_project(project: Project, url: str, **env: str) -> Path:
    """a creates t_a and t_b; b drops t_a (destructive), its downgrade empty."""
    up = "\n".join(
        [create_table("t_a")[0], create_table("t_b")[0]],
    )
    project.add_revision("a", None, up, "op.drop_table('t_a')\nop.drop_table('t_b')")
    path = project.add_revision(
        "b", "a", "op.drop_table('t_a')", "pass", message="drop t_a"
    )
    lines = ["default_env: dev", "environments:", "  dev:", f"    url: {url}"]
    lines += ["    target: head"]
    lines += [f"    {key}: {value}" for key, value in env.items()]
    project.write_config("\n".join(lines) + "\n")
    return path


def test_markdown_has_the_steps_table_findings_and_refusals(
    project: Project, sqlite_url: str
) -> None:
    path = drop_project(project, sqlite_url, lint="{destructive: refuse}")
    result = run(project.root, "plan", "dev", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    doc = parse(result.stdout)
    assert doc.summary == (
        "migplan plan dev: 2 steps (2 upgrades), 1 flagged, apply will refuse."
    )
    assert result.stdout.startswith("**migplan plan dev**:")
    assert [s.heading for s in doc.sections] == ["dev"]
    dev = doc.section("dev")
    assert dev.tables == [
        [
            HEADER,
            ["1", "a", "upgrade", "a", ""],
            ["2", "b", "upgrade", "drop t_a", "destructive, irreversible"],
        ]
    ]
    assert "<strong>Lint findings</strong>" in doc.html
    line = next(
        n
        for n, text in enumerate(path.read_text().splitlines(), 1)
        if "drop_table" in text
    )
    relative = f"migrations/versions/{path.name}"
    assert dev.items[:3] == [
        f"Database: {sqlite_url}",
        "Current: base",
        "Target: head → b",
    ]
    assert f"{relative}: irreversible: downgrade() is empty (step 2, upgrade b)" in (
        dev.items
    )
    assert (
        f"{relative}:{line}: destructive: drop table t_a (step 2, upgrade b)"
        in dev.items
    )
    assert dev.items[-1] == (
        "apply will refuse: b is destructive (drop table t_a) and 'dev' refuses it "
        "(lint.destructive: refuse)"
    )
    assert result.stdout.rstrip().endswith(MARKER)
    # what it says is what apply does: refuses, nothing run
    refused = run(project.root, "apply", "dev")
    assert refused.exit_code == 1


def test_markdown_escapes_what_a_message_holds(
    project: Project, sqlite_url: str
) -> None:
    message = "split a|b *now* <b>&amp; `x` $y$ [z](q)"
    project.add_revision("a", None, message=message)
    project.write_config(
        f"environments:\n  dev:\n    url: {sqlite_url}\n    target: head\n"
    )
    result = run(project.root, "plan", "dev", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    doc = parse(result.stdout)
    table = doc.section("dev").tables[0]
    assert table[1] == ["1", "a", "upgrade", message, ""]
    assert "<b>" not in doc.html and "<a " not in doc.html and "<em>" not in doc.html


def test_several_environments_give_a_section_each(
    project: Project, tmp_path: Path
) -> None:
    linear_project(project, f"sqlite:///{tmp_path / 'dev.db'}", "a", "b")
    project.write_config(
        f"""
        default_env: dev
        environments:
          dev:
            url: sqlite:///{tmp_path / "dev.db"}
            target: head
          staging:
            url: sqlite:///{tmp_path / "staging.db"}
            target: a
          prod:
            url: sqlite:///{tmp_path / "prod.db"}
            target: base
        """
    )
    assert run(project.root, "apply", "staging").exit_code == 0
    every = run(project.root, "plan", "--all", "--format", "markdown")
    assert every.exit_code == 0, every.stderr
    doc = parse(every.stdout)
    assert doc.summary == (
        "migplan plan (3 environments): dev: 2 steps (2 upgrades); "
        "staging: up to date; prod: up to date."
    )
    assert [s.heading for s in doc.sections] == ["dev", "staging", "prod"]
    assert [row[1] for row in doc.section("dev").tables[0][1:]] == ["a", "b"]
    staging = doc.section("staging")
    assert staging.tables == []
    assert staging.paragraphs == ["staging is up to date."]
    assert "Current: a" in staging.items
    # named ones, in the order given, each once
    two = run(project.root, "plan", "prod", "dev", "prod", "--format", "markdown")
    assert two.exit_code == 0, two.stderr
    assert [s.heading for s in parse(two.stdout).sections] == ["prod", "dev"]
    # exactly one comment: one marker
    assert two.stdout.count(MARKER) == 1
    pending = run(
        project.root, "plan", "--all", "--format", "markdown", "--detailed-exitcode"
    )
    assert pending.exit_code == 2
    assert pending.stdout == every.stdout


def test_an_environment_out_of_reach_gives_its_error_and_exit_1(
    project: Project, sqlite_url: str
) -> None:
    linear_project(project, sqlite_url, "a")
    # nothing listens on port 1: refused at once; the password never shown
    unreachable = "postgresql://app:s3cret@127.0.0.1:1/prod"
    project.write_config(
        f"""
        environments:
          dev:
            url: {sqlite_url}
            target: head
          prod:
            url: {unreachable}
            target: head
          later:
            url: ${{LATER_DATABASE_URL}}
            target: head
        """
    )
    result = run_process(
        project.root,
        "plan",
        "--all",
        "--format",
        "markdown",
        env={"PGCONNECT_TIMEOUT": "5"},
    )
    assert result.returncode == 1, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    doc = parse(result.stdout)
    assert doc.summary == (
        "migplan plan (3 environments): dev: 1 step (1 upgrade); "
        "prod: could not be planned; later: could not be planned."
    )
    assert [s.heading for s in doc.sections] == ["dev", "prod", "later"]
    assert doc.section("dev").tables[0][1][:3] == ["1", "a", "upgrade"]
    prod = doc.section("prod")
    assert prod.items == ["Database: postgresql://app:***@127.0.0.1:1/prod"]
    assert prod.paragraphs[0].startswith("Could not be planned: ")
    later = doc.section("later")
    assert later.paragraphs == [
        "Could not be planned: migplan.yaml:9: environments.later.url: environment variable "
        "${LATER_DATABASE_URL} is not set"
    ]
    errors = result.stderr.splitlines()
    assert errors[0].startswith("Error: prod: ")
    assert errors[-2:] == [
        "Error: later: migplan.yaml:9: environments.later.url: environment variable "
        "${LATER_DATABASE_URL} is not set",
        "Error: 2 of 3 environments could not be planned: prod, later",
    ]


def test_one_environment_out_of_reach(project: Project, sqlite_url: str) -> None:
    linear_project(project, sqlite_url, "a")
    project.write_config(
        "environments:\n  dev:\n    url: ${DEV_URL}\n    target: head\n"
    )
    result = run(project.root, "plan", "dev", "--format", "markdown")
    assert result.exit_code == 1
    assert parse(result.stdout).section("dev").paragraphs == [
        "Could not be planned: migplan.yaml:3: environments.dev.url: environment variable "
        "${DEV_URL} is not set"
    ]
    assert result.stderr == (
        "Error: migplan.yaml:3: environments.dev.url: environment variable ${DEV_URL} "
        "is not set\n"
    )
    # a name that is not an environment fails before anything is planned
    typo = run(project.root, "plan", "dev", "dve", "--format", "markdown")
    assert typo.exit_code == 1
    assert typo.stdout == ""
    assert typo.stderr.startswith("Error: unknown environment 'dve'")


def test_locking_flags_on_postgresql(project: Project, pg_url: str) -> None:
    up, down = create_table("t_a")
    project.add_revision("a", None, up, down)
    project.add_revision(
        "b",
        "a",
        "op.add_column('t_a', sa.Column('n', sa.Integer))\n"
        "op.create_index('ix_n', 't_a', ['n'])",
        "op.drop_index('ix_n', 't_a')\nop.drop_column('t_a', 'n')",
        message="index n",
    )
    project.write_config(
        f"environments:\n  dev:\n    url: {pg_url}\n    target: head\n"
    )
    result = run(project.root, "plan", "dev", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    table = parse(result.stdout).section("dev").tables[0]
    assert [row[1:] for row in table[1:]] == [
        ["a", "upgrade", "a", ""],
        ["b", "upgrade", "index n", "locking"],
    ]


def test_fleet_in_markdown(project: Project, tmp_path: Path) -> None:
    linear_project(project, f"sqlite:///{tmp_path / 'one.db'}", "a", "b")
    project.write_config(
        f"""
        environments:
          tenants:
            databases:
              - sqlite:///{tmp_path / "one.db"}
              - sqlite:///{tmp_path / "two.db"}
            target: head
        """
    )
    result = run(project.root, "plan", "tenants", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    doc = parse(result.stdout)
    assert doc.summary == "migplan plan tenants: 2 databases, 2 to migrate."
    tenants = doc.section("tenants")
    assert tenants.items[:2] == ["Databases: 2", "Target: head"]
    assert tenants.paragraphs[0].startswith("2 databases at base (")
    assert [row[1] for row in tenants.tables[0][1:]] == ["a", "b"]


def test_formats(project: Project, sqlite_url: str) -> None:
    drop_project(project, sqlite_url)
    table = run(project.root, "plan", "dev")
    assert table.exit_code == 0
    # the default is the table, as it always was
    assert run(project.root, "plan", "dev", "--format", "table").stdout == table.stdout
    assert table.stdout.startswith("Environment: dev (")
    assert "  #  Revision  Direction  Message   Flags" in table.stdout
    text = run(project.root, "plan", "dev", "--format", "text")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0] == f"dev ({sqlite_url}): base -> b (target head)"
    assert lines[1:3] == [
        "1. upgrade a (a)",
        "2. upgrade b (drop t_a) [destructive, irreversible]",
    ]
    assert lines[-1] == "Plan: 2 steps (2 upgrades)."
    as_json = run(project.root, "plan", "dev", "--json")
    assert run(project.root, "plan", "dev", "--format", "json").stdout == as_json.stdout
    assert json.loads(as_json.stdout)["environment"] == "dev"
    both = run(project.root, "plan", "dev", "--json", "--format", "markdown")
    assert both.exit_code == 2
    assert "--json is --format json: give one, not --format markdown" in both.stderr
    project.write_config(
        f"environments:\n  dev:\n    url: {sqlite_url}\n    target: head\n"
        f"  dev2:\n    url: {sqlite_url}\n    target: a\n"
    )
    many = run(project.root, "plan", "dev", "dev2", "--json")
    assert many.exit_code == 2
    assert "--json plans one environment: run it once for each" in many.stderr
    both = run(project.root, "plan", "dev", "--all")
    assert both.exit_code == 2
    assert "give environment names or --all, not both" in both.stderr
    sections = run(project.root, "plan", "dev", "dev2")
    assert sections.exit_code == 0
    assert sections.stdout.startswith(
        table.stdout.rstrip("\n") + "\n\nEnvironment: dev2 ("
    )
