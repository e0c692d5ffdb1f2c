"""A file's column held as codes into its distinct cells: what is done once per distinct cell reaches every row
through numpy, not through a Python loop over the rows (an import validates 200,000 rows of 26 columns)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import pandas as pd


def objects(values: Sequence) -> np.ndarray:
    """Return values as a one-dimensional object array, each value one item (a list or tuple stays one item)."""
    array = np.empty(len(values), dtype=object)
    for position, value in enumerate(values):
        array[position] = value
    return array


class Coded:
    """A column's cells: `codes[row]` is the position of the row's cell among `distinct`, in order of appearance.

    Cells equal as Python values are one distinct cell, as they are one key of a dict; `cell` gives each row's own.
    """

    __slots__ = ("codes", "distinct", "_cells")

    def __init__(self, codes: np.ndarray, distinct: list, cells: np.ndarray | None = None):
        self.codes, self.distinct, self._cells = codes, distinct, cells  # cells None: each row's is its distinct one

    @classmethod
    def of(cls, column: pd.Series | Sequence) -> Coded:
        """Return the cells of a column coded."""
        cells = column.to_numpy(dtype=object) if isinstance(column, pd.Series) else objects(column)
        codes, distinct = pd.factorize(cells)  # in C; cells equal as Python values are one, as in a dict
        if not (codes < 0).any():  # pandas codes a missing value (None, NaN, pd.NA) as -1: those go below
            return cls(codes, distinct.tolist(), cells)
        index: dict = {}
        codes = np.fromiter((index.setdefault(cell, len(index)) for cell in cells), dtype=np.intp, count=len(cells))
        return cls(codes, list(index), cells)

    @classmethod
    def constant(cls, value, rows: int) -> Coded:
        """Return a column of `rows` cells all `value` (a column a file leaves out)."""
        return cls(np.zeros(rows, dtype=np.intp), [value])

    def __len__(self) -> int:
        return len(self.codes)

    def cell(self, row: int):
        """Return one row's cell."""
        return self.distinct[self.codes[row]] if self._cells is None else self._cells[row]

    def values(self, per_distinct: Sequence, start: int = 0, stop: int | None = None) -> list:
        """Return each row's value (from `start` to `stop`), given one value per distinct cell."""
        return objects(per_distinct).take(self.codes[start:stop]).tolist()

    def where(self, test: Callable[[object], object]) -> np.ndarray:
        """Return, for each row, whether `test` of its cell is true (called once per distinct cell)."""
        passed = np.fromiter((bool(test(cell)) for cell in self.distinct), dtype=bool, count=len(self.distinct))
        return passed[self.codes]

    def rows_with(self, codes: Collection[int]) -> list[int]:
        """Return the rows whose cell is one of these distinct ones (by code), in order."""
        return np.flatnonzero(np.isin(self.codes, list(codes))).tolist()


def combined(columns: Sequence[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's code of its combination of several columns' codes (each given with how many codes it
    has), and a row holding each combination."""
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    for codes, count in columns:
        key = key * max(count, 1) + codes
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return inverse.reshape(-1), first
