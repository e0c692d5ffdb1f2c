"""How completely sessions report the needling record of STRICTA, and what it holds (docs/DESIGN.md section 5).

STRICTA (MacPherson et al. 2010, items 1–6) lists what a report of a needling intervention gives; its items here are
the optional STRICTA columns of the interchange format. An item *applies* to a session when the session could
report it (the electrical-stimulation items to electrical sessions only, every other item to every session) and is
*reported* when it applies and is recorded. Frames in are one row per session, as `db.stricta_queries`
`stricta_sessions` gives them: `technique` and the items as columns.

At a network's size the page and `summary --stricta` do not read every session but counts made in the database
(`db.stricta_queries`): `complete_counted` tells which counted sessions are complete, and `table_from_counts` makes
the same table as `summary_table` from the sessions per technique and the sessions storing each value of an item
(the quartiles found among the counts exactly as numpy interpolates them). The functions on sessions stay the
definition: the tests hold the counted ones to the same figures, and the table to the same bytes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from clinic.vocabulary import ESTIM_ITEMS, ESTIM_TECHNIQUE, STRICTA_CODES, STRICTA_ITEMS

ITEMS = STRICTA_ITEMS  # the items, in the interchange format's order
CODED_ITEMS = tuple(STRICTA_CODES)  # side, manipulation, adjuncts; every other item is a number
COMPLETE_AT = 0.9  # a session is "complete" when it reports at least this share of the items that apply to it
ALL = "all"  # the technique of the rows that pool every technique
SUMMARY_COLUMNS = ["technique", "item", "applicable_sessions", "reported_sessions", "completeness", "distribution"]
QUARTILES = (0.25, 0.5, 0.75)  # a number's distribution: q1, median, q3


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
    recorded = pd.DataFrame({item: is_recorded(item, frame[item]) for item in ITEMS}, index=frame.index)
    return applicable(frame) & recorded


def is_recorded(item: str, values: pd.Series) -> pd.Series:
    """Return whether each value of the item is recorded: not missing, and for a code not an empty text."""
    return values.notna() & (values != "" if item in CODED_ITEMS else True)  # only codes are text: never ''


def session_completeness(frame: pd.DataFrame) -> pd.Series:
    """Return each session's share of applicable items that are recorded, 0–1 (complete at `COMPLETE_AT` or more)."""
    return (reported(frame).sum(axis=1) / applicable(frame).sum(axis=1)).rename("completeness")


def complete_counted(counts: pd.DataFrame) -> pd.Series:
    """Return whether the sessions of each row of `counts` are complete, a row giving their `technique` and the
    number of items they report (`reported_items`), as `db.stricta_queries.completeness_counts` counts them: as
    `session_completeness` tests a session, reported over applicable items at least `COMPLETE_AT`."""
    applies = applicable(counts[["technique"]]).sum(axis=1)
    return (counts["reported_items"].astype("int64") / applies >= COMPLETE_AT).rename("complete")


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
    return _sorted_table(rows)


