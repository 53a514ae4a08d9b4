"""migplan.yaml through the CLI: finding it, reading it, checking it, ${VAR}, secrets.

Every refusal is one line on stderr, exit 1, no traceback, and leaves the databases
as they were: the SQLite files of a refused command are never created.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import create_table
from conftest import run
from conftest import tables
from conftest import version_rows

CONFIG = """\
# migplan.yaml for the tests
default_env: dev
environments:
  dev:
    url: sqlite:///dev.db
    target: head
  prod:
    url: sqlite:///prod.db
    target: head
    protected: true
    on_failure: rollback
    rollback:
      max_steps: 1
"""

KNOWN_ENV_KEYS = (
    "url, target, protected, on_failure, rollback, lock_timeout, databases, "
    "databases_from, schemas, rollout, on_modified, lint, requires, binds, ddl"
)
KNOWN_TOP_KEYS = (
    "migrations, app, metadata, version_table, version_table_schema, audit_table, "
    "default_env, environments"
)
NO_CONFIG = (
    "no such file (create one with 'migplan db init', or pass -c PATH or set "
    "$MIGPLAN_CONFIG)"
)
PG_SECRET_URL = "postgresql://app:s3cr3t@127.0.0.1:1/nope"
PG_SHOWN_URL = "postgresql://app:***@127.0.0.1:1/nope"


@pytest.fixture(autouse=True)
def _no_config_from_outside(monkeypatch):
    """Tests choose their config; a $MIGPLAN_CONFIG of the shell must not leak in."""
    monkeypatch.delenv("MIGPLAN_CONFIG", raising=False)
    for name in ("PROD_DATABASE_URL", "PROD_PASSWORD", "DEV_URL", "BAD_URL"):
        monkeypatch.delenv(name, raising=False)


def revisions(project, *revs):
    """rev[0] -> rev[1] -> ..., each creating table t_<rev>."""
    down = None
    for rev in revs:
        project.add_revision(rev, down, *create_table(f"t_{rev}"))
        down = rev
    return project


def databases(root: Path) -> list[str]:
    """The SQLite files under root."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.db"))


