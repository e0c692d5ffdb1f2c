"""What is wrong with a file and where: the refusals that reading, validating and importing a file raise."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class RowProblem:
    """One refused cell: the file line (header is line 1), the column, the value and the reason."""

    row: int
    column: str
    value: str
    reason: str


class ImportRefused(ValueError):
    """Raised when a file cannot be imported; nothing has been written. Its text is one line."""

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        if not first.row:  # the file as a whole
            where = ""
        elif first.column in ("", "file"):  # a whole row
            where = f"row {first.row}: "
        else:
            where = f"row {first.row}, column {first.column}: "
        super().__init__(_one_line(f"{where}{first.reason}{more}"))

    def table(self) -> pd.DataFrame:
        """Return the problems as a table of row, column, value and reason."""
        return pd.DataFrame([p.__dict__ for p in self.problems], columns=["row", "column", "value", "reason"])


def _one_line(text: str) -> str:
    return " ".join(text.split())


def file_refused(name: str, reason: str, row: int = 0, column: str = "file") -> ImportRefused:
    """Return the refusal of a whole file (or of one place in it, when `row` is given)."""
    return ImportRefused([RowProblem(row, column, name if column == "file" else "", reason)])


def column_letter(position: int) -> str:
    """Return a spreadsheet column letter for a 0-based position: A, B, … Z, AA …"""
    letters = ""
    position += 1
    while position:
        position, remainder = divmod(position - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters
