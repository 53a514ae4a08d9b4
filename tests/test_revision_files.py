"""Reading a revision file gives what Alembic reads from it, or a refusal.

Each misreading found so far has its test; then a differential test writes
generated revision files (quoting styles, annotations, chained and unpacking
assignments, decoy headers in strings and comments, BOMs, coding cookies, CRLF,
sets, merges, headers only importing can tell) and compares migplan's reading with
Alembic's own `Script._from_path` on the same file.
"""

from __future__ import annotations

import textwrap
import types
from pathlib import Path

import pytest
from alembic.script import Script
from alembic.util import to_tuple
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from migplan.core.revisions import RevisionFile
from migplan.errors import RevisionGraphError
from migplan.project import revision_files
from migplan.project.revision_files import read


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    data = text if isinstance(text, bytes) else textwrap.dedent(text).encode()
    path.write_bytes(data)
    return path


def fields(file: RevisionFile) -> tuple[object, ...]:
    return (
        file.revision,
        file.down_revision,
        file.branch_labels,
        file.depends_on,
        file.longdoc,
    )


def sorted_labels(file: RevisionFile) -> tuple[object, ...]:
    """The fields, branch labels sorted: a set in Alembic's Revision."""
    revision, down, labels, depends, longdoc = fields(file)
    return revision, down, tuple(sorted(labels)), depends, longdoc


def alembic_reads(path: Path) -> tuple[object, ...]:
    """What Alembic reads from a revision file, in RevisionFile's terms (a set's
    items sorted: Alembic's order is the string hash's)."""
    script = Script._from_path(types.SimpleNamespace(sourceless=False), path)
    assert script is not None
    module = script.module
    down = script._versioned_down_revisions
    if isinstance(module.down_revision, (set, frozenset)):
        down = tuple(sorted(down))
    depends = to_tuple(script.dependencies, default=())
    if isinstance(getattr(module, "depends_on", None), (set, frozenset)):
        depends = tuple(sorted(depends))
    labels = tuple(sorted(script.branch_labels))
    return script.revision, down, labels, depends, script.longdoc


@pytest.fixture
def no_import(monkeypatch):
    """Fail the test if the reader imports the file."""

    def imported(path):
        raise AssertionError(f"{path.name} was imported")

    monkeypatch.setattr(revision_files.compat, "load_python_file", imported)


# -- the misreadings found so far ---------------------------------------------------


def test_a_chained_assignment_is_read(tmp_path, no_import):
    path = write(
        tmp_path,
        "d2_x.py",
        """\
        \"\"\"add email\"\"\"
        revision = "d2"
        down_revision = _prev = "c1"
        branch_labels = None
        depends_on = None
        """,
    )
    assert fields(read(path)) == ("d2", ("c1",), (), (), "add email")


@pytest.mark.parametrize(
    "decoy",
    [
        # a function's docstring, at column 0
        'def upgrade():\n    """\ndown_revision = "a0"\nrevision = "a1"\n"""\n',
        # SQL text at column 0 inside a triple-quoted string
        'def upgrade():\n    op.execute("""\ndown_revision = "a0"\n""")\n',
        'SQL = """\ndown_revision = "a0"\n"""\n',
        # a keyword argument at column 0, and a class attribute
        'OPTIONS = dict(\ndown_revision="a0",\n)\n',
        'class Decoy:\n    down_revision = "a0"\n',
        '# down_revision = "a0"\n',
    ],
)
def test_a_header_line_inside_a_string_is_not_read(tmp_path, no_import, decoy):
    path = write(
        tmp_path,
        "d2_x.py",
        f'"""add email"""\nrevision = "d2"\ndown_revision = "c1"\n\n{decoy}',
    )
    assert fields(read(path)) == ("d2", ("c1",), (), (), "add email")
    assert fields(read(path)) == alembic_reads(path)