def assert_refused(result, message: str, *secrets: str) -> None:
    """Exit 1 with exactly `message` as one line on stderr, nothing else shown."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    for secret in secrets:
        assert secret not in output
    assert result.stderr == f"Error: {message}\n"
    assert result.stdout == ""
    assert result.exit_code == 1


def assert_database_unreachable(result, secret: str) -> None:
    """Exit 1 with one line on stderr (the driver's words vary) without `secret`."""
    output = result.stdout + result.stderr
    assert secret not in output
    assert "Traceback" not in output
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1
    assert result.exit_code == 1


# -- finding migplan.yaml ---------------------------------------------------------


def test_config_is_read_from_the_current_folder(project):
    revisions(project, "a1")
    project.write_config(CONFIG)
    result = run(project.root, "plan", "dev", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == "dev"


@pytest.mark.parametrize("option", ["-c", "--config"])
def test_config_option_names_the_file(project, option):
    revisions(project, "a1")
    project.write_config(CONFIG)
    (project.root / "migplan.yaml").rename(project.root / "deploy.yaml")
    result = run(project.root, option, "deploy.yaml", "plan", "prod", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == "prod"


def test_config_option_may_name_the_folder(project, tmp_path):
    revisions(project, "a1")
    project.write_config(CONFIG)
    result = run(tmp_path, "-c", "proj", "plan", "dev", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == "dev"


def test_config_from_the_environment_variable(project, tmp_path, monkeypatch):
    revisions(project, "a1")
    project.write_config(CONFIG)
    monkeypatch.setenv("MIGPLAN_CONFIG", str(project.root / "migplan.yaml"))
    result = run(tmp_path, "plan", "dev", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == "dev"


def test_config_option_wins_over_the_environment_variable(project, monkeypatch):
    revisions(project, "a1")
    project.write_config(CONFIG)
    monkeypatch.setenv("MIGPLAN_CONFIG", "missing.yaml")
    result = run(project.root, "-c", "migplan.yaml", "plan", "dev", "--json")
    assert result.exit_code == 0, result.stderr


def test_missing_config_file(project):
    result = run(project.root, "plan", "dev")
    assert_refused(result, f"migplan.yaml: {NO_CONFIG}")


def test_missing_config_file_named_by_the_option(project):
    project.write_config(CONFIG)
    result = run(project.root, "-c", "deploy.yaml", "apply", "dev")
    assert_refused(result, f"deploy.yaml: {NO_CONFIG}")
    assert databases(project.root) == []


def test_missing_config_file_named_by_the_environment_variable(project, monkeypatch):
    project.write_config(CONFIG)
    monkeypatch.setenv("MIGPLAN_CONFIG", "deploy.yaml")
    result = run(project.root, "apply", "dev")
    assert_refused(result, f"deploy.yaml: {NO_CONFIG}")
    assert databases(project.root) == []


def test_relative_paths_resolve_against_the_config_folder(project, tmp_path):
    revisions(project, "a1", "b2")
    (project.root / "migrations").rename(project.root / "db_migrations")
    (project.root / "data").mkdir()
    project.write_config(
        """
        migrations: db_migrations
        environments:
          dev:
            url: sqlite:///data/dev.db
        """
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = run(elsewhere, "-c", "../proj/migplan.yaml", "apply", "dev")

    assert result.exit_code == 0, result.stderr
    database = (project.root / "data" / "dev.db").resolve()
    assert f"Environment: dev (sqlite:///{database})" in result.stdout
    assert version_rows(f"sqlite:///{database}") == ["b2"]
    assert databases(tmp_path) == ["proj/data/dev.db"]
    assert list(elsewhere.iterdir()) == []


# -- reading it: YAML ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "environments:\n  dev:\n    url: sqlite:///dev.db\n   target: head\n",
            "migplan.yaml:4:4: expected <block end>, but found '<block mapping start>'",
        ),
        (
            "environments:\n  dev:\n    url: sqlite:///dev.db\n\ttarget: head\n",
            "migplan.yaml:4:1: found character '\\t' that cannot start any token",
        ),
        (
            "environments:\n  dev:\n    url: sqlite:///dev.db\n    target: [a1, b2\n",
            "migplan.yaml:5:1: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "environments:\n  dev:\n    url: 'sqlite:///dev.db\n",
            "migplan.yaml:4:1: found unexpected end of stream",
        ),
    ],
    ids=["indentation", "tab", "unclosed-list", "unclosed-quote"],
)
def test_malformed_yaml_names_line_and_column(project, text, message):
    project.write_config(text)
    result = run(project.root, "apply", "dev")
    assert_refused(result, message)
    assert databases(project.root) == []


@pytest.mark.parametrize("command", [("plan", "dev"), ("validate",)])
def test_only_safe_yaml_is_read(project, command):
    project.write_config(
        """
        environments:
          dev:
            url: !!python/object/apply:os.system ["echo hacked > hacked.txt"]
        """
    )
    result = run(project.root, *command)
    assert_refused(
        result,
        "migplan.yaml:3:10: tag '!!python/object/apply:os.system' is not allowed: "
        "migplan.yaml is read as plain (safe) YAML",
    )
    assert "hacked" not in result.stdout
    assert not (project.root / "hacked.txt").exists()
    assert not (Path.cwd() / "hacked.txt").exists()


def test_empty_file(project):
    project.write_config("")
    assert_refused(run(project.root, "plan"), "migplan.yaml:1: the file is empty")


def test_file_of_comments_only_is_empty(project):
    project.write_config("# environments: to do\n")
    assert_refused(run(project.root, "plan"), "migplan.yaml:1: the file is empty")


def test_top_level_list(project):
    project.write_config("- dev\n- prod\n")
    result = run(project.root, "plan")
    assert_refused(
        result, "migplan.yaml:1: expected a mapping at the top level, got a list"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    target: head\n    protected",
            "    target: head\n    url: sqlite:///other.db\n    protected",
            "migplan.yaml:10: duplicate key 'url'",
        ),
        (
            "  prod:\n",
            "  dev:\n",
            "migplan.yaml:7: duplicate key 'dev'",
        ),
    ],
    ids=["key", "environment"],
)
def test_duplicate_keys_are_refused(project, old, new, message):
    project.write_config(CONFIG.replace(old, new))
    result = run(project.root, "apply", "dev")
    assert_refused(result, message)
    assert databases(project.root) == []


# -- checking it: the schema ----------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "protected: true",
            "protectd: true",
            f"migplan.yaml:10: environments.prod.protectd: unknown key 'protectd' "
            f"(known: {KNOWN_ENV_KEYS}); did you mean 'protected'?",
        ),
        (
            "default_env: dev",
            "migratons: db\ndefault_env: dev",
            f"migplan.yaml:2: migratons: unknown key 'migratons' "
            f"(known: {KNOWN_TOP_KEYS}); did you mean 'migrations'?",
        ),
        (
            "      max_steps: 1",
            "      max_steps: 1\n      verbose: true",
            "migplan.yaml:14: environments.prod.rollback.verbose: unknown key "
            "'verbose' (known: allowed, max_steps, allow_destructive)",
        ),
        (
            "protected: true",
            'protected: "yes"',
            "migplan.yaml:10: environments.prod.protected: expected true or false, "
            "got a string",
        ),
        (
            "on_failure: rollback",
            "on_failure: explode",
            "migplan.yaml:11: environments.prod.on_failure: 'explode' is not one of "
            "'stop', 'rollback'",
        ),
        (
            "max_steps: 1",
            "max_steps: -1",
            "migplan.yaml:13: environments.prod.rollback.max_steps: -1 is less than "
            "the minimum of 0",
        ),
        (
            "max_steps: 1",
            "max_steps: one",
            "migplan.yaml:13: environments.prod.rollback.max_steps: expected an "
            "integer or null, got a string",
        ),
        (
            "    on_failure",
            "    lock_timeout: soon\n    on_failure",
            "migplan.yaml:11: environments.prod.lock_timeout: expected a number, "
            "got a string",
        ),
        (
            "    target: head\n    protected",
            "    target:\n      revision: a1\n    protected",
            "migplan.yaml:10: environments.prod.target: expected a revision or a list "
            "of revisions, got a mapping",
        ),
        (
            "    target: head\n    protected",
            "    target: yes\n    protected",
            "migplan.yaml:9: environments.prod.target: expected a revision or a list "
            "of revisions, got a boolean",
        ),
        (
            "    target: head\n    protected",
            "    target: a1 b2\n    protected",
            "migplan.yaml:9: environments.prod.target: 'a1 b2' is not valid here: a "
            "revision has no spaces; give several revisions as a list",
        ),
        (
            "    target: head\n    protected",
            "    target: [a1, {b: 2}]\n    protected",
            "migplan.yaml:9: environments.prod.target[1]: expected a string, "
            "got a mapping",
        ),
        (
            "    target: head\n    protected",
            '    target: ""\n    protected',
            "migplan.yaml:9: environments.prod.target: '' should be non-empty",
        ),
        (
            "    url: sqlite:///prod.db\n",
            "",
            "migplan.yaml:7: environments.prod: 'url' is a required property (or 'databases' or 'databases_from' for a fleet)",
        ),
        (
            "    url: sqlite:///prod.db",
            "    url: 5432",
            "migplan.yaml:8: environments.prod.url: expected a string, got an integer",
        ),
        (
            "  prod:",
            "  prod env:",
            "migplan.yaml:7: environments: 'prod env' is not a valid environment "
            "name (letters, digits, '_', '-' and '.')",
        ),
        (
            "default_env: dev",
            "default_env: dev\napp: 'my app'",
            "migplan.yaml:3: app: 'my app' is not valid here: expected \"module:attr\" "
            'or "module:factory()"',
        ),
        (
            "default_env: dev",
            "default_env: prd",
            "migplan.yaml:2: default_env: unknown environment 'prd' (known: dev, prod); "
            "did you mean 'prod'?",
        ),
    ],
    ids=[
        "misspelt-key",
        "misspelt-top-level-key",
        "unknown-rollback-key",
        "protected-string",
        "on-failure-enum",
        "negative-max-steps",
        "max-steps-string",
        "lock-timeout-string",
        "target-mapping",
        "target-boolean",
        "target-with-space",
        "target-list-item",
        "target-empty",
        "missing-url",
        "url-integer",
        "environment-name",
        "app-pattern",
        "unknown-default-env",
    ],
)
def test_schema_errors_name_line_and_key_path(project, old, new, message):
    assert old in CONFIG
    project.write_config(CONFIG.replace(old, new, 1))
    result = run(project.root, "apply", "prod", "--yes")
    assert_refused(result, message)
    assert databases(project.root) == []


