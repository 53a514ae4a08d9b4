"""Read a revision's source and find what deserves a flag: destructive operations,
operations that hold long locks on PostgreSQL, downgrades that cannot run, and
files that cannot run at all (a syntax error, no upgrade()).

Pure: takes source text, returns findings. Nothing is imported or executed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any
from typing import Literal

Kind = Literal["broken", "irreversible", "destructive", "locking"]
Direction = Literal["upgrade", "downgrade"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One flagged operation of a migration function."""

    kind: Kind
    operation: str
    line: int

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape of this finding."""
        return {"kind": self.kind, "operation": self.operation, "line": self.line}


@dataclass(frozen=True, slots=True)
class Analysis:
    """The findings of one revision file, per direction."""

    upgrade: tuple[Finding, ...] = ()
    downgrade: tuple[Finding, ...] = ()
    irreversible: str | None = None
    broken: Finding | None = None
    """Why the file cannot run at all (a syntax error), if it cannot."""
    no_upgrade: bool = False

    def findings(self, direction: Direction) -> tuple[Finding, ...]:
        """Return the findings of the migration run in `direction`."""
        if self.broken is not None:
            return (self.broken,)
        found = self.upgrade if direction == "upgrade" else self.downgrade
        if self.irreversible:
            found = (Finding("irreversible", self.irreversible, 0), *found)
        if self.no_upgrade and direction == "upgrade":
            found = (Finding("broken", "no upgrade() function", 0), *found)
        return found

    def flags(self, direction: Direction) -> tuple[Kind, ...]:
        """Return the kinds of finding, sorted, each once."""
        return tuple(sorted({f.kind for f in self.findings(direction)}))

    def to_list(self) -> list[object]:
        """Return the analysis as plain data (for a cache)."""
        broken = self.broken
        return [
            [[f.kind, f.operation, f.line] for f in self.upgrade],
            [[f.kind, f.operation, f.line] for f in self.downgrade],
            self.irreversible,
            None if broken is None else [broken.operation, broken.line],
            self.no_upgrade,
        ]

    @classmethod
    def from_list(cls, data: list[Any]) -> Analysis:
        """Read an analysis back from `to_list`'s plain data (ValueError or
        TypeError if it is not that shape)."""
        upgrade, downgrade, irreversible, broken, no_upgrade = data

        def finding(kind: Any, operation: Any, line: Any) -> Finding:
            if kind not in ("broken", "irreversible", "destructive", "locking"):
                raise ValueError(f"not a kind of finding: {kind!r}")
            return Finding(kind, str(operation), int(line))

        return cls(
            tuple(finding(k, o, n) for k, o, n in upgrade),
            tuple(finding(k, o, n) for k, o, n in downgrade),
            None if irreversible is None else str(irreversible),
            None if broken is None else finding("broken", *broken),
            bool(no_upgrade),
        )


_DESTRUCTIVE_SQL = re.compile(
    r"\b(DROP\s+TABLE|DROP\s+COLUMN|TRUNCATE|DROP\s+SCHEMA)\b", re.I
)
_LOCKING_SQL = (
    (
        re.compile(r"\bCREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)", re.I),
        "CREATE INDEX without CONCURRENTLY blocks writes",
    ),
    (
        re.compile(r"\bSET\s+NOT\s+NULL\b", re.I),
        "SET NOT NULL scans the table under an exclusive lock",
    ),
    (
        re.compile(r"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b", re.I),
        "a column type change rewrites the table under an exclusive lock",
    ),
)
_VOLATILE = re.compile(
    r"\b(random|gen_random_uuid|uuid_generate_v[14]|clock_timestamp|"
    r"timeofday|nextval|txid_current)\s*\(",
    re.I,
)


def analyze(source: str | None) -> Analysis:
    """Return the findings of a revision file's `upgrade` and `downgrade`."""
    if source is None:
        return Analysis()
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        what = f"syntax error: {err.msg}"
        return Analysis(broken=Finding("broken", what, err.lineno or 0))
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    upgrade = _findings(_family(functions, "upgrade"))
    downgrade = _findings(_family(functions, "downgrade"))
    irreversible = _irreversible(functions)
    if irreversible == "no downgrade() function" and _binds(tree, "downgrade"):
        irreversible = None  # assigned or imported: it exists, unread
    return Analysis(
        upgrade,
        downgrade,
        irreversible,
        no_upgrade="upgrade" not in functions and not _binds(tree, "upgrade"),
    )


