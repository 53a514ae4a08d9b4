"""Reading revision files: without importing them, and with a cache that is never
trusted when a file changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import linear_project

from migplan.errors import RevisionGraphError
from migplan.project import cache
from migplan.project.config import load_config
from migplan.project.history import cache_key
from migplan.project.revision_files import read as read_revision_file


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("header", "down", "labels"),
    [
        ("revision = 'b2'\ndown_revision = 'a1'\n", ("a1",), ()),
        ("revision: str = 'b2'\ndown_revision: Union[str, None] = 'a1'\n", ("a1",), ()),
        (
            "revision = 'b2'\ndown_revision = ('a1',\n    'x9')  # merge\n",
            ("a1", "x9"),
            (),
        ),
        (
            "revision = \"b2\"\ndown_revision = ['a1']\nbranch_labels = ('side',)\n",
            ("a1",),
            ("side",),
        ),
        ("revision = 'b2'\ndown_revision = None\n", (), ()),
    ],
)
def test_identifiers_are_read_from_the_source(tmp_path, header, down, labels):
    path = write(
        tmp_path / "b2.py",
        f'"""add email\n\nRevision ID: b2\n"""\n{header}\nraise SystemExit("never imported")\n',
    )
    file = read_revision_file(path)
    assert (file.revision, file.down_revision, file.branch_labels) == (
        "b2",
        down,
        labels,
    )
    assert file.message == "add email"


def test_computed_identifiers_are_imported_as_alembic_does(tmp_path):
    path = write(
        tmp_path / "c3.py", "PARENT = 'b2'\nrevision = 'c3'\ndown_revision = PARENT\n"
    )
    assert read_revision_file(path).down_revision == ("b2",)


def test_a_conditional_assignment_is_not_misread(tmp_path):
    path = write(
        tmp_path / "c3.py",
        "import os\nrevision = 'c3'\nif os.environ.get('NEVER_SET'):\n    down_revision = 'x'\nelse:\n    down_revision = 'b2'\n",
    )
    assert read_revision_file(path).down_revision == ("b2",)


def test_a_revision_file_that_raises_is_reported(tmp_path):
    path = write(tmp_path / "c3.py", "revision = compute()\n")
    with pytest.raises(
        RevisionGraphError, match=r"c3.py: cannot import: name 'compute' is not defined"
    ):
        read_revision_file(path)


def _graph(project):
    return load_config(project.root / "migplan.yaml").graph


def test_the_listing_takes_revision_files_only(project, sqlite_url, tmp_path):
    # a revision linked in from elsewhere counts; a dangling link, a folder named
    # like a revision, __init__.py, an editor's .# lock and other files do not
    # (as before the listing used a folder descriptor); and the paths are those
    # in the folder, read twice (the second time from the cache)
    linear_project(project, sqlite_url, "a1")
    elsewhere = project.add_revision("c3", "a1")
    target = tmp_path / "kept" / elsewhere.name
    target.parent.mkdir()
    elsewhere.rename(target)
    (project.versions / elsewhere.name).symlink_to(target)
    (project.versions / "d4_gone.py").symlink_to(tmp_path / "nothing.py")
    (project.versions / "e5_folder.py").mkdir()
    (project.versions / "__init__.py").write_text("")
    (project.versions / ".#c3_lock.py").write_text("revision = 'zz'\n")
    (project.versions / "notes.txt").write_text("revision = 'yy'\n")
    for _ in range(2):
        graph = _graph(project)
        assert set(graph.files) == {"a1", "c3"}
        assert graph.heads == ("c3",)
        assert graph.relative_path("c3") == f"migrations/versions/{elsewhere.name}"


def test_the_cache_notices_changed_added_and_deleted_files(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")
    assert _graph(project).heads == ("b2",)
    key = cache_key(project.root / "migrations")
    assert cache.load("graph", key)["revs"] == ["a1", "b2"]

    # changed: same size, new mtime
    b2 = next(project.versions.glob("b2_*.py"))
    b2.write_text(b2.read_text().replace("'a1'", "None"))
    os.utime(b2, ns=(b2.stat().st_atime_ns, b2.stat().st_mtime_ns + 10**9))
    assert _graph(project).heads == ("a1", "b2")

    project.add_revision("c3", "a1")
    assert _graph(project).heads == ("b2", "c3")

    b2.unlink()
    assert _graph(project).heads == ("c3",)


def test_a_corrupt_cache_is_ignored(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")
    _graph(project)
    for path in cache.folder().glob("*.json"):
        path.write_text("{not json")
    assert _graph(project).heads == ("b2",)


def test_a_cache_entry_that_lies_is_not_trusted(project, sqlite_url):
    linear_project(project, sqlite_url, "a1", "b2")
    _graph(project)
    key = cache_key(project.root / "migrations")
    files = cache.load("revision-files", key)
    for entry in files.values():
        entry[0][1] += 1  # an mtime the files do not have: read them again
        entry[1] = "forged"
    cache.store("revision-files", key, files)
    snapshot = cache.load("graph", key)
    snapshot["listing"] = "0" * 64  # of files the folder does not hold
    snapshot["revs"] = ["forged", "b2"]
    cache.store("graph", key, snapshot)
    assert set(_graph(project).files) == {"a1", "b2"}


def test_the_listing_digest_changes_with_any_path_or_stamp():
    # the snapshot is used when the digest of the folder's listing matches: any
    # renamed file, size, mtime or inode (even one past 2**63, as some file
    # systems give) makes another digest
    from migplan.project.history import _listing

    names, stamps = ["/m/v/a1_x.py", "/m/v/b2_y.py"], [10, 1_700_000_000, 7, 12, 5, 8]
    digest = _listing(names, stamps)
    assert digest == _listing(list(names), list(stamps))
    others = {_listing(["/m/v/a1_x.py", "/m/v/b2_z.py"], stamps)}
    for i in range(len(stamps)):
        changed = list(stamps)
        changed[i] += 1
        others.add(_listing(names, changed))
    for huge in (2**63, 2**64 - 1):
        others.add(_listing(names, [*stamps[:5], huge]))
    assert digest not in others and len(others) == 1 + len(stamps) + 2


def test_a_long_plan_from_the_cache_says_what_the_files_say(project, sqlite_url):
    # past a few steps, a plan takes each step's docstring and checksum from the
    # cache instead of making the file: the same plan, step for step, as a read
    # of the files, and again once one of them changed
    import hashlib
    import json

    from conftest import run

    revs = [f"r{i:02d}" for i in range(40)]
    linear_project(project, sqlite_url, *revs)

    def steps():
        result = run(project.root, "plan", "dev", "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)["steps"]

    for path in cache.folder().glob("*.json"):
        path.unlink()
    cold = steps()
    warm = steps()
    assert warm == cold
    assert [s["message"] for s in warm] == revs
    for step in warm:
        body = (project.root / step["path"]).read_bytes()
        assert step["checksum"] == hashlib.sha256(body).hexdigest()
    changed = next(project.versions.glob("r07_*.py"))
    changed.write_text(changed.read_text().replace('"""r07', '"""r07 renamed', 1))
    after = steps()
    assert after[7]["message"] == "r07 renamed"
    assert after[7]["checksum"] == hashlib.sha256(changed.read_bytes()).hexdigest()
    assert after[:7] == warm[:7] and after[8:] == warm[8:]
