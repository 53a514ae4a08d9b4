"""Promotion between environments: what a `requires:` environment has applied,
and setting one environment's target to another's current revision in
migplan.yaml, changing only that value (comments and layout stay)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from migplan.db import database
from migplan.errors import ConfigError
from migplan.errors import MigplanError
from migplan.project import config

if TYPE_CHECKING:
    from migplan.core.environment import Environment
    from migplan.core.revisions import Heads
    from migplan.project.config import Project


def applied_everywhere(project: Project, env: Environment) -> set[str] | None:
    """The revisions applied in every database of `env` (None: none could be read)."""
    from migplan.service import membership

    common: set[str] | None = None
    for member in membership.members(env):
        current = database.read_heads(member.url, project.tables)
        applied = project.graph.ancestors(current)
        common = applied if common is None else common & applied
    return common


def missing(project: Project, env: Environment, after: Heads) -> list[str]:
    """The revisions `after` needs that `env.requires` has not applied, in order."""
    if env.requires is None:
        return []
    required = project.environment(env.requires)
    applied = applied_everywhere(project, required) or set()
    needed = project.graph.ancestors(after)
    depth = project.graph.depth
    return sorted(needed - applied, key=lambda rev: (depth[rev], rev))


def current_target(project: Project, source: Environment) -> Heads:
    """The revisions to promote from `source`: its database's current heads."""
    from migplan.service import membership

    found: set[Heads] = set()
    for member in membership.members(source):
        found.add(database.read_heads(member.url, project.tables))
    if len(found) != 1:
        raise MigplanError(
            f"the databases of {source.name!r} are not all at the same revision; "
            "promote from one environment whose databases agree"
        )
    (heads,) = found
    if not heads:
        raise MigplanError(f"{source.name!r} is at base: there is nothing to promote")
    return heads


def set_target(path: Path, env_name: str, revisions: Sequence[str]) -> None:
    """Rewrite `target:` of one environment in migplan.yaml, and nothing else."""
    text = path.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    env_node = _child(_child(node, "environments"), env_name)
    if not isinstance(env_node, yaml.MappingNode):
        raise ConfigError(f"{path.name}: environment {env_name!r} is not a mapping")
    value = (
        repr(revisions[0])
        if len(revisions) == 1
        else "[" + ", ".join(repr(r) for r in revisions) + "]"
    )
    target = _child(env_node, "target")
    if target is not None:
        start, end = target.start_mark.index, target.end_mark.index
        new = text[:start] + value + text[end:]
    elif env_node.flow_style:
        raise ConfigError(
            f"{path.name}: add a target to {env_name!r} first (it is written on one line)"
        )
    else:
        # after the environment's first key, at its indentation
        first_key = env_node.value[0][0]
        indent = " " * first_key.start_mark.column
        line_end = text.find("\n", env_node.value[0][1].end_mark.index)
        line_end = len(text) if line_end == -1 else line_end
        new = text[:line_end] + f"\n{indent}target: {value}" + text[line_end:]
    _write(path, new)


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value  # type: ignore[no-any-return]
    return None


def _write(path: Path, text: str) -> None:
    """Replace the file, once the new text is known to be a valid migplan.yaml."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        config.load_config(tmp)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except OSError as err:
        raise MigplanError(f"cannot write {path}: {err.strerror}") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
