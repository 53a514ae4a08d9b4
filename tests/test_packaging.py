"""What a user installs: the package's data files are declared, installed, and the
editors' copy of the schema is the one the package reads.

The wheel and the sdist themselves are built and tried by .ci/wheel-smoke.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

if TYPE_CHECKING:
    from importlib.abc import Traversable

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "migplan"
SCHEMA = "project/migplan.schema.json"


def _data_files() -> set[str]:
    """Every file of the source tree's package that is not a module."""
    return {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and path.suffix not in (".py", ".pyc")
        and "__pycache__" not in path.parts
    }


def test_editors_schema_is_the_packaged_schema() -> None:
    editors = ROOT / "schemas" / "migplan.schema.json"
    assert editors.is_file(), f"{editors} is missing: copy migplan/{SCHEMA} there"
    assert editors.read_bytes() == (PACKAGE / SCHEMA).read_bytes(), (
        f"schemas/migplan.schema.json differs from migplan/{SCHEMA}: "
        f"edit migplan/{SCHEMA}, then copy it to schemas/"
    )


def test_package_data_covers_every_data_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["migplan"]
    declared = {
        path.relative_to(PACKAGE).as_posix()
        for pattern in patterns
        for path in PACKAGE.glob(pattern)
        if path.is_file()
    }
    assert _data_files() - declared == set()


def _installed(name: str) -> Traversable:
    """The file `name` ("a/b") of the migplan package that Python imports."""
    found = resources.files("migplan")
    for part in name.split("/"):  # Python 3.10's joinpath takes one name
        found = found / part
    return found


def test_installed_package_has_every_data_file() -> None:
    # run against a wheel (.ci/matrix), this checks what the wheel installed
    missing = {name for name in _data_files() if not _installed(name).is_file()}
    assert missing == set()
    assert _installed(SCHEMA).read_bytes() == (PACKAGE / SCHEMA).read_bytes()
