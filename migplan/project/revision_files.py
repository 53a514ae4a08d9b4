"""Read what a revision file declares (revision, down_revision, branch_labels,
depends_on, its docstring) as Alembic would, importing it only when it must.

Alembic imports each file and reads the module's attributes (alembic/script/base.py,
`Script._from_path`). migplan reads the module's syntax tree instead, and trusts it
only where it cannot differ from what running the module gives: every module-level
binding of those names is a plain assignment of a literal (the last one executed
wins), and nothing in the file can bind them another way (`global`, `:=`, a star
import, `globals()`, `exec`, a function's `__globals__`...). Any other file is imported as
Alembic imports it; when that fails, the error names the file and the header line
that made the import necessary.

The fast path parses only the head of the file, up to the last line holding one of
the names (a word such as ``revision`` cannot be spelt otherwise in ASCII), and
checks the rest by words: it holds none of the names, nothing that reaches a
module's namespace, and is decoded as the head is. A file where a word check fails
is parsed whole. Out of reach of both: code written to hide what it assigns (names
computed from strings fed to `getattr`, another module rewriting its caller's
frame), and a body that Alembic cannot import at all (it fails when it runs).
"""

from __future__ import annotations

import ast
import codecs
import hashlib
import importlib.util
import re
import sys
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from migplan import compat
from migplan.core.revisions import RevisionFile
from migplan.errors import RevisionGraphError

_HEADER = ("revision", "down_revision", "branch_labels", "depends_on")
_WATCHED = frozenset((*_HEADER, "__doc__", "__getattr__"))
"""Names whose binding changes what Alembic reads (`hasattr` calls `__getattr__`)."""
_WATCHED_OR_STAR = _WATCHED | {"*"}

_DYNAMIC = frozenset(
    (
        "globals",
        "locals",
        "vars",
        "exec",
        "eval",
        "__dict__",
        "__globals__",
        "f_globals",
        "f_locals",
    )
)
"""Names through which code reaches a module's variables without naming them (the
module Alembic loads is not in `sys.modules`)."""

# every spelling of a watched name holds one of these: the head ends after the last
_CUT_WORDS = (b"revision", b"branch_labels", b"depends_on", b"__doc__", b"__getattr__")
# every spelling of a risky name holds one of these ("*": a star import)
_RISKY_PARTS = (b"global", b"local", b"vars", b"exec", b"eval", b"__dict__", b"*")
_RISKY = re.compile(
    rb"\b(?:globals?|__globals__|f_globals|nonlocal|locals|f_locals|vars|exec|eval"
    rb"|__dict__)\b|import[\s\\]*\*"
)
_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.M)
# encodings in which ASCII bytes are the same characters (not so utf-7 or cp037)
_ASCII_COMPATIBLE = frozenset(("utf-8", "iso8859-1", "ascii", "cp1252", "iso8859-15"))
_LEGACY_REV = re.compile(r"([a-f0-9]+)\.py$")
"""A revision id in the file name, as Alembic 0.1 wrote them (alembic/script/base.py)."""

# the compiler rewrites docstrings from Python 3.13 on, drops them under -OO
_COMPILER_CHANGES_DOCSTRINGS = sys.version_info >= (3, 13) or sys.flags.optimize >= 2

_NAMED = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.ExceptHandler,
    ast.MatchAs,
    ast.MatchStar,
)
"""Nodes that bind their `name`."""

_KEYWORDS = {
    "If": "an if",
    "For": "a for",
    "AsyncFor": "an async for",
    "While": "a while",
    "Try": "a try",
    "TryStar": "a try",
    "With": "a with",
    "AsyncWith": "an async with",
    "Match": "a match",
}


@dataclass(frozen=True)
class _Unsure:
    """Why the syntax tree cannot tell what Alembic reads."""

    line: int
    reason: str


@dataclass
class _Scan:
    """The header as the module-level statements bind it."""

    values: dict[str, object] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    """The line of the last statement binding each name, literal or not."""
    unsure: _Unsure | None = None