def test_missing_environments(project):
    project.write_config("default_env: dev\n")
    result = run(project.root, "plan")
    assert_refused(result, "migplan.yaml:1: 'environments' is a required property")


def test_no_environments(project):
    project.write_config("environments: {}\n")
    result = run(project.root, "plan")
    assert_refused(result, "migplan.yaml:1: environments: {} should be non-empty")


def test_environment_without_settings(project):
    project.write_config("environments:\n  dev:\n")
    result = run(project.root, "plan")
    assert_refused(
        result, "migplan.yaml:2: environments.dev: expected a mapping, got null"
    )


def test_config_error_leaves_an_applied_database_alone(project, sqlite_url):
    revisions(project, "a1", "b2")
    project.write_config(
        f"environments:\n  dev:\n    url: {sqlite_url}\n    target: a1\n"
    )
    assert run(project.root, "apply", "dev").exit_code == 0
    before = tables(sqlite_url)
    project.write_config(
        f"environments:\n  dev:\n    url: {sqlite_url}\n    target: b2\n"
        "    on_failure: explode\n"
    )
    result = run(project.root, "apply", "dev")
    assert_refused(
        result,
        "migplan.yaml:5: environments.dev.on_failure: 'explode' is not one of "
        "'stop', 'rollback'",
    )
    assert version_rows(sqlite_url) == ["a1"]
    assert tables(sqlite_url) == before
    assert "t_b2" not in before


