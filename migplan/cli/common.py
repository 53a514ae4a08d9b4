"""What several commands share: the database(s) they work on, confirmation,
progress on the terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import TypeVar

import click

from migplan.cli import terminal
from migplan.errors import MigplanError
from migplan.errors import Refused

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.results import ApplyResult
    from migplan.core.results import Progress
    from migplan.core.url import DatabaseURL

T = TypeVar("T")


def one_database(
    env: Environment, database_name: str | None
) -> tuple[str, DatabaseURL]:
    """(name to show, URL) of the database a single-database command works on:
    the environment's, or in a fleet the one --database names."""
    if database_name is None:
        return env.url.display, env.url
    from migplan.service import membership

    member = membership.select(env, database_name)
    return member.name, member.url


SHARDS_KEY = "migplan.shards"
"""Where `--shards N` waits (cli.options.shard_option) for `--shard auto`."""


def shard_of(text: str | None) -> tuple[int, int] | None:
    """The shard of `--shard TEXT` (with `auto`, from the runner's environment and
    `--shards`), or None for the whole fleet."""
    import os

    from migplan.core.fleet import resolve_shard

    shards = click.get_current_context().meta.get(SHARDS_KEY)
    return resolve_shard(text, shards, os.environ)


def finish(result: ApplyResult, *, quiet_when_done: bool = False) -> None:
    """End a run: its failure as the error, else its closing line (on stderr with
    `quiet_when_done`, where stdout is Alembic's, as for the `db` commands; none
    with -q)."""
    from migplan import render

    if not result.ok:
        from migplan.errors import MigrationFailed

        raise MigrationFailed(result.failure_message())
    terminal.report(render.apply_outcome(result), err=quiet_when_done)
    if result.audit_error:
        terminal.warning(
            f"the audit trail could not record the end of this run "
            f"({result.audit_error}); every step it ran is recorded"
        )


def confirm(env: Environment, action: str, yes: bool, *, as_json: bool = False) -> None:
    """Ask before changing a protected environment (on stderr with --json, whose
    stdout is the document's)."""
    if not env.protected or yes:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise Refused(f"environment {env.name!r} is protected; pass --yes to {action}")
    typed = click.prompt(
        f"{env.name!r} is protected. Type its name to {action}",
        default="",
        show_default=False,
        err=as_json,
    )
    if typed != env.name:
        raise Refused(f"{action} cancelled: {typed!r} is not {env.name!r}")


def say(message: str) -> None:
    """A notice on stderr (waiting for a lock...): none with -q."""
    terminal.report(message, err=True)


def progress_printer(*, err: bool = False) -> Callable[[Progress], None]:
    """On a terminal, one line per step, rewritten as it ends; elsewhere (logs),
    a line as each step starts and a short one as it ends. With `err` (--json,
    whose stdout is the document's), on stderr. With -q, none."""
    from migplan import render

    live = (sys.stderr if err else sys.stdout).isatty()
    style = terminal.style(err=err)
    if terminal.quiet():
        return lambda event: None

    def show(event: Progress) -> None:
        if event.event == "start":
            click.echo(render.progress_line(event), nl=not live, err=err)
        elif live:
            line = render.progress_line(event, style=style)
            click.echo("\r\033[K" + line, err=err)
        else:
            line = render.progress_line(event, short=True, style=style)
            click.echo(line, err=err)

    return show


def each_database(
    env: Environment, database_name: str | None
) -> list[tuple[str, DatabaseURL]]:
    """(name, URL) of each database a per-database command looks at: every one of
    a fleet, unless --database picks one."""
    if env.is_fleet and database_name is None:
        from migplan.service import membership

        return [(m.name, m.url) for m in membership.members(env)]
    return [one_database(env, database_name)]


def read_each(
    databases: list[tuple[str, DatabaseURL]], read: Callable[[DatabaseURL], T]
) -> tuple[dict[str, T], dict[str, str]]:
    """Read each database; one that fails gives its error, the others go on."""
    found: dict[str, T] = {}
    failed: dict[str, str] = {}
    for name, url in databases:
        try:
            found[name] = read(url)
        except MigplanError as err:
            failed[name] = str(err)
    return found, failed


def report_failures(failed: dict[str, str], total: int) -> None:
    if len(failed) == total == 1:
        raise MigplanError(next(iter(failed.values())))
    for name, error in failed.items():
        terminal.error(f"{name}: {error}")
    if failed:
        raise MigplanError(f"{len(failed)} of {total} databases could not be read")
