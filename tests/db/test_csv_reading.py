"""A CSV file's records read by splitting its lines, as the csv module reads them, record for record and error for
error (db.csv_format reads most lines without the csv module: it reads a 200,000-row file in a third of the time)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from db import csv_format
from db.file_problems import ImportRefused

# Texts of the characters that matter to a CSV reader, and some that do not.
PIECES = st.sampled_from(["a", "b1", ",", '"', '""', "\n", "\r\n", "\r", " ", "é", "\x00", "\u2028", "\x1c", ";"])
texts = st.lists(PIECES, max_size=40).map("".join)


def as_read(text: str):
    """Return `_records` of a text: (records, lines), or the refusal's line and reason."""
    try:
        return "read", *csv_format._records(text, "f.csv")
    except ImportRefused as refused:
        (problem,) = refused.problems
        return "refused", problem.row, problem.reason


def same(text: str) -> None:
    """Check that a text reads as it does when the csv module reads all of it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(csv_format, "_split_lines", lambda text: None)
        expected = as_read(text)
    assert as_read(text) == expected


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(text=texts)
@example(text='a,"b\nc"\nd\n')
@example(text='a\r\n"b\r\nc",d\r\ne')
@example(text='"a\nb\n')
@example(text='x\n"a"b\ny')
def test_records_are_those_the_csv_module_reads(text):
    same(text)


@given(lines=st.lists(st.lists(st.sampled_from(["", "x", "a b", '"q,uo""te"', '"line\nbreak"', "é"]),
                               min_size=1, max_size=5), max_size=8),
       crlf=st.booleans(), last_break=st.booleans())
@settings(max_examples=500, deadline=None, derandomize=True)
def test_files_of_well_formed_rows_read_alike_with_either_line_break(lines, crlf, last_break):
    terminator = "\r\n" if crlf else "\n"
    text = terminator.join(",".join(cells) for cells in lines) + (terminator if last_break else "")
    same(text)


@pytest.mark.parametrize("text", [
    "a,b\n" + "x" * (csv_format.CSV_CELL_MAX + 1) + ",c\n",
    "a,b\n" + "x" * (csv_format.CSV_CELL_MAX - 2) + ",c\n",
    "a,b\n" + '"' + "x" * (csv_format.CSV_CELL_MAX + 1) + '",c\n',
])
def test_a_cell_longer_than_the_limit_is_refused_as_the_csv_module_refuses_it(text):
    same(text)
