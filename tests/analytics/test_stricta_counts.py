"""analytics.stricta from counts (#15): the table and the completeness made from what the database counts are those
of the sessions themselves (`summary_table`, `is_complete`, the definitions), the table to the byte, on generated
needling records: electrical and other sessions, empty codes, several adjuncts, values where an item does not
apply, items never recorded."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import stricta
from clinic.vocabulary import ADJUNCTS, ESTIM_ITEMS, MANIPULATIONS, SIDES, TECHNIQUES

NUMBERS = {  # a few values clinicians record, so values repeat, and any value in the item's range
    "insertions": st.one_of(st.sampled_from([1, 5, 8, 10, 12]), st.integers(1, 500)),
    "depth_mm": st.one_of(st.sampled_from([5.0, 22.5, 30.0, 32.5]), st.floats(0, 150)),
    "needle_diameter_mm": st.sampled_from([0.16, 0.18, 0.2, 0.25, 0.3]),
    "needle_length_mm": st.one_of(st.sampled_from([25.0, 40.0, 50.0]), st.floats(5, 150)),
    "twitch_count": st.integers(0, 200),
    "retention_s": st.sampled_from([0, 60, 300, 600, 900, 1200]),
    "estim_hz": st.one_of(st.sampled_from([2.0, 4.0, 80.0]), st.floats(0.1, 250)),
    "estim_pulse_us": st.sampled_from([100.0, 150.0, 200.0, 250.0]),
    "estim_ma": st.floats(0, 60),
    "estim_minutes": st.sampled_from([10.0, 15.0, 20.0]),
}
ADJUNCT_TEXTS = st.one_of(
    st.just("none"), st.just(""), st.just("yoga"),
    st.lists(st.sampled_from(ADJUNCTS), min_size=1, max_size=3, unique=True).map(";".join),
)
CODES = {"side": st.sampled_from([*SIDES, ""]), "manipulation": st.sampled_from([*MANIPULATIONS, ""]),
         "adjuncts": ADJUNCT_TEXTS}


@st.composite
def session_frames(draw) -> pd.DataFrame:
    """A frame of sessions as `stricta_sessions` gives them: a technique and each item, often missing; a whole item
    may be missing in every session, and electrical values may stand on other sessions (they do not apply)."""
    never = draw(st.sets(st.sampled_from(stricta.ITEMS), max_size=4))
    strategies = NUMBERS | CODES
    rows = []
    for _ in range(draw(st.integers(0, 40))):
        row = {"technique": draw(st.sampled_from(TECHNIQUES))}
        for item in stricta.ITEMS:
            row[item] = None if item in never or draw(st.booleans()) and draw(st.booleans()) else draw(
                strategies[item])
        rows.append(row)
    return pd.DataFrame(rows, columns=["technique", *stricta.ITEMS])


def counted(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return what db.stricta_queries counts of these sessions: sessions per technique and number of items reported
    (with `sessions`), and the sessions storing each value (not missing) of each item per technique."""
    counts = (frame.assign(reported_items=stricta.reported(frame).sum(axis=1))
              .groupby(["technique", "reported_items"]).size().rename("sessions").reset_index())
    values = pd.concat([
        frame.loc[frame[item].notna(), ["technique", item]].groupby(["technique", item]).size()
        .rename("sessions").reset_index().rename(columns={item: "value"}).assign(item=item)
        for item in stricta.ITEMS
    ], ignore_index=True)
    return counts, values[["technique", "item", "value", "sessions"]].astype({"value": object})


def csv(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False, lineterminator="\n").encode("utf-8")


@settings(max_examples=100, deadline=None)
@given(session_frames())
def test_the_table_from_counts_is_the_table_of_the_sessions_to_the_byte(frame):
    assert csv(stricta.table_from_counts(*counted(frame))) == csv(stricta.summary_table(frame))


@settings(max_examples=60, deadline=None)
@given(session_frames())
def test_the_complete_sessions_counted_are_those_the_definition_calls_complete(frame):
    counts, _ = counted(frame)
    complete = stricta.complete_counted(counts)
    assert int(counts.loc[complete, "sessions"].sum()) == int(stricta.is_complete(frame).sum())
    by_technique = counts[complete].groupby("technique")["sessions"].sum()
    expected = frame[stricta.is_complete(frame)].groupby("technique").size()
    assert by_technique.to_dict() == expected.to_dict()


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.one_of(st.floats(-1e9, 1e9), st.integers(-10**6, 10**6).map(float)),
                       st.integers(1, 50), min_size=1, max_size=30))
def test_quartiles_from_counts_are_pandas_quartiles_of_the_values_repeated(given_counts):
    values, counts = np.array(list(given_counts), dtype=float), np.array(list(given_counts.values()))
    q1, median, q3 = pd.Series(np.repeat(values, counts)).quantile(list(stricta.QUARTILES))  # as summary_table
    found = stricta.quantiles_from_counts(values, counts)
    assert found == [q1, median, q3]
    # Python floats, as a Series gives them one by one: rounded for the table as Python rounds, not as numpy does.
    assert [type(q) for q in found] == [type(q1), type(median), type(q3)] == [float] * 3


def test_a_count_with_an_empty_code_or_an_electrical_value_on_a_deep_session_is_not_reported():
    counts = pd.DataFrame({"technique": ["deep", "electrical"], "reported_items": [1, 2], "sessions": [3, 1]})
    values = pd.DataFrame({"technique": ["deep", "deep", "deep", "electrical"],
                           "item": ["side", "side", "estim_hz", "estim_hz"], "value": ["", "left", 2.0, 4.0],
                           "sessions": [2, 1, 3, 1]})
    table = stricta.table_from_counts(counts, values).set_index(["technique", "item"])
    assert table.loc[("deep", "side"), ["applicable_sessions", "reported_sessions"]].tolist() == [3, 1]
    assert table.loc[("all", "estim_hz"), ["applicable_sessions", "reported_sessions", "distribution"]].tolist() == [
        1, 1, "4 (4–4)"]
    assert ("deep", "estim_hz") not in table.index and set(ESTIM_ITEMS) <= set(table.loc["electrical"].index)