def test_a_header_only_inside_a_string_is_not_a_header(tmp_path):
    path = write(
        tmp_path, "d2_x.py", 'revision = "d2"\nSQL = """\ndown_revision = "a0"\n"""\n'
    )
    with pytest.raises(RevisionGraphError) as caught:
        read(path)
    assert str(caught.value) == (
        "d2_x.py: no 'down_revision' variable declared (Alembic requires one; "
        "write down_revision = None for a first revision)"
    )
    with pytest.raises(AttributeError, match="down_revision"):
        alembic_reads(path)


def test_a_set_of_branch_labels_is_read(tmp_path, no_import):
    path = write(
        tmp_path,
        "d2_x.py",
        'revision = "d2"\ndown_revision = None\nbranch_labels = {"feature", "expand"}\n',
    )
    assert fields(read(path)) == ("d2", (), ("expand", "feature"), (), "")
    assert fields(read(path)) == alembic_reads(path)


def test_a_byte_order_mark_keeps_the_message(tmp_path, no_import):
    path = write(
        tmp_path,
        "d2_x.py",
        b'\xef\xbb\xbf"""add email\n\nRevision ID: d2\n"""\n'
        b'revision = "d2"\ndown_revision = None\n',
    )
    file = read(path)
    assert fields(file) == ("d2", (), (), (), "add email\n\nRevision ID: d2")
    assert file.message == "add email"
    assert revision_files.source(file).startswith('"""add email')


def test_a_latin_1_file_with_a_coding_cookie_is_read(tmp_path, no_import):
    path = write(
        tmp_path,
        "d2_x.py",
        '# -*- coding: latin-1 -*-\n"""add café table"""\n'
        'revision = "d2"\ndown_revision = "c1"\n\n\ndef upgrade():\n'
        "    op.execute(\"UPDATE t SET name = 'é'\")\n".encode("latin-1"),
    )
    file = read(path)
    assert fields(file) == ("d2", ("c1",), (), (), "add café table")
    assert fields(file) == alembic_reads(path)
    assert "SET name = 'é'" in revision_files.source(file)


def test_a_legacy_file_takes_its_revision_from_its_name(tmp_path, no_import):
    path = write(tmp_path, "ae1027a6acf.py", '"""legacy"""\ndown_revision = None\n')
    assert fields(read(path)) == ("ae1027a6acf", (), (), (), "legacy")
    assert fields(read(path)) == alembic_reads(path)


def test_a_file_without_revision_is_refused_as_alembic_refuses_it(tmp_path):
    path = write(tmp_path, "ae1027a6acf_add_email.py", "down_revision = None\n")
    with pytest.raises(RevisionGraphError) as caught:
        read(path)
    assert str(caught.value) == (
        "ae1027a6acf_add_email.py: no 'revision' variable declared, and the file "
        "name is not a revision id (as Alembic refuses it too); declare "
        "revision = '<id>' in the file"
    )
    with pytest.raises(Exception, match="Could not determine revision id"):
        alembic_reads(path)


def test_a_header_naming_project_code_says_what_to_do(tmp_path):
    # OpenStack neutron's expand/contract branches
    path = write(
        tmp_path,
        "d2_expand.py",
        """\
        \"\"\"expand\"\"\"
        from neutron.db import migration
        from neutron.db.migration import cli

        revision = "d2"
        down_revision = "c1"
        branch_labels = (cli.EXPAND_BRANCH,)
        """,
    )
    with pytest.raises(RevisionGraphError) as caught:
        read(path)
    assert str(caught.value) == (
        "d2_expand.py: cannot import: No module named 'neutron' (line 7: "
        "branch_labels is not a literal, so migplan imports the file as Alembic "
        "does: run migplan where the project's package is importable, installed or "
        "on PYTHONPATH, or write the header as literals)"
    )


# -- every way Python binds a name ---------------------------------------------------

HEAD = '"""add email"""\nfrom typing import TYPE_CHECKING, Optional, Sequence, Union\n'

