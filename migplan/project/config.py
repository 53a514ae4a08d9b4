"""Find and read migplan.yaml: YAML, schema check, ${VAR} expansion -> Project."""

from __future__ import annotations

import datetime
import difflib
import functools
import hashlib
import json
import os
import re
from collections.abc import Hashable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Literal
from typing import cast

import yaml

from migplan.core.environment import DatabasesFrom
from migplan.core.environment import Environment
from migplan.core.environment import Level
from migplan.core.environment import LintPolicy
from migplan.core.environment import Location
from migplan.core.environment import OnFailure
from migplan.core.environment import RollbackPolicy
from migplan.core.environment import Rollout
from migplan.core.environment import Tables
from migplan.core.url import DatabaseURL
from migplan.errors import ConfigError
from migplan.errors import UnknownEnvironment
from migplan.project import cache

if TYPE_CHECKING:
    import jsonschema

    from migplan.core.graph import RevisionGraph

CONFIG_NAME = "migplan.yaml"
CONFIG_ENV_VAR = "MIGPLAN_CONFIG"
SCHEMA_PATH = Path(__file__).with_name("migplan.schema.json")

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Project:
    """A loaded migplan.yaml: where the revisions live and every environment."""

    path: Path
    migrations: Path
    environments: Mapping[str, Environment]
    default_env: str | None = None
    app: str | None = None
    metadata: str | None = None
    version_table: str = "alembic_version"
    version_table_schema: str | None = None
    audit_table: str = "migplan_audit"

    @property
    def tables(self) -> Tables:
        """The version table and the audit table, in every database."""
        return Tables(self.version_table, self.version_table_schema, self.audit_table)

    @property
    def root(self) -> Path:
        """The folder of migplan.yaml; relative paths resolve against it."""
        return self.path.parent

    @property
    def ini(self) -> Path | None:
        """Alembic's ini file: Flask-Migrate's in the migrations folder, else a
        plain Alembic project's alembic.ini beside migplan.yaml."""
        for path in (self.migrations / "alembic.ini", self.root / "alembic.ini"):
            if path.is_file():
                return path
        return None

    def environment(self, name: str | None = None) -> Environment:
        """Return the environment `name` (default: `default_env`)."""
        if name is None:
            if self.default_env is None:
                if len(self.environments) == 1:
                    return next(iter(self.environments.values()))
                raise ConfigError(
                    f"{self.path.name}: no environment given and no default_env "
                    f"set (known: {', '.join(self.environments)})"
                )
            name = self.default_env
        try:
            return self.environments[name]
        except KeyError:
            raise UnknownEnvironment(
                _unknown(f"environment {name!r}", name, self.environments)
            ) from None

    @functools.cached_property
    def graph(self) -> RevisionGraph:
        """The revision graph of the migrations folder, read on first use."""
        from migplan.project import history

        return history.load_graph(self.migrations, self.ini, self.root)


def _unknown(what: str, name: str, known: Sequence[str] | Mapping[str, object]) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} (known: {', '.join(names)}){hint}"


def find_config(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the config file: `path`, else $MIGPLAN_CONFIG, else ./migplan.yaml."""
    if path is None:
        path = os.environ.get(CONFIG_ENV_VAR) or CONFIG_NAME
    found = Path(path)
    if found.is_dir():
        found = found / CONFIG_NAME
    if not found.is_file():
        raise ConfigError(
            f"{found}: no such file (create one with 'migplan db init', or pass "
            f"-c PATH or set ${CONFIG_ENV_VAR})"
        )
    # abspath, not resolve(): drop the "x/../" of a relative -c without following links
    return Path(os.path.abspath(found))


def load_config(path: str | os.PathLike[str] | None = None) -> Project:
    """Read, validate and return the project described by migplan.yaml.

    :param path: the config file; default $MIGPLAN_CONFIG, else ./migplan.yaml.
    :raises ConfigError: the file is missing, malformed or invalid; the message
        names the file, the line and the key.
    """
    file = find_config(path)
    document = read_document(file)
    # a file already found valid, byte for byte, by this migplan: skip jsonschema
    digest = hashlib.sha256(document.text.encode()).hexdigest()
    known = cache.load("config", str(file))
    if known is None or known.get("sha256") != digest:
        errors = check_document(document)
        if errors:
            raise errors[0]
        cache.store("config", str(file), {"sha256": digest})
    return _build_project(document)


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
            child = _child(node, part)
            if child is None:
                break
            key_node, node = child
            line = (key_node if at_key else node).start_mark.line + 1
        return Location(self.file, line, _dotted(path))


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            item = node.value[part]
            return item, item
    return None


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def read_document(file: Path) -> Document:
    """Parse `file` with YAML's safe loader, keeping the node tree for line numbers."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{file.name}: cannot read: {err}") from err
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
            f"level, got {_type_name(data)}"
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
                        f"a key must be a name, not {_type_name(key)}",
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
        found = _child(node, "environments")
        found = found and _child(found[1], name)
        found = found and _child(found[1], "target")
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
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(allowed)
            yield location, f"unknown key {key!r} (known: {known}){hint}"
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
        yield Location(document.file, line, _dotted(path)), message
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
            f"expected {_expected(err.validator_value)}, got {_type_name(err.instance)}"
        )
    if err.validator == "enum":
        choices = ", ".join(repr(c) for c in cast(list[object], err.validator_value))
        return f"{err.instance!r} is not one of {choices}"
    if err.validator in ("oneOf", "anyOf"):
        return f"expected a revision or a list of revisions, got {_type_name(err.instance)}"
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