# -- environments ----------------------------------------------------------------


def test_unknown_environment_lists_the_known_ones(project):
    project.write_config(CONFIG)
    result = run(project.root, "apply", "prd", "--yes")
    assert_refused(
        result, "unknown environment 'prd' (known: dev, prod); did you mean 'prod'?"
    )
    assert databases(project.root) == []


def test_unknown_environment_without_a_close_name(project):
    project.write_config(CONFIG)
    result = run(project.root, "plan", "staging")
    assert_refused(result, "unknown environment 'staging' (known: dev, prod)")


def test_no_environment_and_no_default(project):
    project.write_config(CONFIG.replace("default_env: dev\n", ""))
    result = run(project.root, "plan")
    assert_refused(
        result,
        "migplan.yaml: no environment given and no default_env set (known: dev, prod)",
    )


@pytest.mark.parametrize("name", ["0123", "yes", "null"])
def test_environment_names_are_the_text_written(project, name):
    revisions(project, "a1")
    project.write_config(f"environments:\n  {name}:\n    url: sqlite:///dev.db\n")
    result = run(project.root, "plan", name, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["environment"] == name


# -- ${VAR} ---------------------------------------------------------------------------

VAR_CONFIG = """\
default_env: dev
environments:
  dev:
    url: ${DEV_URL:-sqlite:///from_default.db}
  prod:
    url: ${PROD_DATABASE_URL}
    protected: true
"""


def test_unset_variable_is_named_with_the_url_line(project):
    revisions(project, "a1")
    project.write_config(VAR_CONFIG)
    result = run(project.root, "apply", "prod", "--yes")
    assert_refused(
        result,
        "migplan.yaml:6: environments.prod.url: environment variable "
        "${PROD_DATABASE_URL} is not set",
    )
    assert databases(project.root) == []


def test_only_the_environment_in_use_is_expanded(project):
    revisions(project, "a1")
    project.write_config(VAR_CONFIG)
    result = run(project.root, "plan", "dev", "--json")
    assert result.exit_code == 0, result.stderr
    assert [s["revision"] for s in json.loads(result.stdout)["steps"]] == ["a1"]


def test_default_is_used_when_the_variable_is_unset(project):
    revisions(project, "a1")
    project.write_config(VAR_CONFIG)
    result = run(project.root, "apply", "dev")
    assert result.exit_code == 0, result.stderr
    database = project.root / "from_default.db"
    assert f"(sqlite:///{database})" in result.stdout
    assert version_rows(f"sqlite:///{database}") == ["a1"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "from_default.db"), ("sqlite:///set.db", "set.db")],
    ids=["empty", "set"],
)
def test_a_set_variable_wins_over_the_default(project, monkeypatch, value, expected):
    revisions(project, "a1")
    project.write_config(VAR_CONFIG)
    monkeypatch.setenv("DEV_URL", value)
    result = run(project.root, "plan", "dev")
    assert result.exit_code == 0, result.stderr
    assert f"(sqlite:///{project.root / expected})" in result.stdout


