"""The interchange format of docs/DESIGN.md section 5: its columns, how a session is identified, and its cells' text.

The jobs done with it have modules of their own: `db.spreadsheets` reads and writes the CSV and XLSX files,
`db.file_validation` validates every row, `db.import_plan` and `db.importing` import them, `db.exporting` exports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pandas as pd

from clinic.vocabulary import RANGES, STRICTA_ITEMS

COLUMNS = [
    "patient_id",
    "session_date",
    "technique",
    "pain_scale",
    "pain_before",
    "pain_after",
    "side_effects",
    "condition",
    "clinician",
    "twitch_response",
    "notes",
]
EXTRA_COLUMNS = ["body_region", "muscles"]  # documented additions: the episode's body region, muscles joined by ';'
# The optional contract column (docs/DESIGN.md section 5): the patient's course of care for the row's condition,
# 1 for the first; empty, the app's rule (db.episodes) decides. An export always writes it, after the others.
EPISODE = "episode"
# The optional STRICTA columns (docs/DESIGN.md section 5), the session's needling record, after the others; an export
# always writes them. Empty = not recorded. A file without one of them leaves that value of its stored sessions as it
# is (db.import_plan): an older file does not erase a record it never held.
STRICTA_COLUMNS = list(STRICTA_ITEMS)
EXPORT_COLUMNS = [*COLUMNS, *EXTRA_COLUMNS, EPISODE, *STRICTA_COLUMNS]
KNOWN_COLUMNS = frozenset(EXPORT_COLUMNS)
REQUIRED = {"patient_id", "session_date", "technique", "pain_before"}
YES_NO = {"yes": True, "no": False, "": None}
YES_NO_TEXT = {value: text for text, value in YES_NO.items()}


def identity_keys(sessions: Iterable[tuple]) -> list[tuple]:
    """Return each session's identity, given (patient, date, technique) in entry order: those and its place among
    the sessions alike. A session keeps its identity from file to database to file, so a re-import matches it."""
    seen: Counter = Counter()
    keys = []
    for patient, day, technique in sessions:
        seen[(patient, day, technique)] += 1
        keys.append((patient, day, technique, seen[(patient, day, technique)]))
    return keys


def cell(value) -> str:
    """Return a cell as read, as stripped text ('' for an empty cell)."""
    if isinstance(value, str):
        return value.strip()
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def yes_no(text: str) -> bool | None:
    """Return a twitch-response cell as True, False or None (empty); ValueError if it is something else."""
    if text in YES_NO:
        return YES_NO[text]
    if text.lower() in YES_NO:
        return YES_NO[text.lower()]
    raise ValueError(f"'{text}' must be yes or no")


def episode_number(text: str, maximum: int) -> int | None:
    """Return an `episode` cell as its number (None when empty); ValueError naming what is wrong otherwise."""
    if text == "":
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= maximum:  # no sign, no decimals
        raise ValueError(f"'{text}' is not an episode number: a whole number from 1 (the patient's first course of "
                         f"care for this condition) to {maximum}")
    return int(text)


def number_text(value) -> str:
    """Return a pain score as its cell's text: '' when absent, no decimals for a whole number."""
    if value is None or pd.isna(value):
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


NUMBER_COLUMNS = frozenset(("pain_before", "pain_after", *RANGES))  # written by `number_text`


def cell_text(name: str, value) -> str:
    """Return a stored value of the column `name` as its cell's text."""
    if value is None:
        return ""
    if name in NUMBER_COLUMNS:
        return number_text(value)
    if name == "twitch_response":
        return YES_NO_TEXT[bool(value)]
    return str(value)