def _type_name(value: object) -> str:
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


def _check_references(document: Document) -> Iterator[tuple[int, ConfigError]]:
    data = document.data
    envs = cast(dict[str, dict[str, object]], data["environments"])
    default = data.get("default_env")
    if isinstance(default, str) and default not in envs:
        location = document.locate(["default_env"])
        message = _unknown(f"environment {default!r}", default, envs)
        yield location.line, location.error(message)
    for name, env in envs.items():
        required = env.get("requires")
        if isinstance(required, str) and (required not in envs or required == name):
            location = document.locate(["environments", name, "requires"])
            message = (
                "an environment cannot require itself"
                if required == name
                else _unknown(f"environment {required!r}", str(required), envs)
            )
            yield location.line, location.error(message)
        if "url" not in env:
            continue
        url = cast(str, env["url"])
        location = document.locate(["environments", name, "url"])
        matches = list(_VAR.finditer(url))
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


def _build_project(document: Document) -> Project:
    data = document.data
    root = document.file.parent
    environments: dict[str, Environment] = {}
    for name, raw in cast(dict[str, dict[str, object]], data["environments"]).items():
        environments[name] = _build_environment(document, name, raw)
    migrations = root / cast(str, data.get("migrations", "migrations"))
    return Project(
        path=document.file,
        migrations=migrations,
        environments=environments,
        default_env=cast("str | None", data.get("default_env")),
        app=cast("str | None", data.get("app")),
        metadata=cast("str | None", data.get("metadata")),
        version_table=cast(str, data.get("version_table", "alembic_version")),
        version_table_schema=cast("str | None", data.get("version_table_schema")),
        audit_table=cast(str, data.get("audit_table", "migplan_audit")),
    )


def _build_environment(
    document: Document, name: str, raw: dict[str, object]
) -> Environment:
    protected = bool(raw.get("protected", False))
    target = raw.get("target", "head")
    rollback = cast(dict[str, object], raw.get("rollback") or {})
    allow_destructive = rollback.get("allow_destructive")
    lint = cast(dict[str, Level], raw.get("lint") or {})
    rollout = cast(dict[str, int], raw.get("rollout") or {})
    source = cast("dict[str, str] | None", raw.get("databases_from"))
    where = ["environments", name]
    root = document.file.parent
    return Environment(
        name=name,
        url_template=cast("str | None", raw.get("url")),
        target=tuple(target) if isinstance(target, list) else (cast(str, target),),
        protected=protected,
        on_failure=cast(OnFailure, raw.get("on_failure", "stop")),
        rollback=RollbackPolicy(
            allowed=bool(rollback.get("allowed", True)),
            max_steps=cast("int | None", rollback.get("max_steps")),
            allow_destructive=(
                not protected if allow_destructive is None else bool(allow_destructive)
            ),
        ),
        lock_timeout=float(cast(float, raw.get("lock_timeout", 300.0))),
        on_modified=cast(Literal["warn", "refuse"], raw.get("on_modified", "warn")),
        lint=LintPolicy(**lint),
        requires=cast("str | None", raw.get("requires")),
        databases=tuple(cast(list[str], raw.get("databases") or ())),
        databases_from=DatabasesFrom(
            source["url"],
            source["query"],
            document.locate([*where, "databases_from", "url"]),
        )
        if source
        else None,
        schemas=tuple(cast(list[str], raw.get("schemas") or ())),
        rollout=Rollout(**rollout),
        location=document.locate(where, at_key=True),
        url_location=document.locate([*where, "url"]),
        resolver=functools.partial(resolve_url, root=root),
    )


def expand_vars(text: str, location: Location | None = None) -> str:
    """Replace ${VAR} and ${VAR:-default} from the process environment."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        message = f"environment variable ${{{name}}} is not set"
        if location is None:
            raise ConfigError(message)
        raise location.error(message)

    return _VAR.sub(replace, text)


def resolve_url(
    template: str, location: Location | None = None, *, root: Path
) -> DatabaseURL:
    """Expand ${VAR} in a URL as written in migplan.yaml, spell it as SQLAlchemy 2
    wants, and make a relative SQLite path relative to migplan.yaml's folder."""
    text = normalize_url(expand_vars(template, location))
    try:
        url = DatabaseURL.parse(text)
    except ConfigError as err:
        names = [f"${{{m.group(1)}}}" for m in _VAR.finditer(template)]
        message = str(err)
        if names:
            message += f" (check the value of {', '.join(names)})"
        raise location.error(message) if location else ConfigError(message) from err
    path = url.sqlite_file
    if path is None or Path(path).is_absolute():
        return url
    scheme, _, rest = text.partition(":///")
    query = rest.partition("?")[2]
    return DatabaseURL.parse(
        f"{scheme}:///{root / path}" + (f"?{query}" if query else "")
    )


def normalize_url(url: str) -> str:
    """Spell a URL the way SQLAlchemy 2 wants it: ``postgres://`` (Heroku and
    others) is ``postgresql://``; ``mysql://`` and ``mariadb://`` use PyMySQL,
    migplan's driver, unless mysqlclient is installed."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    for scheme in ("mysql://", "mariadb://"):
        if url.startswith(scheme):
            import importlib.util

            if importlib.util.find_spec("MySQLdb") is None:
                return f"{scheme[:-3]}+pymysql://{url[len(scheme) :]}"
    return url