def test_status_keeps_an_unset_variable_in_its_row(project):
    revisions(project, "a1")
    project.write_config(VAR_CONFIG)
    result = run(project.root, "status", "--json")
    assert "Traceback" not in result.stdout + result.stderr
    rows = {
        row["environment"]: row for row in json.loads(result.stdout)["environments"]
    }
    assert rows["dev"]["state"] == "pending"
    assert rows["prod"]["error"] == (
        "migplan.yaml:6: environments.prod.url: environment variable "
        "${PROD_DATABASE_URL} is not set"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "${DEV_URL:-${OTHER_URL}}",
            "migplan.yaml:3: environments.dev.url: nested ${...} is not supported",
        ),
        (
            "${DEV URL}",
            "migplan.yaml:3: environments.dev.url: '${DEV URL}' is not a variable "
            "reference; write ${NAME} or ${NAME:-default}",
        ),
        (
            "$DEV_URL",
            "migplan.yaml:3: environments.dev.url: not a valid database URL",
        ),
    ],
    ids=["nested", "space", "no-braces"],
)
def test_bad_variable_references(project, url, message):
    project.write_config(f"environments:\n  dev:\n    url: {url}\n")
    result = run(project.root, "apply", "dev")
    assert_refused(result, message)


# -- revisions YAML would read as something else --------------------------------------


@pytest.mark.parametrize("rev", ["0123", "1e5", "1.10", "0x1F", "1_000"])
def test_target_is_the_revision_text_written(project, sqlite_url, rev):
    revisions(project, "a1", rev, "z9")
    project.write_config(
        f"environments:\n  dev:\n    url: {sqlite_url}\n    target: {rev}\n"
    )

    planned = run(project.root, "plan", "dev", "--json")
    assert planned.exit_code == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["target"] == [rev]
    assert [s["revision"] for s in plan["steps"]] == ["a1", rev]

    assert run(project.root, "validate").exit_code == 0
    applied = run(project.root, "apply", "dev")
    assert applied.exit_code == 0, applied.stderr
    assert version_rows(sqlite_url) == [rev]