LITERAL = {
    "annotated": """
        revision: str = "d2"
        down_revision: Union[str, Sequence[str], None] = "c1"
        branch_labels: Union[str, Sequence[str], None] = None
        depends_on: Optional[str] = None
    """,
    "annotation alone, then a value": 'revision: str\nrevision = "d2"\n'
    'down_revision = "c1"\n',
    "lists and tuples": 'revision = "d2"\ndown_revision = ["c1"]\n'
    'branch_labels = ("side",)\ndepends_on = ["b1", "b0"]\n',
    "merge": 'revision = "d2"\ndown_revision = ("c1", "c2")\n',
    "none": 'revision = "d2"\ndown_revision = None\n',
    "empty tuple": 'revision = "d2"\ndown_revision = ()\n',
    "concatenated": 'revision = "d" "2"\ndown_revision = (\n    "c"\n    "1"\n)\n',
    "re-assigned later": 'revision = "x"\ndown_revision = None\n\n\n'
    'def upgrade():\n    pass\n\n\nrevision = "d2"\ndown_revision = "c1"\n',
    "unpacking": 'revision, down_revision = "d2", "c1"\n',
    "star unpacking": 'revision, *down_revision = "d2", "c1", "c2"\n',
    "nested unpacking": '(revision, _), down_revision = ("d2", 0), "c1"\n',
    "backslash": 'revision = \\\n    "d2"\ndown_revision \\\n  = "c1"\n',
    "comments": 'revision = "d2"  # revision = "x"\n'
    'down_revision = "c1"  # down_revision = "x"\n',
    "semicolons": 'revision = "d2"; down_revision = "c1"\n',
    "tabs": 'revision = "d2"\ndown_revision = "c1"\n\n\n'
    'def upgrade():\n\trevision = "x"\n\tdown_revision = revision\n',
    "function locals": 'revision = "d2"\ndown_revision = "c1"\n\n\n'
    "def upgrade(revision=None):\n    for down_revision in ():\n        pass\n"
    '    [revision for revision in "x"]\n',
    "a docstring's decoy": '"""add email\n\ndown_revision = "x"\n"""\n'
    'revision = "d2"\ndown_revision = "c1"\n',
    # NFKC makes the fullwidth r of "ｒevision" an r
    "a non-ASCII spelling": 'revision = "x"\ndown_revision = "c1"\n\n\n'
    'def upgrade():\n    pass\n\n\n\uff52evision = "d2"\n',
}


@pytest.mark.parametrize("body", LITERAL.values(), ids=LITERAL.keys())
def test_literal_headers_are_read_without_importing(tmp_path, body):
    path = write(tmp_path, "d2_x.py", (HEAD + textwrap.dedent(body)).encode())
    expected = alembic_reads(path)
    assert expected[:2] in (("d2", ("c1",)), ("d2", ("c1", "c2")), ("d2", ()))
    with pytest.MonkeyPatch.context() as patch:
        # inside the test: Alembic imports the file above
        patch.setattr(revision_files.compat, "load_python_file", None)
        assert sorted_labels(read(path)) == expected