def _binds(tree: ast.Module, name: str) -> bool:
    """Whether the module binds `name` at its top level some other way than `def`
    (an assignment, an import, a class): it has such a function, made elsewhere."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name.split(".")[0]) == name for a in node.names):
                return True
            if any(a.name == "*" for a in node.names):
                return True
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            if node.id == name:
                return True
        elif isinstance(node, ast.ClassDef) and node.name == name:
            return True
    return False


def _family(
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef], name: str
) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    # multi-database revisions dispatch upgrade(engine_name) to upgrade_<engine>()
    return [f for n, f in functions.items() if n == name or n.startswith(name + "_")]


def _irreversible(
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef],
) -> str | None:
    downgrade = functions.get("downgrade")
    if downgrade is None:
        return "no downgrade() function"
    family = _family(functions, "downgrade")
    if any(_raises(f) for f in family):
        return "downgrade() raises"
    if all(_is_empty(f) for f in family) and not all(
        _is_empty(f) for f in _family(functions, "upgrade")
    ):
        return "downgrade() is empty"
    return None


def _is_empty(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for statement in function.body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and isinstance(
            statement.value, ast.Constant
        ):
            continue  # a docstring or `...`
        if _is_dispatch(statement):
            continue
        return False
    return True


def _is_dispatch(statement: ast.stmt) -> bool:
    """`globals()["upgrade_%s" % engine_name]()`, as multi-database templates write."""
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Call)
        and isinstance(statement.value.func, ast.Subscript)
        and isinstance(statement.value.func.value, ast.Call)
        and isinstance(statement.value.func.value.func, ast.Name)
        and statement.value.func.value.func.id == "globals"
    )


def _raises(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(node, ast.Raise) for node in _own_nodes(function))


def _own_nodes(function: ast.AST) -> list[ast.AST]:
    """Nodes of a function's body, not descending into nested functions."""
    found: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _findings(
    functions: list[ast.FunctionDef | ast.AsyncFunctionDef],
) -> tuple[Finding, ...]:
    found: list[Finding] = []
    for function in functions:
        batch_tables = _batch_tables(function)
        for node in _own_nodes(function):
            if isinstance(node, ast.Call):
                found.extend(_call_findings(node, batch_tables))
    return tuple(sorted(set(found), key=lambda f: (f.line, f.kind, f.operation)))


def _batch_tables(function: ast.AST) -> dict[str, str]:
    """Map `batch_op` names to their table: `with op.batch_alter_table("t") as b:`."""
    tables: dict[str, str] = {}
    for node in _own_nodes(function):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                call = item.context_expr
                if (
                    isinstance(call, ast.Call)
                    and _method(call) == "batch_alter_table"
                    and isinstance(item.optional_vars, ast.Name)
                ):
                    tables[item.optional_vars.id] = _arg(call, 0, "table_name") or "?"
    return tables