def read(path: Path) -> RevisionFile:
    """Read a revision file's identifiers and docstring as Alembic would; refuse
    (RevisionGraphError) what Alembic would refuse, or cannot be read otherwise."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise RevisionGraphError(f"{path.name}: cannot read: {err.strerror}") from err
    sha256 = hashlib.sha256(data).hexdigest()
    scan, longdoc = _read_head(data) or _read_module(path, data)
    if scan.unsure is not None:
        return _from_import(path, scan, sha256)
    return _revision_file(path, scan.values, scan.lines, longdoc, sha256)


def _read_head(data: bytes) -> tuple[_Scan, str] | None:
    """Fast path: parse the head of the file, when the rest can bind none of the
    names; None when that cannot be shown, or the head alone is not certain."""
    last = max(data.rfind(word) for word in _CUT_WORDS)
    if last < 0:
        return None
    end = data.find(b"\n", last)
    cut = len(data) if end < 0 else end + 1
    rest = data[cut:]
    if rest and (
        not rest.isascii() or b"\0" in rest or not _decodes_as_ascii(data, cut)
    ):
        return None
    if any(part in data for part in _RISKY_PARTS) and _RISKY.search(data):
        return None
    head = data[:cut]
    if b":=" in head:
        return None  # `(revision := ...)` names revision: it can only be in the head
    try:
        tree = ast.parse(head)
    except (SyntaxError, ValueError):
        return None  # the head ends inside a string or brackets: read the whole file
    scan = _scan(tree.body)
    if scan.unsure is not None:
        return None
    return scan, _docstring(tree)


def _decodes_as_ascii(data: bytes, cut: int) -> bool:
    """Whether the bytes after `cut` are the same characters in the source encoding,
    and the encoding is declared before `cut`."""
    first = data.find(b"\n")
    second = data.find(b"\n", first + 1) if first >= 0 else -1
    head = data if second < 0 else data[: second + 1]
    if b"coding" not in head:
        return True
    cookie = _COOKIE.search(head)
    if cookie is None:
        return True
    try:
        encoding = codecs.lookup(cookie.group(1).decode("ascii")).name
    except LookupError:
        return False
    return encoding in _ASCII_COMPATIBLE and cut >= len(head)


def _read_module(path: Path, data: bytes) -> tuple[_Scan, str]:
    """Parse the whole file; the scan is unsure when only importing can tell."""
    try:
        tree = ast.parse(data, filename=path.name)
    except SyntaxError as err:
        where = f"{path.name}:{err.lineno}" if err.lineno else path.name
        raise RevisionGraphError(f"{where}: {err.msg}") from err
    except ValueError as err:  # null bytes, before Python 3.12
        raise RevisionGraphError(f"{path.name}: {err}") from err
    scan = _scan(tree.body)
    dynamic = _dynamic(tree)
    if dynamic is not None and (scan.unsure is None or dynamic.line < scan.unsure.line):
        scan.unsure = dynamic
    return scan, _docstring(tree)


def _scan(body: list[ast.stmt]) -> _Scan:
    """Follow the module-level statements that bind a watched name, in order."""
    scan = _Scan()
    for stmt in body:
        if isinstance(stmt, ast.Assign):
            targets, value_node = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is None:
                continue  # an annotation alone binds nothing
            targets, value_node = [stmt.target], stmt.value
        elif isinstance(stmt, (ast.Expr, ast.Pass)):
            continue
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            if not any(_alias(alias) in _WATCHED_OR_STAR for alias in stmt.names):
                continue
            _other_statement(stmt, scan)
            continue
        else:
            _other_statement(stmt, scan)
            continue
        if len(targets) == 1 and isinstance(targets[0], ast.Name):
            name = targets[0].id
            if name not in _WATCHED:
                continue
            if isinstance(value_node, ast.Constant) and name in _HEADER:
                # the generated header: `revision = 'ae10'`, `depends_on = None`
                scan.lines[name] = stmt.lineno
                if scan.unsure is None:
                    scan.values[name] = value_node.value
                continue
        _assignment(stmt.lineno, targets, value_node, scan)
    return scan


def _assignment(
    line: int, targets: list[ast.expr], value_node: ast.expr, scan: _Scan
) -> None:
    """Follow one module-level assignment, `a = b = value` or `a, *b = value`."""
    watched = [
        name for target in targets for name in _names(target) if name in _WATCHED
    ]
    for name in watched:
        scan.lines[name] = line
    if not watched or scan.unsure is not None:
        return
    special = [name for name in watched if name not in _HEADER]
    if special:
        scan.unsure = _Unsure(line, f"{special[0]} is assigned")
        return
    try:
        value = _literal(value_node)
    except ValueError:
        scan.unsure = _Unsure(line, f"{watched[0]} is not a literal")
        return
    values: dict[str, object] = {}
    if not all(_unpack(target, value, values) for target in targets):
        reason = f"{watched[0]} is not a plain assignment of a literal"
        scan.unsure = _Unsure(line, reason)
        return
    scan.values.update((k, v) for k, v in values.items() if k in _HEADER)


def _other_statement(stmt: ast.stmt, scan: _Scan) -> None:
    """Note a module-level statement other than an assignment that binds a name."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        # their bodies bind local names; `global` and `:=` are found elsewhere
        found = [(stmt.name, stmt.lineno)] if stmt.name in _WATCHED else []
        reason = "{} is a function or a class"
    elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
        names = map(_alias, stmt.names)
        found = [(name, stmt.lineno) for name in names if name in _WATCHED_OR_STAR]
        reason = "{} is imported"
    else:
        found = list(_bindings(stmt))
        keyword = _KEYWORDS.get(type(stmt).__name__)
        if keyword:
            reason = "{} is assigned inside " + keyword + " statement"
        elif isinstance(stmt, ast.Delete):
            reason = "{} is deleted"
        elif isinstance(stmt, ast.AugAssign):
            reason = "{} is changed by an augmented assignment"
        else:
            reason = "{} is bound by a " + type(stmt).__name__ + " statement"
    for name, line in found:
        if name != "*":
            scan.lines[name] = line
        if scan.unsure is None:
            text = "a star import may bind any name" if name == "*" else reason
            scan.unsure = _Unsure(line, text.format(name))