IMPORTED = {
    "if TYPE_CHECKING": """
        revision = "d2"
        if TYPE_CHECKING:
            down_revision = "x"
        else:
            down_revision = "c1"
    """,
    "try": """
        revision = "d2"
        try:
            down_revision = "c1"
        except Exception:
            down_revision = None
    """,
    "for": 'revision = "d2"\nfor down_revision in ["c1"]:\n    pass\n',
    "with": 'import contextlib\nrevision = "d2"\n'
    'with contextlib.nullcontext("c1") as down_revision:\n    pass\n',
    "del": 'revision = "d2"\ndown_revision = "c1"\nbranch_labels = "x"\n'
    "del branch_labels\n",
    "augmented": 'revision = "d2"\ndown_revision = ("c1",)\ndown_revision += ("c2",)\n',
    "walrus": '(revision := "d2")\ndown_revision = "c1"\n',
    "global": 'revision = "x"\ndown_revision = "c1"\n\n\ndef _set():\n'
    '    global revision\n    revision = "d2"\n\n\n_set()\n',
    "globals()": 'revision = "d2"\ndown_revision = None\n'
    'globals()["down_" + "revision"] = "c1"\n',
    "f-string": 'revision = f"d{2}"\ndown_revision = f"c{1}"\n',
    "computed": 'PARENT = "c1"\nrevision = "d2"\ndown_revision = PARENT\n',
    "imported": 'from os import sep as down_revision\nrevision = "d2"\n'
    'down_revision = "c1"\n',
    "__doc__": 'revision = "d2"\ndown_revision = "c1"\n__doc__ = "other"\n',
    "set()": 'revision = "d2"\ndown_revision = "c1"\nbranch_labels = set()\n',
    "match": 'revision = "d2"\nmatch "c1":\n    case down_revision:\n        pass\n',
    "star import": 'from os.path import *\nrevision = "d2"\ndown_revision = "c1"\n',
    "exec": 'exec("revision = \'d2\'")\ndown_revision = "c1"\n',
    "__globals__": 'down_revision = "c1"\n\n\ndef upgrade():\n    pass\n\n\n'
    'upgrade.__globals__["revi" + "sion"] = "d2"\n',
    "__getattr__": 'down_revision = "c1"\n\n\ndef __getattr__(name):\n'
    '    if name == "revision":\n        return "d2"\n    raise AttributeError(name)\n',
}


@pytest.mark.parametrize("body", IMPORTED.values(), ids=IMPORTED.keys())
def test_other_headers_are_imported_as_alembic_does(tmp_path, body):
    path = write(tmp_path, "d2_x.py", (HEAD + textwrap.dedent(body)).encode())
    expected = alembic_reads(path)
    assert expected[:2] in (("d2", ("c1",)), ("d2", ("c1", "c2")))
    assert sorted_labels(read(path)) == expected


def test_a_header_in_a_block_says_what_to_do(tmp_path):
    path = write(
        tmp_path,
        "d2_x.py",
        """\
        from neutron.db import migration

        revision = "d2"
        if migration.FEATURE:
            down_revision = "c1"
        else:
            down_revision = "c0"
        """,
    )
    with pytest.raises(RevisionGraphError) as caught:
        read(path)
    assert str(caught.value) == (
        "d2_x.py: cannot import: No module named 'neutron' (line 5: "
        "down_revision is assigned inside an if statement, so migplan imports the "
        "file as Alembic does: run migplan where the project's package is "
        "importable, installed or on PYTHONPATH, or write the header as literals)"
    )


def test_an_encoding_that_respells_ascii_is_decoded(tmp_path):
    # in UTF-7, "+AHI-" is "r": the last line assigns revision
    path = write(
        tmp_path,
        "d2_x.py",
        b'# coding: utf-7\nrevision = "x"\ndown_revision = "c1"\n+AHI-evision = "d2"\n',
    )
    assert sorted_labels(read(path)) == alembic_reads(path)
    assert read(path).revision == "d2"


def test_bytes_are_refused(tmp_path):
    path = write(tmp_path, "d2_x.py", 'revision = "d2"\ndown_revision = b"c1"\n')
    assert alembic_reads(path)[1] == (99, 49)  # Alembic iterates the bytes
    with pytest.raises(RevisionGraphError) as caught:
        read(path)
    assert str(caught.value) == (
        "d2_x.py:2: down_revision is b'c1', not a revision id, a sequence of "
        "revision ids or None"
    )


def test_a_revision_that_is_not_a_string_is_refused(tmp_path):
    path = write(tmp_path, "d2_x.py", "revision = 2\ndown_revision = None\n")
    with pytest.raises(RevisionGraphError) as caught:
        read(path)
    assert str(caught.value) == "d2_x.py:1: revision is 2, not a string"


