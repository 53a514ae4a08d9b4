"""core.sqlscript: a dump split into the statements its client would run. Pure."""

from __future__ import annotations

import sqlite3

import pytest

from migplan.core import sqlscript


def test_semicolons_inside_quotes_and_comments_do_not_end_a_statement():
    script = (
        "-- a comment; not a statement\n"
        "INSERT INTO t VALUES ('a;b', 'it''s; fine');\n"
        '/* block; comment */ CREATE TABLE "odd;name" (x int);\n'
    )
    assert sqlscript.split(script, "postgresql") == [
        "INSERT INTO t VALUES ('a;b', 'it''s; fine')",
        '/* block; comment */ CREATE TABLE "odd;name" (x int)',
    ]


def test_postgresql_dollar_quoted_bodies_are_one_statement():
    script = (
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
        "BEGIN NEW.x := 1; RETURN NEW; END;\n$fn$;\n"
        "CREATE TABLE a$b (x int);\n"
        "SELECT $$one; two$$;\n"
    )
    found = sqlscript.split(script, "postgresql")
    assert len(found) == 3
    assert found[0].endswith("$fn$")
    assert found[1] == "CREATE TABLE a$b (x int)"


def test_sqlite_trigger_bodies_are_one_statement_as_sqlite_itself_says():
    connection = sqlite3.connect(":memory:")
    connection.executescript(
        "CREATE TABLE t (x INTEGER, y TEXT);"
        "CREATE TABLE audit (x INTEGER);"
        "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN "
        "INSERT INTO audit VALUES (NEW.x); UPDATE t SET y = 'end;' WHERE x = NEW.x; END;"
        "CREATE VIEW v AS SELECT x FROM t;"
        "INSERT INTO t VALUES (1, 'a');"
    )
    dumped = [
        line
        for line in connection.iterdump()
        if line not in ("BEGIN TRANSACTION;", "COMMIT;")
    ]
    script = "\n".join(dumped) + "\n"
    found = sqlscript.split(script, "sqlite")
    assert [sqlite3.complete_statement(s + ";") for s in found] == [True] * len(found)
    copy = sqlite3.connect(":memory:")
    for statement in found:
        copy.execute(statement)
    assert copy.execute("SELECT count(*) FROM audit").fetchone() == (1,)
    copy.execute("INSERT INTO t VALUES (2, 'b')")  # the trigger came across whole
    assert copy.execute("SELECT y FROM t WHERE x = 2").fetchone() == ("end;",)
    trigger = [s for s in found if "CREATE TRIGGER" in s]
    assert len(trigger) == 1 and trigger[0].rstrip().endswith("END")


def test_mysql_delimiter_blocks_backslashes_and_executable_comments():
    script = (
        "/*!40101 SET NAMES utf8mb4 */;\n"
        "INSERT INTO t VALUES ('a\\';b');\n"
        "# a hash comment; here\n"
        "DELIMITER ;;\n"
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.x = 1; END ;;\n"
        "DELIMITER ;\n"
        "SELECT `a;b` FROM t;\n"
    )
    assert sqlscript.split(script, "mysql") == [
        "/*!40101 SET NAMES utf8mb4 */",
        "INSERT INTO t VALUES ('a\\';b')",
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.x = 1; END",
        "SELECT `a;b` FROM t",
    ]


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_join_is_read_back_by_split(dialect: str):
    statements = [
        "CREATE TABLE t (x int)",
        "INSERT INTO t VALUES ('a;b')",
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.x = 1; END"
        if dialect == "mysql"
        else "SELECT 1",
    ]
    assert sqlscript.split(sqlscript.join(statements, dialect), dialect) == statements


@pytest.mark.parametrize(
    "script", ["SELECT 'open;", "SELECT 1 /* open", "SELECT $x$ open;"]
)
def test_an_unclosed_quote_or_comment_is_an_error(script: str):
    with pytest.raises(sqlscript.ScriptError):
        sqlscript.split(script, "postgresql")
