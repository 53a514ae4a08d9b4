"""URLs: how migplan spells, shows and reads them."""

from __future__ import annotations

import importlib.util

import pytest

from migplan.db import database


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
    assert database.normalize_url(url) == expected


@pytest.mark.skipif(
    importlib.util.find_spec("MySQLdb") is not None, reason="mysqlclient is installed"
)
def test_mysql_without_a_driver_uses_pymysql():
    assert (
        database.normalize_url("mysql://root@db/app") == "mysql+pymysql://root@db/app"
    )
    assert (
        database.normalize_url("mariadb://root@db/app")
        == "mariadb+pymysql://root@db/app"
    )


def test_display_url_hides_the_password():
    assert database.display_url("postgresql://app:s3cr3t@db:5432/prod") == (
        "postgresql://app:***@db:5432/prod"
    )


def test_dialect_name():
    assert database.dialect_name("sqlite:////tmp/x.db") == "sqlite"
    assert database.dialect_name("mariadb+pymysql://root@db/app") == "mysql"
    assert database.dialect_name("postgresql://db/app") == "postgresql"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:////abs/dev.db", "/abs/dev.db"),
        ("sqlite:///rel.db", "rel.db"),
        ("sqlite://", ""),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite:///x.db?timeout=5", None),
        ("postgresql://db/app", None),
    ],
)
def test_sqlite_file(url, path):
    assert database.sqlite_file(url) == path


def test_search_path_of_a_tenant_schema():
    from migplan.service.fleet import with_search_path

    url = with_search_path("postgresql://db/app", "Acme")
    assert database.search_path(url) == '"Acme"'
    assert database.search_path("postgresql://db/app") is None