def test_date_target_is_the_text_written(project):
    revisions(project, "a1")
    project.write_config(
        "environments:\n  dev:\n    url: sqlite:///dev.db\n    target: 2024-01-01\n"
    )
    result = run(project.root, "validate")
    assert_refused(
        result,
        "migplan.yaml:4: environments.dev.target: unknown revision '2024-01-01' in "
        "target '2024-01-01'",
    )


def test_list_target_items_are_the_text_written(project):
    revisions(project, "a1")
    project.add_revision("0123", "a1", branch_labels="left")
    project.add_revision("1.10", "a1", branch_labels="right")
    project.write_config(
        "environments:\n  dev:\n    url: sqlite:///dev.db\n    target: [0123, 1.10]\n"
    )
    result = run(project.root, "plan", "dev", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["target"] == ["0123", "1.10"]


# -- passwords ------------------------------------------------------------------------

SECRET_CONFIG = f"""\
default_env: dev
environments:
  dev:
    url: sqlite:///dev.db
  prod:
    url: {PG_SECRET_URL}
    protected: true
"""


@pytest.mark.parametrize(
    "command",
    [
        ("plan", "prod"),
        ("plan", "prod", "--json"),
        ("apply", "prod", "--yes"),
        ("rollback", "prod", "--steps", "1", "--yes"),
        ("db", "current", "-e", "prod"),
    ],
    ids=["plan", "plan-json", "apply", "rollback", "db-current"],
)
def test_password_is_never_shown(project, command):
    revisions(project, "a1")
    project.write_config(SECRET_CONFIG)
    result = run(project.root, *command)
    assert_database_unreachable(result, "s3cr3t")
    if command[0] != "db":
        assert result.stderr.startswith(f"Error: {PG_SHOWN_URL}: cannot connect: ")


def test_validate_env_does_not_show_the_password(project):
    revisions(project, "a1")
    project.write_config(SECRET_CONFIG)
    result = run(project.root, "validate", "-e", "prod")
    assert_database_unreachable(result, "s3cr3t")
    assert result.stderr.startswith(
        f"Error: environment 'prod': {PG_SHOWN_URL}: cannot connect: "
    )


def test_status_hides_the_password(project):
    revisions(project, "a1")
    project.write_config(SECRET_CONFIG)
    text = run(project.root, "status")
    as_json = run(project.root, "status", "--json")
    for result in (text, as_json):
        assert "s3cr3t" not in result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
    prod = next(line for line in text.stdout.splitlines() if line.startswith("prod"))
    assert prod.split()[:3] == ["prod", PG_SHOWN_URL, "?"]
    rows = {
        row["environment"]: row for row in json.loads(as_json.stdout)["environments"]
    }
    assert rows["prod"]["url"] == PG_SHOWN_URL
    assert rows["prod"]["error"].startswith(f"{PG_SHOWN_URL}: cannot connect: ")


def test_config_error_beside_a_password_does_not_show_it(project):
    project.write_config(SECRET_CONFIG.replace("protected: true", "protectd: true"))
    result = run(project.root, "plan", "prod")
    assert_refused(
        result,
        f"migplan.yaml:7: environments.prod.protectd: unknown key 'protectd' "
        f"(known: {KNOWN_ENV_KEYS}); did you mean 'protected'?",
        "s3cr3t",
    )


@pytest.mark.parametrize(
    ("url", "variable", "value"),
    [
        (
            "postgresql://app:${PROD_PASSWORD}@127.0.0.1:1/nope",
            "PROD_PASSWORD",
            "hunter2-from-env",
        ),
        (
            "${PROD_DATABASE_URL}",
            "PROD_DATABASE_URL",
            "postgresql://app:hunter2-from-env@127.0.0.1:1/nope",
        ),
    ],
    ids=["password", "whole-url"],
)
def test_password_from_a_variable_is_never_shown(
    project, monkeypatch, url, variable, value
):
    revisions(project, "a1")
    project.write_config(SECRET_CONFIG.replace(PG_SECRET_URL, url))
    monkeypatch.setenv(variable, value)
    for command in (("plan", "prod"), ("apply", "prod", "--yes")):
        result = run(project.root, *command)
        assert_database_unreachable(result, "hunter2-from-env")
        assert result.stderr.startswith(f"Error: {PG_SHOWN_URL}: cannot connect: ")
    status = run(project.root, "status")
    assert "hunter2-from-env" not in status.stdout + status.stderr
    assert PG_SHOWN_URL in status.stdout


def test_malformed_url_from_a_variable_is_not_echoed(project, monkeypatch):
    project.write_config(SECRET_CONFIG.replace(PG_SECRET_URL, "${BAD_URL}"))
    monkeypatch.setenv("BAD_URL", "postgresql//app:m4lf0rmed-pw@127.0.0.1:1/nope")
    result = run(project.root, "plan", "prod")
    assert_refused(
        result,
        "migplan.yaml:6: environments.prod.url: not a valid database URL "
        "(check the value of ${BAD_URL})",
        "m4lf0rmed-pw",
    )


# -- migplan validate -------------------------------------------------------------------


def test_validate_accepts_a_valid_file(project):
    revisions(project, "a1", "b2")
    project.write_config(
        CONFIG.replace(
            "    target: head\n    protected", "    target: a1\n    protected"
        )
    )
    result = run(project.root, "validate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "migplan.yaml is valid; every target resolves.\n"
    assert result.stderr == ""
    assert databases(project.root) == []


def test_validate_lists_every_error_in_file_order(project):
    revisions(project, "a1")
    project.write_config(
        """
        environments:
          dev:
            url: sqlite:///dev.db
            protectd: true
            tagret: head
          prod:
            url: sqlite:///prod.db
            url: sqlite:///other.db
            on_failure: explode
            rollback:
              max_steps: -1
            lock_timeout: soon
        """
    )
    result = run(project.root, "validate")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"Error: migplan.yaml:4: environments.dev.protectd: unknown key 'protectd' "
        f"(known: {KNOWN_ENV_KEYS}); did you mean 'protected'?",
        f"Error: migplan.yaml:5: environments.dev.tagret: unknown key 'tagret' "
        f"(known: {KNOWN_ENV_KEYS}); did you mean 'target'?",
        "Error: migplan.yaml:8: duplicate key 'url'",
        "Error: migplan.yaml:9: environments.prod.on_failure: 'explode' is not one of "
        "'stop', 'rollback'",
        "Error: migplan.yaml:11: environments.prod.rollback.max_steps: -1 is less "
        "than the minimum of 0",
        "Error: migplan.yaml:12: environments.prod.lock_timeout: expected a number, "
        "got a string",
    ]
    assert databases(project.root) == []


def test_validate_reports_targets_that_do_not_resolve(project):
    revisions(project, "a1", "b2")
    project.write_config(
        """
        environments:
          dev:
            url: sqlite:///dev.db
            target: zz9
          staging:
            url: sqlite:///staging.db
            target: b2
          prod:
            url: sqlite:///prod.db
            target: [a1, b3]
        """
    )
    result = run(project.root, "validate")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: migplan.yaml:4: environments.dev.target: unknown revision 'zz9' in "
        "target 'zz9'",
        "Error: migplan.yaml:10: environments.prod.target[1]: unknown revision 'b3' "
        "in target 'b3'; did you mean 'b2'?",
    ]
    assert databases(project.root) == []


