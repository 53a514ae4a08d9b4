"""Read what a revision file declares (revision, down_revision, branch_labels,
depends_on, its docstring) from its source, without importing it when it need not."""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import replace
from pathlib import Path

from migplan import compat
from migplan.core.revisions import RevisionFile
from migplan.core.revisions import as_revisions
from migplan.errors import RevisionGraphError

_ASSIGNMENT = re.compile(
    r"^(revision|down_revision|branch_labels|depends_on)[ \t]*(?::[^=\n]*)?=(?!=)[ \t]*",
    re.M,
)
_DOCSTRING = re.compile(r"\A(?:\s*#[^\n]*\n)*\s*([rRuU]{0,2})(\"\"\"|'''|\"|')")
# an assignment Python would run that the fast path cannot see: let ast decide
_NESTED_ASSIGNMENT = re.compile(
    r"^[ \t]+(revision|down_revision|branch_labels|depends_on)[ \t]*(?::[^=\n]*)?=(?!=)",
    re.M,
)


def read(path: Path) -> RevisionFile:
    """Read a revision file's identifiers and docstring from its source."""
    try:
        data = path.read_bytes()
        source = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RevisionGraphError(f"{path.name}: cannot read: {err}") from err
    sha256 = hashlib.sha256(data).hexdigest()
    found = _scan_source(source)
    if found is None:
        found = _scan_ast(path, source)
    if found is None:
        return replace(_from_import(path), sha256=sha256)
    values, longdoc = found
    revision = values.get("revision")
    if not isinstance(revision, str):
        return replace(_from_import(path), sha256=sha256)
    try:
        return RevisionFile(
            revision=revision,
            down_revision=as_revisions(values.get("down_revision")),
            path=path,
            longdoc=longdoc,
            branch_labels=as_revisions(values.get("branch_labels")),
            depends_on=as_revisions(values.get("depends_on")),
            sha256=sha256,
        )
    except TypeError:
        return replace(_from_import(path), sha256=sha256)


def _scan_source(source: str) -> tuple[dict[str, object], str] | None:
    """Fast path: top-level literal assignments and the docstring, by pattern."""
    if _NESTED_ASSIGNMENT.search(source):
        return None
    values: dict[str, object] = {}
    for match in _ASSIGNMENT.finditer(source):
        expression = _expression_at(source, match.end())
        if expression is None:
            return None
        try:
            values[match.group(1)] = ast.literal_eval(expression)
        except (ValueError, SyntaxError):
            return None
    if "revision" not in values:
        return None
    longdoc = ""
    doc = _DOCSTRING.match(source)
    if doc:
        quote = doc.group(2)
        end = source.find(quote, doc.end())
        while end != -1 and len(quote) == 1 and source[end - 1] == "\\":
            end = source.find(quote, end + 1)
        if end == -1:
            return None
        try:
            text = ast.literal_eval(source[doc.start(1) : end + len(quote)])
        except (ValueError, SyntaxError):
            return None
        if isinstance(text, str):
            longdoc = text.strip()
    return values, longdoc


def _expression_at(source: str, start: int) -> str | None:
    """Return the expression that starts at `start` and ends with its line."""
    depth = 0
    quote = ""
    i = start
    while i < len(source):
        char = source[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if source.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif char in "\"'":
            quote = source[i : i + 3] if source[i : i + 3] in ('"""', "'''") else char
            i += len(quote)
            continue
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "#":
            newline = source.find("\n", i)
            i = len(source) if newline == -1 else newline
            continue
        elif char == "\n" and depth <= 0:
            break
        i += 1
    if quote:
        return None
    return source[start:i].strip() or None


def _scan_ast(path: Path, source: str) -> tuple[dict[str, object], str] | None:
    """Slower path: module-level literal assignments, found by parsing."""
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as err:
        raise RevisionGraphError(f"{path.name}:{err.lineno}: {err.msg}") from err
    names = ("revision", "down_revision", "branch_labels", "depends_on")
    top_level = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            assigned = any(isinstance(t, ast.Name) and t.id in names for t in targets)
            if assigned and (
                id(node) not in top_level or isinstance(node, ast.AugAssign)
            ):
                return None
    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            name_node, value_node = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            name_node, value_node = node.target, node.value
        else:
            continue
        if isinstance(name_node, ast.Name) and name_node.id in names:
            try:
                values[name_node.id] = ast.literal_eval(value_node)
            except ValueError:
                return None
    if "revision" not in values:
        return None
    return values, (ast.get_docstring(tree) or "").strip()


def _from_import(path: Path) -> RevisionFile:
    """Last resort, as Alembic does it: import the file and read its attributes."""
    try:
        module = compat.load_python_file(path)
    except Exception as err:  # a revision file may raise anything on import
        raise RevisionGraphError(f"{path.name}: cannot import: {err}") from err
    revision = getattr(module, "revision", None)
    if not isinstance(revision, str):
        raise RevisionGraphError(f"{path.name}: no 'revision' variable declared")
    return RevisionFile(
        revision=revision,
        down_revision=as_revisions(getattr(module, "down_revision", None)),
        path=path,
        longdoc=(module.__doc__ or "").strip(),
        branch_labels=as_revisions(getattr(module, "branch_labels", None)),
        depends_on=as_revisions(getattr(module, "depends_on", None)),
    )


def source(file: RevisionFile) -> str:
    """Return a revision file's source text."""
    if file.text is not None:
        return file.text
    try:
        return file.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RevisionGraphError(f"{file.path.name}: cannot read: {err}") from err


def file_checksum(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise RevisionGraphError(f"{path.name}: cannot read: {err}") from err