def _bindings(node: ast.AST) -> Iterator[tuple[str, int]]:
    """Yield every watched name that `node` or its children bind, and its line
    (``*`` for a star import)."""
    for child in ast.walk(node):
        names: list[str] = []
        if isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load):
            names = [child.id]
        elif isinstance(child, ast.alias):
            names = [_alias(child)]
        elif isinstance(child, _NAMED):
            names = [child.name] if child.name else []
        elif isinstance(child, ast.MatchMapping) and child.rest:
            names = [child.rest]
        for name in names:
            if name in _WATCHED_OR_STAR:
                yield name, getattr(child, "lineno", getattr(node, "lineno", 0))


def _alias(alias: ast.alias) -> str:
    """The name an import binds (``*`` for a star import)."""
    return alias.asname or alias.name.partition(".")[0]


def _dynamic(tree: ast.Module) -> _Unsure | None:
    """The first construct, by line, that can bind a watched name unseen."""
    found = [unsure for node in ast.walk(tree) if (unsure := _unseen(node))]
    return min(found, key=lambda unsure: unsure.line, default=None)


def _unseen(node: ast.AST) -> _Unsure | None:
    """Why `node` can bind a watched name that assignments do not show, if it can."""
    name = None
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    elif isinstance(node, ast.alias):
        name = node.name.rpartition(".")[2]
    line = getattr(node, "lineno", 0)
    if name in _DYNAMIC:
        return _Unsure(line, f"the module uses {name}, which can change any variable")
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        names = [n for n in node.names if n in _WATCHED]
        if names:
            keyword = "global" if isinstance(node, ast.Global) else "nonlocal"
            return _Unsure(line, f"{names[0]} is declared {keyword}")
    if (
        isinstance(node, ast.NamedExpr)
        and isinstance(node.target, ast.Name)
        and node.target.id in _WATCHED
    ):
        return _Unsure(line, f"{node.target.id} is assigned by :=")
    return None


def _names(target: ast.expr) -> list[str]:
    """The variables an assignment target binds (attributes and items are none)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _names(element)]
    return []


def _literal(node: ast.expr) -> object:
    """The value of a literal: constants and tuples, lists and sets of them."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = [_literal(element) for element in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(items)
        if isinstance(node, ast.List):
            return items
        try:
            return set(items)
        except TypeError as err:  # unhashable: importing will say so
            raise ValueError(node) from err
    raise ValueError(node)  # names, calls (`set()` may be rebound), f-strings...


def _unpack(target: ast.expr, value: object, values: dict[str, object]) -> bool:
    """Assign `value` to `target` as Python would; False when that cannot be shown
    (a set's order, a length that does not match: Python raises)."""
    if isinstance(target, ast.Name):
        values[target.id] = value
        return True
    if isinstance(target, (ast.Attribute, ast.Subscript)):
        return True
    if not isinstance(target, (ast.Tuple, ast.List)):
        return False
    if not isinstance(value, (tuple, list, str, bytes)):
        return False
    items = list(value)
    elements = target.elts
    stars = [i for i, e in enumerate(elements) if isinstance(e, ast.Starred)]
    if not stars:
        if len(items) != len(elements):
            return False
        pairs = list(zip(elements, items, strict=True))
    else:
        star = stars[0]
        after = len(elements) - star - 1
        if len(items) < len(elements) - 1:
            return False
        middle = items[star : len(items) - after]
        starred = elements[star]
        assert isinstance(starred, ast.Starred)
        pairs = [
            *zip(elements[:star], items[:star], strict=True),
            (starred.value, middle),
            *zip(elements[star + 1 :], items[len(items) - after :], strict=True),
        ]
    return all(_unpack(t, v, values) for t, v in pairs)


