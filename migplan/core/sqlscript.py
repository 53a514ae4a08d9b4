"""A SQL script as the statements a driver runs one at a time. Pure.

A database's own dump (pg_dump, mariadb-dump, sqlite3's iterdump) is a script for
its client: statements end with `;`, except inside quotes, comments, PostgreSQL's
dollar quotes, SQLite's trigger bodies and MySQL's `DELIMITER` blocks. Drivers
take one statement per call (PyMySQL, sqlite3 inside a transaction), so loading a
checkpoint splits its script the way the client would.
"""

from __future__ import annotations

import re

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_DELIMITER = re.compile(r"[ \t]*DELIMITER[ \t]+(\S+)[ \t]*(?:\r?\n|$)", re.I)
_TRIGGER = re.compile(r"\s*CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TRIGGER\b", re.I)
_END = re.compile(r"\bEND\s*$", re.I)


class ScriptError(ValueError):
    """A script that does not end where its quotes or comments do."""


def split(script: str, dialect: str) -> list[str]:
    """Return the statements of `script`, each without its terminator; comments
    between statements are dropped, comments inside one are kept (MySQL's
    `/*!40101 ... */` are statements)."""
    statements: list[str] = []
    delimiter = ";"
    start = 0
    i = 0
    n = len(script)
    mysql = dialect == "mysql"
    special = _special(delimiter, mysql)
    while i < n:
        if mysql and _at_line_start(script, i):
            found = _DELIMITER.match(script, i)
            if found and not _code(script[start:i], True):
                delimiter = found.group(1)
                special = _special(delimiter, mysql)
                i = start = found.end()
                continue
        # jump to the next character that may start or end something
        next_one = special.search(script, i)
        if next_one is None:
            break
        i = next_one.start()
        char = script[i]
        if char == "\n":
            i += 1  # a MySQL line start, where DELIMITER may stand
            continue
        if script.startswith(delimiter, i):
            body = script[start:i]
            if (
                dialect == "sqlite"
                and _TRIGGER.match(_code(body))
                and not _END.search(_code(body))
            ):
                i += len(delimiter)  # inside the trigger's BEGIN ... END
                continue
            _keep(statements, body, mysql)
            i += len(delimiter)
            start = i
        elif char == "-" and script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif char == "#" and mysql:
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif char == "/" and script.startswith("/*", i):
            end = script.find("*/", i + 2)
            if end < 0:
                raise ScriptError("a /* comment is not closed")
            i = end + 2
        elif char in "'\"`":
            i = _quoted_end(script, i, char, backslash=mysql and char != "`")
        elif char == "$" and dialect == "postgresql":
            found = _DOLLAR.match(script, i)
            if found and (i == 0 or not _is_word(script[i - 1])):
                tag = found.group(0)
                end = script.find(tag, found.end())
                if end < 0:
                    raise ScriptError(f"a {tag} quote is not closed")
                i = end + len(tag)
            else:
                i += 1
        else:
            i += 1
    _keep(statements, script[start:], mysql)
    return statements


def _special(delimiter: str, mysql: bool) -> re.Pattern[str]:
    chars = ";'\"`$/-" + delimiter[0] + ("#\n" if mysql else "")
    return re.compile("[" + re.escape("".join(sorted(set(chars)))) + "]")


def join(statements: list[str], dialect: str) -> str:
    """Return a script of `statements` that `split` reads back as they are (MySQL
    statements with a `;` of their own inside go between DELIMITER lines)."""
    out = []
    for statement in statements:
        if (
            dialect == "mysql"
            and ";" in statement
            and split(statement + ";", dialect) != [statement]
        ):
            out.append(f"DELIMITER ;;\n{statement};;\nDELIMITER ;\n")
        else:
            out.append(f"{statement};\n")
    return "".join(out)


def strip_comments(statement: str) -> str:
    """A statement without the `--` comment lines a dump heads it with."""
    return _code(statement).strip()


def _keep(statements: list[str], body: str, mysql: bool) -> None:
    lines = body.strip().splitlines()
    while lines and _is_comment(lines[0], mysql):
        lines.pop(0)  # a dump's heading of the statement, not the statement
    if _code("\n".join(lines), mysql):
        statements.append("\n".join(lines).strip())


def _is_comment(line: str, mysql: bool = False) -> bool:
    bare = line.lstrip()
    return not bare or bare.startswith("--") or (mysql and bare.startswith("#"))


def _code(text: str, mysql: bool = False) -> str:
    """`text` without its comment lines (a dump heads statements with them)."""
    return "\n".join(
        line for line in text.splitlines() if not _is_comment(line, mysql)
    ).strip()


def _at_line_start(script: str, i: int) -> bool:
    return i == 0 or script[i - 1] == "\n"


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _quoted_end(script: str, i: int, quote: str, *, backslash: bool) -> int:
    """The index after the quoted text starting at `i` (doubled quotes and, in
    MySQL strings, backslashes escape)."""
    j = i + 1
    n = len(script)
    while j < n:
        char = script[j]
        if backslash and char == "\\":
            j += 2
            continue
        if char == quote:
            if j + 1 < n and script[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    raise ScriptError(f"a {quote} quote is not closed")
