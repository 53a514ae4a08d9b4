"""Find and read migplan.yaml: YAML, schema check, ${VAR} expansion -> Project."""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Literal
from typing import cast

from migplan.core.environment import DatabasesFrom
from migplan.core.environment import DdlPolicy
from migplan.core.environment import Environment
from migplan.core.environment import Level
from migplan.core.environment import LintPolicy
from migplan.core.environment import Location
from migplan.core.environment import OnFailure
from migplan.core.environment import RollbackPolicy
from migplan.core.environment import Rollout
from migplan.core.environment import Tables
from migplan.core.environment import seconds
from migplan.core.names import unknown
from migplan.core.url import DatabaseURL
from migplan.errors import ConfigError
from migplan.errors import UnknownEnvironment
from migplan.project import cache
from migplan.project import envpy
from migplan.project.plain import VAR
from migplan.project.plain import KnownDocument
from migplan.project.plain import holds_password
from migplan.project.plain import is_plain
from migplan.project.plain import read_text

if TYPE_CHECKING:
    from migplan.core.graph import RevisionGraph
    from migplan.project.document import Document

CONFIG_NAME = "migplan.yaml"
CONFIG_ENV_VAR = "MIGPLAN_CONFIG"


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
    multidb: bool = False
    env_uses_app: bool = True
    """Whether env.py may need the Flask app (envpy.needs_app)."""
    """Whether env.py configures several databases (a multi-database template)."""

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
                unknown(f"environment {name!r}", name, self.environments)
            ) from None

    @functools.cached_property
    def graph(self) -> RevisionGraph:
        """The revision graph of the migrations folder, read on first use."""
        from migplan.project import history

        return history.load_graph(self.migrations, self.ini, self.root)


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
    text = read_text(file)
    # a file already found valid, byte for byte, by this migplan: neither YAML
    # nor jsonschema, its data and lines are in the cache
    digest = hashlib.sha256(text.encode()).hexdigest()
    known = cache.load("config", str(file)) or {}
    checked = known.get("sha256") == digest
    if checked and (cached := KnownDocument.from_cache(file, known)) is not None:
        return _build_project(cached)
    from migplan.project.document import read_document
    from migplan.project.schema import check_document

    document = read_document(file, text)
    if not checked:
        errors = check_document(document)
        if errors:
            raise errors[0]
    entry: dict[str, object] = {"sha256": digest}
    if is_plain(document.data) and not holds_password(document.data):
        entry |= KnownDocument(file, document.data, document.lines()).to_cache()
    if entry != known:
        cache.store("config", str(file), entry)
    return _build_project(document)


def _build_project(document: Document | KnownDocument) -> Project:
    data = document.data
    root = document.file.parent
    environments: dict[str, Environment] = {}
    for name, raw in cast(dict[str, dict[str, object]], data["environments"]).items():
        environments[name] = _build_environment(document, name, raw)
    migrations = root / cast(str, data.get("migrations", "migrations"))
    # the version table env.py names, where migplan.yaml names none: plan and
    # status read the table apply will write
    own = envpy.read(migrations)
    if "version_table" in data:
        version_table = cast(str, data["version_table"])
        schema = cast("str | None", data.get("version_table_schema"))
    else:
        version_table = own.version_table or "alembic_version"
        schema = cast(
            "str | None", data.get("version_table_schema", own.version_table_schema)
        )
    return Project(
        path=document.file,
        migrations=migrations,
        environments=environments,
        default_env=cast("str | None", data.get("default_env")),
        app=cast("str | None", data.get("app")),
        metadata=cast("str | None", data.get("metadata")),
        version_table=version_table,
        version_table_schema=schema,
        audit_table=cast(str, data.get("audit_table", "migplan_audit")),
        multidb=own.multidb,
        env_uses_app=own.uses_app,
    )


def _build_environment(
    document: Document | KnownDocument, name: str, raw: dict[str, object]
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
        binds=tuple(cast("dict[str, str]", raw.get("binds") or {}).items()),
        ddl=_ddl(cast("dict[str, object]", raw.get("ddl") or {})),
        location=document.locate(where, at_key=True),
        url_location=document.locate([*where, "url"]),
        resolver=functools.partial(resolve_url, root=root),
    )


def _ddl(raw: dict[str, object]) -> DdlPolicy:
    lock = raw.get("lock_timeout")
    statement = raw.get("statement_timeout")
    return DdlPolicy(
        lock_timeout=None if lock is None else seconds(lock),
        retries=int(cast(int, raw.get("retries", 0))),
        statement_timeout=None if statement is None else seconds(statement),
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

    return VAR.sub(replace, text)


def resolve_url(
    template: str, location: Location | None = None, *, root: Path
) -> DatabaseURL:
    """Expand ${VAR} in a URL as written in migplan.yaml, spell it as SQLAlchemy 2
    wants, and make a relative SQLite path relative to migplan.yaml's folder."""
    text = normalize_url(expand_vars(template, location))
    try:
        url = DatabaseURL.parse(text)
    except ConfigError as err:
        names = [f"${{{m.group(1)}}}" for m in VAR.finditer(template)]
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