def test_windows_line_endings(tmp_path, no_import):
    path = write(
        tmp_path,
        "d2_x.py",
        b'"""add email\r\n\r\nRevision ID: d2\r\n"""\r\nrevision = "d2"\r\n'
        b'down_revision = (\r\n    "c1",\r\n)\r\n\r\ndef upgrade():\r\n    pass\r\n',
    )
    file = read(path)
    assert fields(file) == ("d2", ("c1",), (), (), "add email\n\nRevision ID: d2")
    assert fields(file) == alembic_reads(path)


def test_a_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "d2_x.py", 'revision = "d2"\ndown_revision = (\n')
    with pytest.raises(RevisionGraphError) as caught:
        read(path)
    assert str(caught.value) == "d2_x.py:2: '(' was never closed"


def test_an_unknown_coding_is_refused(tmp_path):
    path = write(tmp_path, "d2_x.py", '# coding: klingon\nrevision = "d2"\n')
    with pytest.raises(RevisionGraphError) as caught:
        read(path)
    assert str(caught.value) == "d2_x.py: unknown encoding: klingon"


def test_a_file_that_exits_on_import_is_refused(tmp_path):
    path = write(tmp_path, "d2_x.py", 'revision = str("d2")\nraise SystemExit(3)\n')
    with pytest.raises(
        RevisionGraphError, match=r"^d2_x.py: cannot import: 3 \(line 1"
    ):
        read(path)


def test_the_docstring_is_the_compilers(tmp_path, monkeypatch):
    # Python 3.13 strips docstrings' indentation, -OO drops them: the compiler says
    path = write(
        tmp_path,
        "d2_x.py",
        '"""add email\n\n    indented\n"""\nrevision = "d2"\ndown_revision = None\n',
    )
    expected = alembic_reads(path)
    monkeypatch.setattr(revision_files, "_COMPILER_CHANGES_DOCSTRINGS", True)
    assert fields(read(path)) == expected


def test_a_generated_file_is_read_from_its_head(tmp_path, monkeypatch, no_import):
    # the speed of `plan` on long histories: the body is checked by words only
    monkeypatch.setattr(revision_files, "_read_module", None)
    path = write(
        tmp_path,
        "d2_add_email.py",
        """\
        \"\"\"add email

        Revision ID: d2
        Revises: c1
        Create Date: 2026-01-01 00:00:00.000000

        \"\"\"
        from typing import Sequence, Union

        from alembic import op
        import sqlalchemy as sa


        # revision identifiers, used by Alembic.
        revision: str = 'd2'
        down_revision: Union[str, Sequence[str], None] = 'c1'
        branch_labels: Union[str, Sequence[str], None] = None
        depends_on: Union[str, Sequence[str], None] = None


        def upgrade() -> None:
            \"\"\"Upgrade schema.\"\"\"
            op.add_column('user', sa.Column('email', sa.String(120)))
            op.execute("UPDATE user SET email = '' WHERE email IS NULL")


        def downgrade() -> None:
            \"\"\"Downgrade schema.\"\"\"
            op.drop_column('user', 'email')
        """,
    )
    file = read(path)
    assert fields(file)[:4] == ("d2", ("c1",), (), ())
    assert file.longdoc == (
        "add email\n\nRevision ID: d2\nRevises: c1\n"
        "Create Date: 2026-01-01 00:00:00.000000"
    )


# -- the differential test ----------------------------------------------------------

