"""A column coded as its distinct cells (db.coded_columns) holds every row's cell, keyed as a dict keys them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from db.coded_columns import Coded, combined

TEXTS = st.text(alphabet=st.sampled_from(["a", "b", " ", "\x00", "\udc80", "é", "1", "\u2028"]), max_size=3)
CELLS = st.one_of(TEXTS, TEXTS, st.sampled_from([None, math.nan, pd.NA, 1, 1.0, True, 0, False, "1"]))


def as_a_dict_keys(cells: list) -> tuple[list[int], list]:
    index: dict = {}
    return [index.setdefault(cell, len(index)) for cell in cells], list(index)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(cells=st.one_of(st.lists(TEXTS, max_size=12), st.lists(CELLS, max_size=12)), series=st.booleans())
def test_a_coded_column_keys_its_cells_as_a_dict_and_gives_back_each_rows_own(cells, series):
    coded = Coded.of(pd.Series(cells, dtype=object) if series else cells)
    codes, distinct = as_a_dict_keys(cells)
    assert coded.codes.tolist() == codes
    assert len(coded.distinct) == len(distinct)
    assert all(a is b or (isinstance(a, str) and a == b) for a, b in zip(coded.distinct, distinct, strict=True))
    assert all(coded.cell(row) is cell for row, cell in enumerate(cells))
    assert coded.values([f"v{code}" for code in range(len(distinct))]) == [f"v{code}" for code in codes]
    def is_a(cell) -> bool:
        return isinstance(cell, str) and cell == "a"

    assert coded.where(is_a).tolist() == [is_a(distinct[code]) for code in codes]


def test_values_may_be_lists_and_tuples_each_one_value():
    coded = Coded.of(["x", "y", "x"])
    assert coded.values([[1, 2], (3, 4)]) == [[1, 2], (3, 4), [1, 2]]
    assert coded.values([[1, 2], (3, 4)], 1, 3) == [(3, 4), [1, 2]]
    assert coded.rows_with({0}) == [0, 2]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 5)), min_size=1, max_size=30))
def test_combined_codes_tell_rows_apart_exactly_by_their_codes_together(rows):
    columns = [(np.array(column, dtype=np.intp), count)
               for column, count in zip(zip(*rows, strict=True), (4, 3, 6), strict=True)]
    codes, firsts = combined(columns)
    assert len(set(codes.tolist())) == len(set(rows)) == len(firsts)
    for row, code in zip(rows, codes.tolist(), strict=True):
        assert rows[firsts[code]] == row
