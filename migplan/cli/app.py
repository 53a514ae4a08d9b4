"""The `migplan` group: shared state, and where exit codes are decided."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import click

from migplan import __version__
from migplan.errors import MigplanError
from migplan.errors import Terminated
from migplan.errors import describe

if TYPE_CHECKING:
    from migplan.project.config import Project

EXIT_INTERNAL = 3


class MigplanGroup(click.Group):
    """Where exit codes are decided, from exceptions: a MigplanError prints its
    line(s) on stderr and exits with its code (1; 2 for changes pending); any
    other exception is a bug: one line and exit 3 (the traceback with
    MIGPLAN_DEBUG=1). Ctrl-C exits 130 and SIGTERM 143, as shells expect; usage
    errors (2) stay click's own."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except KeyboardInterrupt as err:
            # outside a run that changes a database (those raise Interrupted)
            click.echo("Aborted!", err=True)
            ctx.exit(143 if isinstance(err, Terminated) else 130)
        except MigplanError as err:
            for line in err.lines():
                click.echo(f"Error: {line}", err=True)
            ctx.exit(err.exit_code)
        except Exception as err:
            if os.environ.get("MIGPLAN_DEBUG"):
                raise
            click.echo(f"Error: internal error: {describe(err)}", err=True)
            ctx.exit(EXIT_INTERNAL)


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


@click.group(cls=MigplanGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="PATH",
    envvar="MIGPLAN_CONFIG",
    help="migplan.yaml to use (default: $MIGPLAN_CONFIG, else ./migplan.yaml).",
)
@click.version_option(__version__, prog_name="migplan")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Plan and apply Alembic migrations per environment, from migplan.yaml."""
    ctx.obj = State(config_path)


def main() -> None:
    """Entry point of the console script."""
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="migplan")


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (Kubernetes, systemd, CI runners): stop as Ctrl-C stops a run."""
    raise Terminated()
