"""Options shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import click

from migplan.cli import complete
from migplan.cli.app import json_requested
from migplan.cli.common import SHARDS_KEY

if TYPE_CHECKING:
    pass

F = TypeVar("F", bound=Callable[..., Any])

env_argument = click.argument(
    "env_name",
    metavar="[ENV]",
    required=False,
    shell_complete=complete.environments,
)
json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=json_requested,
    help="Print one JSON document on stdout, whatever the outcome (schemas/).",
)
yes_option = click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Do not ask for confirmation (needed for protected environments without a terminal).",
)
settings_env_option = click.option(
    "--env",
    "-e",
    "env_name",
    default=None,
    shell_complete=complete.environments,
    help="Environment whose settings to use (default: default_env).",
)
no_checkpoint_option = click.option(
    "--no-checkpoint",
    "no_checkpoint",
    is_flag=True,
    help="Replay every revision, even where an empty database could load a checkpoint.",
)
database_option = click.option(
    "--database",
    "database_name",
    metavar="NAME",
    default=None,
    help="In a fleet, the one database to work on (its name, or part of it).",
)


def _remember_shards(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[SHARDS_KEY] = value  # read by shard_of, with --shard


def shard_option(command: F) -> F:
    """`--shard I/N|auto`, and `--shards N` beside `auto` (common.shard_of reads
    both: the command gets --shard's text)."""
    command = click.option(
        "--shards",
        metavar="N",
        default=None,
        expose_value=False,
        callback=_remember_shards,
        help="With --shard auto, how many shards there are (a Kubernetes Indexed Job's completions; or MIGPLAN_SHARDS).",
    )(command)
    return click.option(
        "--shard",
        metavar="I/N|auto",
        default=None,
        help="In a fleet, only the I-th of N shards of its databases (1-based, for parallel runners); auto: from MIGPLAN_SHARD=I/N, or a Kubernetes Indexed Job's JOB_COMPLETION_INDEX (0-based) with --shards N.",
    )(command)


lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="How long to wait for another migplan's lock (default: the environment's lock_timeout, 300).",
)
