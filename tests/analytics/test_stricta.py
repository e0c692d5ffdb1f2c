"""analytics.stricta: which items apply, which are reported, a session's completeness and the STRICTA table."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics import stricta

EMPTY = dict.fromkeys(stricta.ITEMS)


def sessions(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame([EMPTY | row for row in rows], columns=["technique", *stricta.ITEMS])


FULL_DEEP = {"technique": "deep", "insertions": 10, "side": "left", "depth_mm": 30.0, "needle_diameter_mm": 0.25,
             "needle_length_mm": 40.0, "twitch_count": 3, "retention_s": 0, "manipulation": "pistoning",
             "adjuncts": "none"}


def test_the_stimulation_items_apply_to_electrical_sessions_only():
    frame = sessions({"technique": "deep"}, {"technique": "electrical"})
    applies = stricta.applicable(frame)
    assert list(applies.columns) == list(stricta.ITEMS)
    assert applies.loc[0].sum() == 9 and applies.loc[1].sum() == 13
    assert not applies.loc[0, ["estim_hz", "estim_pulse_us", "estim_ma", "estim_minutes"]].any()


def test_a_value_recorded_where_it_does_not_apply_is_not_reported():
    frame = sessions({"technique": "deep", "estim_hz": 2.0, "insertions": 5})
    reported = stricta.reported(frame)
    assert reported.loc[0, "insertions"] and not reported.loc[0, "estim_hz"]


def test_completeness_is_the_share_of_applicable_items_recorded_and_complete_is_at_90_percent():
    eight_of_nine = FULL_DEEP | {"adjuncts": None}
    frame = sessions(FULL_DEEP, eight_of_nine, {"technique": "electrical", **{k: 1 for k in ("insertions", "side")}})
    share = stricta.session_completeness(frame)
    assert list(share.round(4)) == [1.0, round(8 / 9, 4), round(2 / 13, 4)]
    assert list(stricta.is_complete(frame)) == [True, False, False]
    assert stricta.COMPLETE_AT == 0.9


def test_an_empty_text_is_not_recorded():
    assert not stricta.reported(sessions({"technique": "deep", "side": ""})).loc[0, "side"]


def test_the_table_has_a_row_per_technique_and_applicable_item_sorted_with_counts_and_words():
    frame = sessions(
        FULL_DEEP,
        FULL_DEEP | {"insertions": 20, "side": "right", "adjuncts": "cold_spray;stretching"},
        FULL_DEEP | {"insertions": 30, "side": None, "adjuncts": "stretching"},
        {"technique": "electrical", "insertions": 5, "estim_hz": 2.0, "estim_ma": 7.5},
    )
    table = stricta.summary_table(frame)
    assert list(table.columns) == stricta.SUMMARY_COLUMNS
    assert list(table["technique"].drop_duplicates()) == ["all", "deep", "electrical"]
    deep = table[table["technique"] == "deep"].set_index("item")
    assert list(deep.index) == [item for item in stricta.ITEMS if not item.startswith("estim_")]
    assert deep.loc["insertions", "distribution"] == "20 (15–25)"
    assert deep.loc["side", ["applicable_sessions", "reported_sessions", "completeness"]].tolist() == [3, 2, 0.6667]
    assert deep.loc["side", "distribution"] == "left 50.0%; right 50.0%"
    assert deep.loc["adjuncts", "distribution"] == "cold_spray 33.3%; stretching 66.7%; none 33.3%"
    assert deep.loc["needle_diameter_mm", "distribution"] == "0.25 (0.25–0.25)"
    every = table[table["technique"] == "all"].set_index("item")
    assert every.loc["estim_ma", ["applicable_sessions", "reported_sessions"]].tolist() == [1, 1]
    assert every.loc["estim_pulse_us", ["reported_sessions", "completeness", "distribution"]].tolist() == [0, 0.0, ""]
    assert every.loc["insertions", "applicable_sessions"] == 4


@pytest.mark.parametrize(("values", "words"), [([1.0, 2.0, 3.0, 4.0], "2.5 (1.75–3.25)"), ([0.123], "0.12 (0.12–0.12)"),
                                               ([7200.0, 0.0], "3600 (1800–5400)")])
def test_a_number_s_distribution_is_median_and_quartiles_by_linear_interpolation(values, words):
    assert stricta.distribution("depth_mm", pd.Series(values)) == words
