"""migplan.yaml as YAML: parsed with the safe loader, keeping the node tree that
says on which line each value sits."""

from __future__ import annotations

import datetime
import re
from collections.abc import Hashable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from migplan.core.environment import Location
from migplan.errors import ConfigError
from migplan.project.plain import Lines
from migplan.project.plain import dotted
from migplan.project.plain import read_text


@dataclass(frozen=True)
class Document:
    """migplan.yaml as data plus the YAML nodes that locate each value."""

    file: Path
    data: dict[str, object]
    node: yaml.Node
    text: str = ""
    duplicates: tuple[tuple[int, ConfigError], ...] = ()
    """Duplicate keys, with their lines: YAML keeps the last value, migplan refuses."""

    def locate(self, path: Sequence[str | int], at_key: bool = False) -> Location:
        """Return the location of the value (or, with at_key, the key) at `path`."""
        node: yaml.Node = self.node
        line = node.start_mark.line + 1
        for part in path:
            found = child(node, part)
            if found is None:
                break
            key_node, node = found
            line = (key_node if at_key else node).start_mark.line + 1
        return Location(self.file, line, dotted(path))

    def lines(self) -> Lines:
        """The line of every key and value, by key path, for the config cache
        (the first of duplicate keys, as `locate` finds it)."""
        found: Lines = {}
        root = self.node.start_mark.line + 1
        stack: list[tuple[tuple[str, ...], yaml.Node]] = [((), self.node)]
        found[()] = (root, root)
        while stack:
            path, node = stack.pop()
            if isinstance(node, yaml.MappingNode):
                items = [
                    (key.value, key, value)
                    for key, value in node.value
                    if isinstance(key, yaml.ScalarNode)
                ]
            elif isinstance(node, yaml.SequenceNode):
                items = [(str(i), item, item) for i, item in enumerate(node.value)]
            else:
                continue
            for part, key, value in items:
                below = (*path, part)
                if below not in found:
                    found[below] = (key.start_mark.line + 1, value.start_mark.line + 1)
                    stack.append((below, value))
        return found


def child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key, value) nodes of a mapping's key or a sequence's item, if there."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            item = node.value[part]
            return item, item
    return None


def read_document(file: Path, text: str | None = None) -> Document:
    """Parse `file` (whose `text` may be read already) with YAML's safe loader,
    keeping the node tree for line numbers."""
    if text is None:
        text = read_text(file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(f"{file.name}:1: the file is empty")
        duplicates = tuple(_duplicate_keys(file, node))
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1"
        problem = _yaml_problem(err)
        raise ConfigError(f"{file.name}:{where}: {problem}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{file.name}: invalid YAML: {err}") from err
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file.name}:{node.start_mark.line + 1}: expected a mapping at the top "
            f"level, got {type_name(data)}"
        )
    _keep_revision_text(data, node)
    return Document(file, data, node, text=text, duplicates=duplicates)


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, except that a mapping key is always the text written.

    Keys are names: an environment called ``0123``, ``yes`` or ``null`` must not
    become the integer 83, True or None.
    """

    def construct_mapping(
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[object, object]:
        self.flatten_mapping(node)
        mapping: dict[object, object] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key: object = key_node.value
            else:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"a key must be a name, not {type_name(key)}",
                        key_node.start_mark,
                    )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def _yaml_problem(err: yaml.MarkedYAMLError) -> str:
    problem = err.problem or err.context or "invalid YAML"
    unsafe = re.match(r"could not determine a constructor for the tag '(.*)'", problem)
    if unsafe:
        tag = unsafe.group(1).replace("tag:yaml.org,2002:", "!!")
        return f"tag {tag!r} is not allowed: migplan.yaml is read as plain (safe) YAML"
    return problem


def _duplicate_keys(file: Path, node: yaml.Node) -> Iterator[tuple[int, ConfigError]]:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    line = key.start_mark.line + 1
                    yield (
                        line,
                        ConfigError(f"{file.name}:{line}: duplicate key {key.value!r}"),
                    )
                seen.add(key.value)
            yield from _duplicate_keys(file, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(file, item)


def _keep_revision_text(data: dict[str, object], node: yaml.Node) -> None:
    """Use the text as written for targets YAML read as numbers or dates (``0123``)."""
    envs = data.get("environments")
    if not isinstance(envs, dict):
        return
    for name, env in envs.items():
        if not isinstance(env, dict) or "target" not in env:
            continue
        found = child(node, "environments")
        found = found and child(found[1], name)
        found = found and child(found[1], "target")
        if not found:
            continue
        target_node = found[1]
        if isinstance(target_node, yaml.ScalarNode) and _is_implicit(env["target"]):
            env["target"] = target_node.value
        elif isinstance(target_node, yaml.SequenceNode) and isinstance(
            env["target"], list
        ):
            env["target"] = [
                item.value
                if isinstance(item, yaml.ScalarNode) and _is_implicit(value)
                else value
                for item, value in zip(target_node.value, env["target"], strict=True)
            ]


def _is_implicit(value: object) -> bool:
    """Whether YAML turned plain text into a number or a date (not true/null)."""
    return isinstance(value, (int, float, datetime.date)) and not isinstance(
        value, bool
    )


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