def test_validate_checks_a_list_target_as_a_whole(project):
    revisions(project, "a1", "b2")
    project.write_config(
        "environments:\n  dev:\n    url: sqlite:///dev.db\n    target: [a1, b2]\n"
    )
    result = run(project.root, "validate")
    assert_refused(
        result,
        "migplan.yaml:4: environments.dev.target: target 'a1 b2': Requested "
        "revision b2 overlaps with other requested revisions a1",
    )


def test_validate_does_not_expand_variables(project):
    revisions(project, "a1")
    project.write_config(VAR_CONFIG)
    result = run(project.root, "validate")
    assert result.exit_code == 0, result.stderr
    assert databases(project.root) == []


def test_validate_env_expands_that_environment(project):
    revisions(project, "a1")
    project.write_config(VAR_CONFIG)
    result = run(project.root, "validate", "-e", "prod")
    assert_refused(
        result,
        "migplan.yaml:6: environments.prod.url: environment variable "
        "${PROD_DATABASE_URL} is not set",
    )


def test_validate_env_reads_the_database_without_creating_it(project):
    revisions(project, "a1")
    project.write_config(VAR_CONFIG)
    result = run(project.root, "validate", "-e", "dev")
    assert result.exit_code == 0, result.stderr
    assert databases(project.root) == []


