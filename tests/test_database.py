"""URLs: how migplan spells, shows and reads them."""

from __future__ import annotations

import importlib.util

import pytest

from migplan.core.url import DatabaseURL
from migplan.project.config import normalize_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db/app", "postgresql://u:p@db/app"),
        ("postgresql://u:p@db/app", "postgresql://u:p@db/app"),
        ("sqlite:///dev.db", "sqlite:///dev.db"),
        ("mysql+pymysql://root@db/app", "mysql+pymysql://root@db/app"),
    ],
)
def test_normalize_url(url, expected):
    assert normalize_url(url) == expected


@pytest.mark.skipif(
    importlib.util.find_spec("MySQLdb") is not None, reason="mysqlclient is installed"
)
def test_mysql_without_a_driver_uses_pymysql():
    assert normalize_url("mysql://root@db/app") == "mysql+pymysql://root@db/app"
    assert normalize_url("mariadb://root@db/app") == "mariadb+pymysql://root@db/app"


def test_display_url_hides_the_password():
    url = DatabaseURL.parse("postgresql://app:s3cr3t@db:5432/prod")
    assert url.display == "postgresql://app:***@db:5432/prod"
    assert "s3cr3t" not in str(url) and "s3cr3t" not in repr(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://app@db/prod?password=s3cr3t",
            "postgresql://app@db/prod?password=***",
        ),
        (
            "postgresql://app@db/prod?sslmode=require&sslpassword=s3cr3t&x=1",
            "postgresql://app@db/prod?sslmode=require&sslpassword=***&x=1",
        ),
        (
            "mysql+pymysql://u@db/app?passwd=s3cr3t",
            "mysql+pymysql://u@db/app?passwd=***",
        ),
        ("mssql+pyodbc://u@dsn?PWD=s3cr3t", "mssql+pyodbc://u@dsn?PWD=***"),
        ("postgresql://a:p%40ss%3Aw%2Fd@db/x", "postgresql://a:***@db/x"),
    ],
)
def test_display_url_hides_secrets_wherever_they_sit(url, shown):
    assert DatabaseURL.parse(url).display == shown


def test_dialect_name():
    assert DatabaseURL.parse("sqlite:////tmp/x.db").dialect == "sqlite"
    assert DatabaseURL.parse("mariadb+pymysql://root@db/app").dialect == "mysql"
    assert DatabaseURL.parse("postgresql://db/app").dialect == "postgresql"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:////abs/dev.db", "/abs/dev.db"),
        ("sqlite:///rel.db", "rel.db"),
        ("sqlite://", ""),
        ("sqlite:///:memory:", ":memory:"),
        # options do not hide the file: migplan reads it read-only all the same
        ("sqlite:///x.db?timeout=5", "x.db"),
        ("postgresql://db/app", None),
    ],
)
def test_sqlite_path(url, path):
    assert DatabaseURL.parse(url).sqlite_path == path


def test_search_path_of_a_tenant_schema():
    url = DatabaseURL.parse("postgresql://db/app").with_search_path("Acme")
    assert url.schema == '"Acme"'
    assert DatabaseURL.parse("postgresql://db/app").schema is None


def test_a_malformed_url_is_refused_without_echoing_it():
    with pytest.raises(Exception) as caught:
        DatabaseURL.parse("postgresql//app:s3cr3t@db")
    assert str(caught.value) == "not a valid database URL"
