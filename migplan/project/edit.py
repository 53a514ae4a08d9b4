"""Changing migplan.yaml in place: one value rewritten, comments and layout kept."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from migplan.errors import ConfigError
from migplan.errors import MigplanError
from migplan.project import config
from migplan.project.document import child


def set_target(path: Path, env_name: str, revisions: Sequence[str]) -> None:
    """Rewrite `target:` of one environment in migplan.yaml, and nothing else."""
    text = path.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    env_node = _value(_value(node, "environments"), env_name)
    if not isinstance(env_node, yaml.MappingNode):
        raise ConfigError(f"{path.name}: environment {env_name!r} is not a mapping")
    value = (
        repr(revisions[0])
        if len(revisions) == 1
        else "[" + ", ".join(repr(r) for r in revisions) + "]"
    )
    target = _value(env_node, "target")
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


def _value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    found = child(node, key) if node is not None else None
    return found[1] if found else None


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