IDS = st.text("0123456789abcdef", min_size=4, max_size=8)
DECOYS = (
    '# revision = "dec0"\n# down_revision = "dec0"\n',
    'SQL = """\nrevision = "dec1"\ndown_revision = "dec1"\n"""\n',
    'OPTIONS = dict(\ndown_revision="dec2",\nbranch_labels="dec2",\n)\n',
    'class Decoy:\n    revision = "dec3"\n    depends_on = ("dec3",)\n',
)
BODIES = (
    "def upgrade():\n    op.add_column('user', sa.Column('email', sa.String(120)))\n"
    "\n\ndef downgrade():\n    op.drop_column('user', 'email')\n",
    'def upgrade():\n    """\ndown_revision = "dec4"\n"""\n'
    '    op.execute("""\nrevision = "dec5"\n""")\n    revision = "dec6"\n'
    "    return revision\n\n\ndef downgrade():\n    pass\n",
)
LITERAL_FORMS = (0, 1, 2, 3, 4, 5, 13, 14)


@st.composite
def string_sources(draw, value: str, literal: bool) -> str:
    style = draw(st.integers(0, 2 if literal else 5))
    if style == 1:
        return f'"{value}"'
    if style == 2 and len(value) > 1:
        return f"'{value[:1]}' \"{value[1:]}\""  # implicitly concatenated
    if style == 3:
        return f"f'{value}'"
    if style == 4:
        return f"(\n    {value!r}\n)"
    if style == 5 and draw(st.integers(0, 9)) == 0:
        return f"b{value!r}"  # Alembic iterates bytes: migplan refuses
    return repr(value)


@st.composite
def value_sources(draw, ids: list[str], literal: bool) -> str:
    if not ids:
        return draw(st.sampled_from(["None", "None", "()", "[]"]))
    if len(ids) == 1 and draw(st.booleans()):
        return draw(string_sources(ids[0], literal))
    items = [draw(string_sources(i, literal)) for i in ids]
    brackets = draw(st.sampled_from(["()", "[]", "{}"]))
    comma = "," if len(items) == 1 and brackets == "()" else ""
    if draw(st.booleans()):
        inner = "".join(f"\n    {item}," for item in items) + "\n"
        comma = ""
    else:
        inner = ", ".join(items)
    return f"{brackets[0]}{inner}{comma}{brackets[1]}"


@st.composite
def statements(draw, name: str, value: str, literal: bool) -> tuple[str, str]:
    """One binding of `name` to the value `value` spells, and what runs after the
    functions (a later re-assignment); only literal assignments if `literal`."""
    form = draw(st.sampled_from(LITERAL_FORMS) if literal else st.integers(0, 14))
    annotation = draw(st.sampled_from(["str", "Optional[str]", "Union[str, None]"]))
    later = ""
    if form == 1:
        text = f"{name}: {annotation} = {value}"
    elif form == 2:
        text = f"{name} = _{name} = {value}"
    elif form == 3:
        text = f"_alias = {name} = {value}"
    elif form == 4:
        text = f"{name} = \\\n    {value}"
    elif form == 5:
        text = f'{name} = {value}  # {name} = "dec7"'
    elif form == 6:
        text = f'if TYPE_CHECKING:\n    {name} = "dec8"\nelse:\n    {name} = {value}'
    elif form == 7:
        text = f'try:\n    {name} = {value}\nexcept ImportError:\n    {name} = "dec9"'
    elif form == 8:
        text, later = f'{name} = "deca"', f"{name} = {value}\n"
    elif form == 9:
        text = f"({name} := {value})"
    elif form == 10:
        text = f"def _set_{name}():\n    global {name}\n    {name} = {value}\n\n\n"
        text += f"_set_{name}()"
    elif form == 11:
        text = f"for {name} in [{value}]:\n    pass"
    elif form == 12:
        text = f'{name} = "decb"\ndel {name}\n{name} = {value}'
    elif form == 13:
        text = f"{name}: {annotation}\n{name} = {value}"
    else:
        text = f"{name} = {value}"
    return text + "\n", later


