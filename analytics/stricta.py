"""How completely sessions report the needling record of STRICTA, and what it holds (docs/DESIGN.md section 5).

STRICTA (MacPherson et al. 2010, items 1–6) lists what a report of a needling intervention gives; its items here are
the optional STRICTA columns of the interchange format. An item *applies* to a session when the session could
report it (the electrical-stimulation items to electrical sessions only, every other item to every session) and is
*reported* when it applies and is recorded. Frames in are one row per session, as `db.stricta_queries`
`stricta_sessions` gives them: `technique` and the items as columns.
"""

from __future__ import annotations

import pandas as pd

from clinic.vocabulary import ESTIM_ITEMS, ESTIM_TECHNIQUE, STRICTA_CODES, STRICTA_ITEMS

ITEMS = STRICTA_ITEMS  # the items, in the interchange format's order
CODED_ITEMS = tuple(STRICTA_CODES)  # side, manipulation, adjuncts; every other item is a number
COMPLETE_AT = 0.9  # a session is "complete" when it reports at least this share of the items that apply to it
ALL = "all"  # the technique of the rows that pool every technique
SUMMARY_COLUMNS = ["technique", "item", "applicable_sessions", "reported_sessions", "completeness", "distribution"]


def applicable(frame: pd.DataFrame) -> pd.DataFrame:
    """Return, per session (row) and item (column), whether the item applies to the session."""
    electrical = (frame["technique"] == ESTIM_TECHNIQUE).to_numpy()
    every = pd.Series(True, index=frame.index)
    return pd.DataFrame(
        {item: pd.Series(electrical, index=frame.index) if item in ESTIM_ITEMS else every for item in ITEMS},
        index=frame.index,
    )


def reported(frame: pd.DataFrame) -> pd.DataFrame:
    """Return, per session and item, whether the item applies and is recorded (an empty text counts as not)."""
    recorded = pd.DataFrame({item: frame[item].notna() & (frame[item] != "" if item in CODED_ITEMS else True)
                             for item in ITEMS}, index=frame.index)  # only codes are text: a number is never ''
    return applicable(frame) & recorded


def session_completeness(frame: pd.DataFrame) -> pd.Series:
    """Return each session's share of applicable items that are recorded, 0–1 (complete at `COMPLETE_AT` or more)."""
    return (reported(frame).sum(axis=1) / applicable(frame).sum(axis=1)).rename("completeness")


def is_complete(frame: pd.DataFrame) -> pd.Series:
    """Return whether each session is complete: it reports at least `COMPLETE_AT` of the items that apply to it."""
    return (session_completeness(frame) >= COMPLETE_AT).rename("complete")


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the STRICTA table of `python -m db summary --stricta` (docs/DESIGN.md section 5).

    One row per technique with sessions (and `all`) and item that applies to any of them: sessions it applies to,
    sessions that report it, completeness (reported / applicable, 4 decimals) and the distribution of what is
    reported: `median (q1–q3)` for a number (quartiles by linear interpolation), `code share%; …` for a coded item
    (the share of reporting sessions that name the code, one decimal, codes in the vocabulary's order; a session
    may name several adjuncts). Sorted by technique, then item in `ITEMS` order.
    """
    rows = []
    pooled = [(technique, frame[frame["technique"] == technique]) for technique in frame["technique"].unique()]
    for technique, sessions in [*pooled, (ALL, frame)]:
        applies, reports = applicable(sessions).sum(), reported(sessions)
        for item in ITEMS:
            if applies[item] == 0:
                continue
            values = sessions.loc[reports[item], item]
            rows.append((technique, item, int(applies[item]), len(values), round(len(values) / applies[item], 4),
                         distribution(item, values)))
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    order = {item: position for position, item in enumerate(ITEMS)}
    table = table.sort_values(["technique", "item"], key=lambda c: c.map(order) if c.name == "item" else c,
                              ignore_index=True)
    return table.astype({"applicable_sessions": int, "reported_sessions": int})


def distribution(item: str, values: pd.Series) -> str:
    """Return the reported values of one item in words: `median (q1–q3)` or `code share%; …` ('' when none)."""
    if values.empty:
        return ""
    if item in CODED_ITEMS:  # the few distinct texts are split, each counted as often as it is given
        counts = dict.fromkeys(STRICTA_CODES[item], 0)
        for text, given in values.astype(str).value_counts().items():
            for code in set(text.split(";")) & counts.keys():
                counts[code] += int(given)
        return "; ".join(f"{code} {100 * count / len(values):.1f}%" for code, count in counts.items() if count)
    numbers = values.astype(float)
    q1, median, q3 = numbers.quantile([0.25, 0.5, 0.75])
    return f"{_number(median)} ({_number(q1)}–{_number(q3)})"


def _number(value: float) -> str:
    """Return a number for a methods section: at most two decimals, none when whole."""
    return f"{round(value, 2):g}"