def _method(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def _receiver(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
        return call.func.value.id
    return None


def _arg(call: ast.Call, index: int, keyword: str) -> str | None:
    node: ast.expr | None = None
    if len(call.args) > index and not any(
        isinstance(a, ast.Starred) for a in call.args[: index + 1]
    ):
        node = call.args[index]
    for kw in call.keywords:
        if kw.arg == keyword:
            node = kw.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _call_findings(call: ast.Call, batch_tables: dict[str, str]) -> list[Finding]:
    method = _method(call)
    line = call.lineno
    batch_table = batch_tables.get(_receiver(call) or "")
    # in a batch, the table is implied and every positional argument shifts by one
    shift = 0 if batch_table is not None else 1

    def table() -> str:
        return (
            batch_table
            if batch_table is not None
            else _arg(call, 0, "table_name") or "?"
        )

    if method == "drop_table":
        return [
            Finding(
                "destructive", f"drop table {_arg(call, 0, 'table_name') or '?'}", line
            )
        ]
    if method == "drop_column":
        column = _arg(call, shift, "column_name") or "?"
        return [Finding("destructive", f"drop column {table()}.{column}", line)]
    if method == "alter_column":
        return _alter_findings(
            call, f"{table()}.{_arg(call, shift, 'column_name') or '?'}"
        )
    if method == "create_index":
        concurrently = _keyword(call, "postgresql_concurrently")
        if not (isinstance(concurrently, ast.Constant) and concurrently.value is True):
            name = _arg(call, 0, "index_name") or "?"
            return [
                Finding(
                    "locking",
                    f"create index {name} without postgresql_concurrently=True blocks writes",
                    line,
                )
            ]
    if method == "add_column":
        return _add_column_findings(call, table(), line)
    if method == "execute" or method == "exec_driver_sql":
        sql = _sql_text(call)
        if sql is not None:
            return _sql_findings(sql, line)
    return []


def _sql_text(call: ast.Call) -> str | None:
    if not call.args:
        return None
    node = call.args[0]
    if isinstance(node, ast.Call) and node.args and _callee(node) == "text":
        node = node.args[0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value
            for v in node.values
            if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    return None


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _sql_findings(sql: str, line: int) -> list[Finding]:
    found: list[Finding] = []
    for match in _DESTRUCTIVE_SQL.finditer(sql):
        found.append(
            Finding("destructive", " ".join(match.group(1).split()).upper(), line)
        )
    for pattern, why in _LOCKING_SQL:
        if pattern.search(sql):
            found.append(Finding("locking", why, line))
    return found


def _add_column_findings(call: ast.Call, table: str, line: int) -> list[Finding]:
    column = next(
        (a for a in call.args if isinstance(a, ast.Call) and _callee(a) == "Column"),
        None,
    )
    column = column or _keyword(call, "column")  # type: ignore[assignment]
    if not isinstance(column, ast.Call):
        return []
    name = _arg(column, 0, "name") or "?"
    default = _keyword(column, "server_default")
    if default is not None and _VOLATILE.search(ast.unparse(default)):
        return [
            Finding(
                "locking",
                f"add column {table}.{name} with a volatile default rewrites the table",
                line,
            )
        ]
    return []


def _alter_findings(call: ast.Call, column: str) -> list[Finding]:
    found: list[Finding] = []
    line = call.lineno
    nullable = _keyword(call, "nullable")
    if isinstance(nullable, ast.Constant) and nullable.value is False:
        found.append(
            Finding(
                "locking",
                f"set {column} NOT NULL scans the table under an exclusive lock",
                line,
            )
        )
    new_type = _keyword(call, "type_")
    if new_type is not None:
        found.append(
            Finding("locking", f"change the type of {column}: rewrites the table", line)
        )
        old_type = _keyword(call, "existing_type")
        if old_type is not None and _narrows(old_type, new_type):
            found.append(
                Finding(
                    "destructive",
                    f"narrow {column} from {ast.unparse(old_type)} to {ast.unparse(new_type)}",
                    line,
                )
            )
    return found


_WIDTH = {
    "SmallInteger": 1,
    "SMALLINT": 1,
    "Integer": 2,
    "INTEGER": 2,
    "INT": 2,
    "BigInteger": 3,
    "BIGINT": 3,
}
_TEXTUAL = {
    "String",
    "VARCHAR",
    "CHAR",
    "Unicode",
    "NVARCHAR",
    "Text",
    "TEXT",
    "UnicodeText",
}


def _narrows(old: ast.expr, new: ast.expr) -> bool:
    """Whether a type change can lose data: shorter strings, smaller integers,
    text to anything else."""
    old_name, old_len = _type_shape(old)
    new_name, new_len = _type_shape(new)
    if old_name in _TEXTUAL and new_name in _TEXTUAL:
        if old_len is None:
            return new_len is not None
        return new_len is not None and new_len < old_len
    if old_name in _WIDTH and new_name in _WIDTH:
        return _WIDTH[new_name] < _WIDTH[old_name]
    if old_name in _TEXTUAL and new_name not in _TEXTUAL:
        return True
    return False


def _type_shape(node: ast.expr) -> tuple[str | None, int | None]:
    call = node if isinstance(node, ast.Call) else None
    func = call.func if call else node
    name = (
        func.attr
        if isinstance(func, ast.Attribute)
        else func.id
        if isinstance(func, ast.Name)
        else None
    )
    length: int | None = None
    if call is not None:
        first = call.args[0] if call.args else _keyword(call, "length")
        if isinstance(first, ast.Constant) and isinstance(first.value, int):
            length = first.value
    return name, length
