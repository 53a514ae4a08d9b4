"""The `migplan` group: shared state, and where exit codes are decided."""

from __future__ import annotations

import importlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import click

from migplan import __version__
from migplan import compat
from migplan.cli import terminal
from migplan.cli.terminal import JSON_MODE
from migplan.errors import ChangesPending
from migplan.errors import Interrupted
from migplan.errors import MigplanError
from migplan.errors import Terminated
from migplan.errors import describe

if TYPE_CHECKING:
    from migplan.project.config import Project

EXIT_INTERNAL = 3


JSON_BODY = "migplan.json.body"
"""ctx.meta key: the body of its document, as far as the command got."""
JSON_PRINTED = "migplan.json.printed"


class MigplanGroup(click.Group):
    """Where exit codes are decided, from exceptions: a MigplanError prints its
    line(s) on stderr and exits with its code (1; 2 for changes pending); any
    other exception is a bug: one line and exit 3 (the traceback with
    MIGPLAN_DEBUG=1). Ctrl-C exits 130 and SIGTERM 143, as shells expect; usage
    errors (2) stay click's own.

    And where a --json command's one document is printed, whatever the outcome:
    the body the command staged (`json_result`) with ``ok`` and ``error`` decided
    here, from the same exception as the exit code.

    A group given `lazy` (command name -> the module of migplan.cli defining it)
    imports a command's module only when that command is asked for, so that
    `migplan apply` loads the code of apply and not that of every command."""

    def __init__(
        self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.lazy.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"migplan.cli.{module}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in dict.fromkeys(self.lazy.values()):
            importlib.import_module(f"migplan.cli.{module}")
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
        except click.exceptions.Exit:
            _print_document(ctx, None)
            raise
        except (click.Abort, click.ClickException):
            raise
        except KeyboardInterrupt as err:
            # outside a run that changes a database (those raise Interrupted)
            code = 143 if isinstance(err, Terminated) else 130
            name = Interrupted.signal_name(err)
            _print_document(ctx, ("Interrupted", f"interrupted by {name}", code))
            click.echo("Aborted!", err=True)
            ctx.exit(code)
        except MigplanError as err:
            pending = isinstance(err, ChangesPending)
            # the message is what the Error: line(s) on stderr say
            message = "; ".join(err.lines()) or str(err)
            _print_document(
                ctx, None if pending else (type(err).__name__, message, err.exit_code)
            )
            for line in err.lines():
                terminal.error(line)
            ctx.exit(err.exit_code)
        except Exception as err:
            if os.environ.get("MIGPLAN_DEBUG"):
                raise
            message = f"internal error: {describe(err)}"
            _print_document(ctx, ("InternalError", message, EXIT_INTERNAL))
            terminal.error(message)
            ctx.exit(EXIT_INTERNAL)
        _print_document(ctx, None)
        return result


def json_requested(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """Callback of --json: remember, for the group, that a document is owed."""
    if value:
        ctx.meta[JSON_MODE] = True
    return value


def json_result(body: Mapping[str, object]) -> None:
    """Stage the body of this command's --json document (again as it gets further:
    the last one staged is printed). The group prints it once, at the end."""
    click.get_current_context().meta[JSON_BODY] = body


def _print_document(ctx: click.Context, error: tuple[str, str, int] | None) -> None:
    """Print the --json document, once: the staged body with ``ok`` and ``error``.
    A success with nothing staged prints nothing (the command printed its own)."""
    meta = ctx.meta
    if not meta.get(JSON_MODE) or meta.get(JSON_PRINTED):
        return
    body = meta.get(JSON_BODY)
    if error is None and body is None:
        return
    from migplan.render import documents

    meta[JSON_PRINTED] = True
    click.echo(
        documents.document(
            body, None if error is None else documents.error_object(*error)
        )
    )


@dataclass
class State:
    """What every command shares: where migplan.yaml is, loaded on first use."""

    config_path: str | None = None
    _project: Project | None = field(default=None, repr=False)

    @property
    def project(self) -> Project:
        if self._project is None:
            from migplan.project import config

            self._project = config.load_config(self.config_path)
        return self._project


pass_state = click.make_pass_decorator(State, ensure=True)

COMMANDS = {
    "plan": "migrate",
    "apply": "migrate",
    "rollback": "migrate",
    "resolve": "migrate",
    "status": "inspect",
    "log": "inspect",
    "drift": "inspect",
    "graph": "inspect",
    "lint": "lint",
    "promote": "promote",
    "checkpoint": "checkpoints",
    "verify": "checks",
    "validate": "checks",
    "db": "db",
}
"""Each command of `migplan`, and the module of migplan.cli that defines it."""


@click.group(
    cls=MigplanGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="PATH",
    envvar="MIGPLAN_CONFIG",
    help="migplan.yaml to use (default: $MIGPLAN_CONFIG, else ./migplan.yaml).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="For scripts: print only errors and warnings (and what --json, --sql or "
    "a machine format asks for); the exit code tells the outcome.",
)
@click.option(
    "--color/--no-color",
    "color",
    default=None,
    help="Colour the output (default: on a terminal, unless NO_COLOR is set).",
)
@click.version_option(__version__, prog_name="migplan")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, quiet: bool, color: bool | None
) -> None:
    """Plan and apply Alembic migrations per environment, from migplan.yaml."""
    compat.lean_mako()
    ctx.obj = State(config_path)
    ctx.meta[terminal.QUIET] = quiet
    if color is not None:
        ctx.meta[terminal.COLOR] = color
        ctx.color = color  # click.echo keeps (or strips) the codes accordingly


def main() -> None:
    """Entry point of the console script."""
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="migplan")


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (Kubernetes, systemd, CI runners): stop as Ctrl-C stops a run."""
    raise Terminated()