def _sorted_table(rows: list[tuple]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    order = {item: position for position, item in enumerate(ITEMS)}
    table = table.sort_values(["technique", "item"], key=lambda c: c.map(order) if c.name == "item" else c,
                              ignore_index=True)
    return table.astype({"applicable_sessions": int, "reported_sessions": int})


def table_from_counts(counts: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """Return `summary_table`'s table from counts (`db.stricta_queries.stricta_counts`): `counts`, rows with a
    `technique` and its number of `sessions` (summed per technique), and `values`, one row per `technique`, `item`
    and stored `value` with the `sessions` storing it (any stored values: those not reported, an empty code or an
    item where it does not apply, are left out here). The same table, to the byte, as `summary_table` of the
    sessions counted."""
    sessions = counts.groupby("technique", sort=False)["sessions"].sum()
    sessions = sessions[sessions > 0]
    values = values[values["technique"].isin(sessions.index)]
    reports = {item: values[(values["item"] == item) & is_recorded(item, values["value"])
                            & _applies(item, values["technique"])] for item in ITEMS}
    rows = []
    for technique in [*sessions.index, ALL]:
        for item in ITEMS:
            applies = _sessions_applying(item, sessions, technique)
            if applies == 0:
                continue
            given = reports[item] if technique == ALL else reports[item][reports[item]["technique"] == technique]
            given = given.groupby("value", sort=False)["sessions"].sum()  # the sessions per value
            reported = int(given.sum())
            # reported / applicable as summary_table divides them (by numpy's int64), so rounded alike
            rows.append((technique, item, int(applies), reported, round(reported / np.int64(applies), 4),
                         counted_distribution(item, given)))
    return _sorted_table(rows)


def _applies(item: str, techniques: pd.Series) -> pd.Series:
    return techniques == ESTIM_TECHNIQUE if item in ESTIM_ITEMS else pd.Series(True, index=techniques.index)


def _sessions_applying(item: str, sessions: pd.Series, technique: str) -> int:
    chosen = sessions if technique == ALL else sessions[[technique]]
    return int(chosen[_applies(item, pd.Series(chosen.index, index=chosen.index))].sum())


def distribution(item: str, values: pd.Series) -> str:
    """Return the reported values of one item in words: `median (q1–q3)` or `code share%; …` ('' when none)."""
    if values.empty:
        return ""
    if item in CODED_ITEMS:  # the few distinct texts are split, each counted as often as it is given
        return _code_shares(item, values.astype(str).value_counts(), len(values))
    numbers = values.astype(float)
    q1, median, q3 = numbers.quantile(list(QUARTILES))
    return _quartile_words(q1, median, q3)


def counted_distribution(item: str, counts: pd.Series) -> str:
    """Return `distribution` of the reported values given as counts: the sessions (values) per value (index)."""
    total = int(counts.sum())
    if total == 0:
        return ""
    if item in CODED_ITEMS:
        texts = pd.Series(counts.to_numpy(), index=counts.index.astype(str)).groupby(level=0, sort=False).sum()
        return _code_shares(item, texts, total)
    return _quartile_words(*quantiles_from_counts(counts.index.to_numpy(dtype=float), counts.to_numpy()))


def quantiles_from_counts(values: np.ndarray, counts: np.ndarray, qs=QUARTILES) -> list[float]:
    """Return the quantiles by linear interpolation of the values each given `counts` times, exactly as
    `pd.Series.quantile` (numpy's "linear" method) gives them of the values repeated: the two order statistics
    around (n − 1)·q, found among the cumulative counts, and numpy's own interpolation between them. Python
    floats, as a pandas Series gives its values one by one (`_number` rounds them as Python does, not numpy)."""
    order = np.argsort(values, kind="stable")
    values, cumulative = np.asarray(values, dtype=float)[order], np.cumsum(np.asarray(counts)[order])
    last = int(cumulative[-1]) - 1  # the index of the largest order statistic

    def statistic(index: int) -> float:  # the index-th smallest value (0-based)
        return values[np.searchsorted(cumulative, index, side="right")]

    quantiles = []
    for q in qs:
        virtual = last * q  # as numpy: (n - 1) * q
        low = math.floor(virtual)
        high = min(low + 1, last)
        quantiles.append(float(np.quantile(np.array([statistic(low), statistic(high)]), virtual - low)))
    return quantiles


def _code_shares(item: str, texts: pd.Series, reported: int) -> str:
    """Return the share of the `reported` sessions naming each code, from the sessions per stored text."""
    counts = dict.fromkeys(STRICTA_CODES[item], 0)
    for text, given in texts.items():
        for code in set(text.split(";")) & counts.keys():
            counts[code] += int(given)
    return "; ".join(f"{code} {100 * count / reported:.1f}%" for code, count in counts.items() if count)


def _quartile_words(q1: float, median: float, q3: float) -> str:
    return f"{_number(median)} ({_number(q1)}–{_number(q3)})"


def _number(value: float) -> str:
    """Return a number for a methods section: at most two decimals, none when whole."""
    return f"{round(value, 2):g}"