def test_validate_env_must_be_known(project):
    revisions(project, "a1")
    project.write_config(CONFIG)
    result = run(project.root, "validate", "-e", "prd")
    assert_refused(
        result, "unknown environment 'prd' (known: dev, prod); did you mean 'prod'?"
    )


def test_validate_refuses_a_missing_file(project):
    assert_refused(run(project.root, "validate"), f"migplan.yaml: {NO_CONFIG}")


def test_a_config_checked_before_is_refused_with_the_same_line(project):
    # the second run takes migplan.yaml's data and lines from the config cache,
    # without YAML: the same refusal, naming the same line
    revisions(project, "a1")
    project.write_config(VAR_CONFIG)
    first = run(project.root, "apply", "prod", "--yes")
    second = run(project.root, "apply", "prod", "--yes")
    assert_refused(
        second,
        "migplan.yaml:6: environments.prod.url: environment variable "
        "${PROD_DATABASE_URL} is not set",
    )
    assert second.stderr == first.stderr
    assert databases(project.root) == []


def test_the_cached_lines_locate_every_key_as_yaml_does(tmp_path):
    from migplan.project.document import read_document
    from migplan.project.plain import KnownDocument

    file = tmp_path / "migplan.yaml"
    file.write_text(
        "# comment first\n\n"
        + CONFIG
        + "  stage:\n    url: sqlite:///s.db\n    target: [a1,\n      b2]\n"
        + "    databases:\n      - name: one\n        url: sqlite:///one.db\n"
    )
    document = read_document(file)
    lines = document.lines()
    cached = KnownDocument.from_cache(
        file,
        json.loads(json.dumps(KnownDocument(file, document.data, lines).to_cache())),
    )
    assert cached is not None and cached.data == document.data
    paths = [list(p) for p in lines] + [
        ["environments", "stage", "target", 1],
        ["environments", "stage", "databases", 0, "url"],
        ["environments", "nowhere", "url"],
        ["environments", "prod", "rollback", "missing"],
        ["absent"],
    ]
    for path in paths:
        path = [int(p) if isinstance(p, str) and p.isdigit() else p for p in path]
        for at_key in (False, True):
            assert cached.locate(path, at_key) == document.locate(path, at_key), path


def test_a_password_written_in_migplan_yaml_is_not_copied_into_the_cache(project):
    from migplan.project import cache

    revisions(project, "a1")
    project.write_config(
        CONFIG + "  other:\n    url: postgresql://app:s3cret-pw@127.0.0.1:1/app\n"
    )
    for _ in range(2):
        result = run(project.root, "plan", "dev")
        assert result.exit_code == 0, result.stderr
    cached = [p.read_text() for p in cache.folder().glob("config-*.json")]
    assert cached and not any("s3cret-pw" in text for text in cached)
