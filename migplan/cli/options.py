"""Options shared by several commands, defined once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from migplan.cli.app import json_requested

if TYPE_CHECKING:
    pass

env_argument = click.argument("env_name", metavar="[ENV]", required=False)
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
database_option = click.option(
    "--database",
    "database_name",
    metavar="NAME",
    default=None,
    help="In a fleet, the one database to work on (its name, or part of it).",
)
shard_option = click.option(
    "--shard",
    metavar="I/N",
    default=None,
    help="In a fleet, only the I-th of N shards of its databases (for parallel runners).",
)
lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="How long to wait for another migplan's lock (default: the environment's lock_timeout, 300).",
)
