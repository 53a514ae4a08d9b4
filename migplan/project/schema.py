"""migplan.yaml against its JSON Schema, and the references between its values:
every error with its file, line and key path."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import cast

from migplan.core.environment import Location
from migplan.core.names import unknown
from migplan.errors import ConfigError
from migplan.project.document import Document
from migplan.project.document import type_name
from migplan.project.plain import VAR
from migplan.project.plain import dotted

if TYPE_CHECKING:
    import jsonschema

SCHEMA_PATH = Path(__file__).with_name("migplan.schema.json")


@functools.cache
def schema() -> dict[str, object]:
    """Return the JSON Schema of migplan.yaml."""
    return cast(dict[str, object], json.loads(SCHEMA_PATH.read_text("utf-8")))


def check_document(document: Document) -> list[ConfigError]:
    """Return every schema and consistency error of `document`, in file order."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    found: list[tuple[int, ConfigError]] = list(document.duplicates)
    for err in validator.iter_errors(document.data):
        best = jsonschema.exceptions.best_match([err])
        for location, message in _describe(document, best):
            found.append((location.line, location.error(message)))
    if not found:
        found.extend(_check_references(document))
    found.sort(key=lambda item: item[0])
    return [error for _, error in found]


def _describe(
    document: Document, err: jsonschema.ValidationError
) -> Iterator[tuple[Location, str]]:
    """Yield where an error sits and what it says (one per unknown key)."""
    path = list(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        schema = cast(dict[str, object], err.schema)
        allowed = cast(dict[str, object], schema.get("properties", {}))
        extra = [str(key) for key in err.instance if key not in allowed]
        for key in extra:
            location = document.locate([*path, key], at_key=True)
            yield location, unknown(f"key {key!r}", key, allowed, ordered=True)
        if extra:
            return
    if err.validator == "required":
        yield document.locate(path, at_key=True), err.message
        return
    if err.validator == "oneOf" and isinstance(err.instance, dict):
        properties = cast(
            dict[str, object], cast(dict[str, object], err.schema).get("properties", {})
        )
        if "databases" in properties:
            yield _database_choice(document, path, err.instance)
            return
    if "propertyNames" in err.schema_path:
        # jsonschema reports a bad name as the name failing the pattern
        line = document.locate([*path, str(err.instance)], at_key=True).line
        message = (
            f"{err.instance!r} is not a valid environment name (letters, digits, "
            "'_', '-' and '.')"
        )
        yield Location(document.file, line, dotted(path)), message
        return
    if err.validator in ("oneOf", "anyOf") and err.context:
        deepest = max(err.context, key=lambda e: len(e.absolute_path))
        if len(deepest.absolute_path) > len(err.absolute_path):
            yield from _describe(document, deepest)
            return
        if isinstance(err.instance, str):
            # a string can only have meant a revision: say which rule it broke
            for branch_err in err.context:
                if branch_err.validator != "type":
                    yield from _describe(document, branch_err)
                    return
    yield document.locate(path), _short_message(err)


def _database_choice(
    document: Document, path: list[str | int], env: dict[str, object]
) -> tuple[Location, str]:
    """An environment names its database(s) in exactly one way."""
    given = [key for key in ("url", "databases", "databases_from") if key in env]
    if not given:
        return document.locate(path, at_key=True), (
            "'url' is a required property (or 'databases' or 'databases_from' for a fleet)"
        )
    if len(given) > 1:
        return document.locate([*path, given[1]], at_key=True), (
            f"give one of 'url', 'databases' and 'databases_from', not {' and '.join(repr(g) for g in given)}"
        )
    return document.locate([*path, "schemas"], at_key=True), (
        "'schemas' needs 'url': one PostgreSQL database with a schema per tenant"
    )


def _short_message(err: jsonschema.ValidationError) -> str:
    if err.validator == "type":
        return (
            f"expected {_expected(err.validator_value)}, got {type_name(err.instance)}"
        )
    if err.validator == "enum":
        choices = ", ".join(repr(c) for c in cast(list[object], err.validator_value))
        return f"{err.instance!r} is not one of {choices}"
    if err.validator in ("oneOf", "anyOf"):
        return (
            f"expected a revision or a list of revisions, got {type_name(err.instance)}"
        )
    if err.validator == "pattern" and isinstance(err.instance, str):
        names = [part for part in err.absolute_path if isinstance(part, str)]
        hint = _PATTERN_HINTS.get(names[-1] if names else "")
        return f"{err.instance!r} is not valid here" + (f": {hint}" if hint else "")
    return err.message


_PATTERN_HINTS = {
    "app": 'expected "module:attr" or "module:factory()"',
    "metadata": 'expected "module:attr"',
    "audit_table": "expected a table name (letters, digits and '_')",
    "target": "a revision has no spaces; give several revisions as a list",
}


def _expected(types: object) -> str:
    names = {
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "object": "a mapping",
        "array": "a list",
        "null": "null",
    }
    if isinstance(types, list):
        return " or ".join(names.get(str(t), str(t)) for t in types)
    return names.get(str(types), str(types))


def _check_references(document: Document) -> Iterator[tuple[int, ConfigError]]:
    data = document.data
    envs = cast(dict[str, dict[str, object]], data["environments"])
    default = data.get("default_env")
    if isinstance(default, str) and default not in envs:
        location = document.locate(["default_env"])
        message = unknown(f"environment {default!r}", default, envs)
        yield location.line, location.error(message)
    for name, env in envs.items():
        required = env.get("requires")
        if isinstance(required, str) and (required not in envs or required == name):
            location = document.locate(["environments", name, "requires"])
            message = (
                "an environment cannot require itself"
                if required == name
                else unknown(f"environment {required!r}", str(required), envs)
            )
            yield location.line, location.error(message)
        if "url" not in env:
            continue
        url = cast(str, env["url"])
        location = document.locate(["environments", name, "url"])
        matches = list(VAR.finditer(url))
        if any(m.group(2) is not None and "$" in m.group(2) for m in matches):
            yield location.line, location.error("nested ${...} is not supported")
            continue
        starts = {m.start() for m in matches}
        for stray in re.finditer(r"\$\{[^}]*\}?", url):
            if stray.start() not in starts:
                message = (
                    f"{stray.group()!r} is not a variable reference; write ${{NAME}} "
                    "or ${NAME:-default}"
                )
                yield location.line, location.error(message)