@st.composite
def revision_sources(draw) -> tuple[str, bytes]:
    """A revision file: its name and its bytes."""
    rev, *others = draw(st.lists(IDS, min_size=6, max_size=6, unique=True))
    parents = others[: draw(st.integers(0, 2))]
    labels = draw(st.sampled_from([[], ["side"], ["expand", "contract"]]))
    depends = others[3 : 3 + draw(st.integers(0, 2))]
    non_ascii = draw(st.booleans())
    message = "add café" if non_ascii else "add email"
    decoy = draw(st.sampled_from(["", '\n\ndown_revision = "decc"\nrevision = "c"']))
    doc = draw(
        st.sampled_from(
            [
                f'"""{message}{decoy}\n\nRevision ID: {rev}\n"""\n',
                f"'''{message}{decoy}\n'''\n",
                f'r"""  {message}\n    indented{decoy}\n"""\n',
                f'"{message}"\n',
                f'b"""{message}"""\n' if not non_ascii else "",
                f'f"""{message}"""\n',
                "",
            ]
        )
    )
    header: list[str] = []
    after: list[str] = []
    literal = draw(st.booleans())  # else also headers that only importing can tell
    rev_source = draw(string_sources(rev, literal))
    down_source = draw(value_sources(parents, literal))
    if draw(st.integers(0, 7)) == 0:
        header.append(f"revision, down_revision = {rev_source}, {down_source}\n")
    else:
        names = [("revision", rev_source), ("down_revision", down_source)]
        if draw(st.integers(0, 15)) == 0:
            names.pop(draw(st.integers(0, 1)))  # Alembic refuses, or legacy
        for name, value in names:
            text, later = draw(statements(name, value, literal))
            header.append(text)
            after.append(later)
    for name, ids in (("branch_labels", labels), ("depends_on", depends)):
        if ids or draw(st.booleans()):
            value = draw(value_sources(ids, literal))
            text, later = draw(statements(name, value, literal))
            header.append(text)
            after.append(later)
    decoys = draw(st.lists(st.sampled_from(DECOYS), max_size=3))
    header_at = draw(st.integers(0, len(decoys)))
    text = (
        doc
        + "from typing import TYPE_CHECKING, Optional, Union\n"
        + "from alembic import op\nimport sqlalchemy as sa\n\n"
        + "".join(decoys[:header_at])
        + "\n# revision identifiers, used by Alembic.\n"
        + "".join(header)
        + "\n\n"
        + "".join(decoys[header_at:])
        + draw(st.sampled_from(BODIES))
        + "".join(after)
    )
    if draw(st.booleans()):
        text = text.replace("\n    ", "\n\t")
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    encoding = draw(st.sampled_from(["utf-8", "utf-8 BOM", "latin-1"]))
    if encoding == "latin-1":
        data = b"# -*- coding: latin-1 -*-\n" + text.encode("latin-1")
    elif encoding == "utf-8 BOM":
        cookie = draw(st.sampled_from(["", "# coding: utf-8\n"]))
        data = b"\xef\xbb\xbf" + (cookie + text).encode()
    else:
        data = text.encode()
    name = draw(st.sampled_from([f"{rev}.py", f"{rev}_add_email.py"]))
    return name, data


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(revision_sources())
def test_migplan_reads_what_alembic_reads(tmp_path_factory, source):
    name, data = source
    # a folder of its own: a stale __pycache__ entry would be imported instead
    path = write(tmp_path_factory.mktemp("rev"), name, data)
    try:
        expected = alembic_reads(path)
    except Exception:
        with pytest.raises(RevisionGraphError):
            read(path)
        return
    try:
        file = read(path)
    except RevisionGraphError:
        # refused only where Alembic's graph would hold something not a string
        revision, down, labels, depends, _ = expected
        assert not all(isinstance(r, str) for r in (revision, *down, *labels, *depends))
        return
    assert sorted_labels(file) == expected
    assert len(set(file.branch_labels)) == len(file.branch_labels)
    # the fast path, when it is sure, is sure of what the whole module says
    head = revision_files._read_head(data)
    assert head is None or head == revision_files._read_module(path, data)