def _docstring(tree: ast.Module) -> str:
    """The module's `__doc__`, stripped, as Alembic's `Script.longdoc` gives it."""
    first = tree.body[0] if tree.body else None
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return ""
    doc: object = first.value.value
    if _COMPILER_CHANGES_DOCSTRINGS:
        # let the compiler make `__doc__` of the docstring alone: nothing else runs
        namespace: dict[str, object] = {}
        module = ast.Module(body=[first], type_ignores=[])
        exec(compile(module, "<docstring>", "exec"), namespace)
        doc = namespace.get("__doc__")
    return doc.strip() if isinstance(doc, str) else ""


def _from_import(path: Path, scan: _Scan, sha256: str) -> RevisionFile:
    """Last resort, as Alembic does it: import the file and read its attributes."""
    assert scan.unsure is not None
    unsure = scan.unsure
    try:
        module = compat.load_python_file(path)
        values = {
            name: getattr(module, name) for name in _HEADER if hasattr(module, name)
        }
        doc = module.__doc__
    except (Exception, SystemExit) as err:  # a revision file may raise anything
        raise RevisionGraphError(
            f"{path.name}: cannot import: {str(err) or type(err).__name__} "
            f"(line {unsure.line}: {unsure.reason}, so migplan imports the file as "
            "Alembic does: run migplan where the project's package is importable, "
            "installed or on PYTHONPATH, or write the header as literals)"
        ) from err
    if doc and not isinstance(doc, str):
        raise RevisionGraphError(
            f"{path.name}: __doc__ is {doc!r}, not a string (Alembic fails on it too)"
        )
    lines = {name: scan.lines.get(name, unsure.line) for name in _HEADER}
    return _revision_file(path, values, lines, (doc or "").strip(), sha256)


def _revision_file(
    path: Path,
    values: dict[str, object],
    lines: dict[str, int],
    longdoc: str,
    sha256: str,
) -> RevisionFile:
    """The RevisionFile of a header, normalised as Alembic's `Script` does."""

    def where(name: str) -> str:
        return f"{path.name}:{lines[name]}" if name in lines else path.name

    if "revision" in values:
        revision = values["revision"]
        if not isinstance(revision, str):
            raise RevisionGraphError(
                f"{where('revision')}: revision is {revision!r}, not a string"
            )
    else:
        legacy = _LEGACY_REV.match(path.name)
        if legacy is None:
            raise RevisionGraphError(
                f"{path.name}: no 'revision' variable declared, and the file name is "
                "not a revision id (as Alembic refuses it too); declare "
                "revision = '<id>' in the file"
            )
        revision = legacy.group(1)
    if "down_revision" not in values:
        raise RevisionGraphError(
            f"{path.name}: no 'down_revision' variable declared (Alembic requires one;"
            " write down_revision = None for a first revision)"
        )
    fields: dict[str, tuple[str, ...]] = {}
    for name in ("down_revision", "branch_labels", "depends_on"):
        value = values.get(name)
        ids = _as_tuple(value)
        if ids is None:
            what = "branch label" if name == "branch_labels" else "revision id"
            raise RevisionGraphError(
                f"{where(name)}: {name} is {value!r}, not a {what}, a sequence of "
                f"{what}s or None"
            )
        fields[name] = ids
    return RevisionFile(
        revision=revision,
        down_revision=fields["down_revision"],
        path=path,
        longdoc=longdoc,
        # a set in Alembic's Revision: the same labels, each once
        branch_labels=tuple(dict.fromkeys(fields["branch_labels"])),
        depends_on=fields["depends_on"],
        sha256=sha256,
    )


def _as_tuple(value: object) -> tuple[str, ...] | None:
    """Alembic's `util.to_tuple(value, default=())` when every item is a string,
    else None; a set sorted, where Alembic's order is the hash's of this process."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable):
        return None
    try:
        items = tuple(value)
    except Exception:  # an iterable from imported code
        return None
    if not all(isinstance(item, str) for item in items):
        return None
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(items))
    return items


def source(file: RevisionFile) -> str:
    """Return a revision file's source text, decoded as Python decodes it."""
    if file.text is not None:
        return file.text
    try:
        return importlib.util.decode_source(file.path.read_bytes())
    except OSError as err:
        raise RevisionGraphError(
            f"{file.path.name}: cannot read: {err.strerror}"
        ) from err
    except (SyntaxError, UnicodeDecodeError, LookupError) as err:
        raise RevisionGraphError(f"{file.path.name}: cannot decode: {err}") from err


def file_checksum(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise RevisionGraphError(f"{path.name}: cannot read: {err}") from err
