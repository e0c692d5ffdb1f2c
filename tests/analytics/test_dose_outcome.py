"""Tests that analytics.dose_outcome groups episodes by their dose before session 4 and summarises their improvement
there as worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics import dose_outcome
from db.frames import whole_groups

NA = None
COLUMNS = ["episode_id", "session_number", "technique", "pain_scale", "pain_before", "twitch_count", "insertions",
           "retention_s", "estim_hz", "estim_ma"]

# Seven episodes worked through by hand (improvement at session 4 in percent of the first pain):
#   1 deep, VAS 80 … 40: 50 %; twitches 0, 0, 0 (mean 0); insertions 4, 6, 5 (5); retention 0 s throughout
#   2 deep, VAS 50 … 40: 20 %; twitches 1, 2, 3 (2);      insertions 10 × 3 (10); retention 600 s (10 min)
#   3 deep, VAS 60 … 30: 50 %; twitches 2, 2, 2 (2);      insertions never recorded; retention only 300 at session 3
#   4 electrical, NRS 8 … 2: 75 %; twitches 6, 7, 8 (7); insertions 20, 25, 30 (25); 2 Hz; 3, 4, 5 mA (4)
#   5 deep, first pain 0: no percentage (excluded, counted)
#   6 deep, three sessions: never reaches session 4
#   7 deep at session 1, then electrical: VAS 40 … 40: 0 %; twitch 1 at session 1 only; 100 Hz at session 2 only;
#     1 and 3 mA (2); session 4's own dose (90 twitches) comes after its pain and counts for nothing
ROWS = [
    (1, 1, "deep", "vas_100", 80, 0, 4, 0, NA, NA),
    (1, 2, "deep", "vas_100", 70, 0, 6, 0, NA, NA),
    (1, 3, "deep", "vas_100", 60, 0, 5, 0, NA, NA),
    (1, 4, "deep", "vas_100", 40, 0, 5, 0, NA, NA),
    (2, 1, "deep", "vas_100", 50, 1, 10, 600, NA, NA),
    (2, 2, "deep", "vas_100", 45, 2, 10, 600, NA, NA),
    (2, 3, "deep", "vas_100", 45, 3, 10, 600, NA, NA),
    (2, 4, "deep", "vas_100", 40, NA, NA, NA, NA, NA),
    (3, 1, "deep", "vas_100", 60, 2, NA, NA, NA, NA),
    (3, 2, "deep", "vas_100", 50, 2, NA, NA, NA, NA),
    (3, 3, "deep", "vas_100", 40, 2, NA, 300, NA, NA),
    (3, 4, "deep", "vas_100", 30, 2, NA, NA, NA, NA),
    (4, 1, "electrical", "nrs_10", 8, 6, 20, 900, 2, 3),
    (4, 2, "electrical", "nrs_10", 6, 7, 25, 900, 2, 4),
    (4, 3, "electrical", "nrs_10", 4, 8, 30, 900, 2, 5),
    (4, 4, "electrical", "nrs_10", 2, 8, 30, 900, 2, 5),
    (5, 1, "deep", "vas_100", 0, 1, 3, 0, NA, NA),
    (5, 2, "deep", "vas_100", 0, 1, 3, 0, NA, NA),
    (5, 3, "deep", "vas_100", 0, 1, 3, 0, NA, NA),
    (5, 4, "deep", "vas_100", 10, 1, 3, 0, NA, NA),
    (6, 1, "deep", "vas_100", 70, 9, 9, 9, NA, NA),
    (6, 2, "deep", "vas_100", 50, 9, 9, 9, NA, NA),
    (6, 3, "deep", "vas_100", 30, 9, 9, 9, NA, NA),
    (7, 4, "electrical", "vas_100", 40, 90, NA, NA, 1, 9),  # out of order: sorted by episode and number
    (7, 1, "deep", "vas_100", 40, 1, NA, NA, NA, NA),
    (7, 2, "electrical", "vas_100", 45, NA, NA, NA, 100, 1),
    (7, 3, "electrical", "vas_100", 42, NA, NA, NA, NA, 3),
]


@pytest.fixture
def table() -> pd.DataFrame:
    return dose_outcome.dose_outcome(pd.DataFrame(ROWS, columns=COLUMNS))


def row(table: pd.DataFrame, dose: str, group: str) -> pd.Series:
    found = table[(table["dose"] == dose) & (table["group"] == group)]
    assert len(found) == 1, (dose, group)
    return found.iloc[0]


def test_each_episodes_dose_is_its_mean_per_session_before_session_4():
    doses = dose_outcome.episode_doses(pd.DataFrame(ROWS, columns=COLUMNS)).set_index("episode_id")
    assert sorted(doses.index) == [1, 2, 3, 4, 5, 7]  # episode 6 never reaches session 4
    assert doses.loc[[1, 2, 3, 4, 7], "improvement_pct"].round(6).tolist() == [50, 20, 50, 75, 0]
    assert math.isnan(doses.loc[5, "improvement_pct"])  # first pain 0
    assert doses["twitch_count"].round(6).to_dict() == {1: 0, 2: 2, 3: 2, 4: 7, 5: 1, 7: 1}
    assert doses.loc[[1, 2, 4], "insertions"].tolist() == [5, 10, 25]
    assert doses.loc[[3, 7], "insertions"].isna().all()
    assert doses.loc[3, "retention_s"] == 300  # the one session recording it
    assert doses.loc[7, "estim_hz"] == 100 and doses.loc[7, "estim_ma"] == 2  # electrical sessions 2 and 3 only
    assert doses["electrical"].to_dict() == {1: False, 2: False, 3: False, 4: True, 5: False, 7: True}


def test_twitch_groups_have_the_hand_computed_mean_interval_and_count(table):
    one_or_two = row(table, "twitch_count", "1–2")  # episodes 2, 3 and 7: 20, 50 and 0 %
    assert one_or_two["episodes"] == 3
    assert one_or_two["mean_improvement_pct"] == pytest.approx(70 / 3)
    sd = math.sqrt(((20 - 70 / 3) ** 2 + (50 - 70 / 3) ** 2 + (0 - 70 / 3) ** 2) / 2)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert one_or_two["ci95_low_pct"] == pytest.approx(70 / 3 - half)
    assert one_or_two["ci95_high_pct"] == pytest.approx(70 / 3 + half)
    assert one_or_two["small"]
    none = row(table, "twitch_count", "0")
    assert (none["episodes"], none["mean_improvement_pct"]) == (1, 50)
    assert math.isnan(none["ci95_low_pct"])  # one episode: no interval
    assert row(table, "twitch_count", "3–5")["episodes"] == 0
    assert row(table, "twitch_count", "> 5")["mean_improvement_pct"] == pytest.approx(75)
    assert row(table, "twitch_count", dose_outcome.NOT_RECORDED)["episodes"] == 0


def test_episodes_without_a_recorded_dose_form_their_own_row(table):
    assert row(table, "insertions", "1–5")["episodes"] == 1
    assert row(table, "insertions", "6–10")["mean_improvement_pct"] == pytest.approx(20)
    assert row(table, "insertions", "> 20")["mean_improvement_pct"] == pytest.approx(75)
    unrecorded = row(table, "insertions", dose_outcome.NOT_RECORDED)  # episodes 3 (50 %) and 7 (0 %)
    assert (unrecorded["episodes"], unrecorded["mean_improvement_pct"]) == (2, 25)
    assert row(table, "retention_s", "in and out (0 s)")["episodes"] == 1
    assert row(table, "retention_s", "up to 5 min")["mean_improvement_pct"] == pytest.approx(50)  # episode 3
    assert row(table, "retention_s", "5–15 min")["episodes"] == 2  # episodes 2 (600 s) and 4 (900 s, included)


def test_electrical_parameters_count_electrical_episodes_only(table):
    assert table.loc[table["dose"] == "estim_hz", "episodes"].sum() == 2  # episodes 4 and 7
    assert row(table, "estim_hz", "up to 10 Hz")["mean_improvement_pct"] == pytest.approx(75)
    assert row(table, "estim_hz", "over 50 Hz")["mean_improvement_pct"] == pytest.approx(0)
    assert row(table, "estim_ma", "2–5 mA")["episodes"] == 1  # episode 4: 4 mA
    assert row(table, "estim_ma", "up to 2 mA")["episodes"] == 1  # episode 7: 2 mA, the edge included


def test_the_table_lists_every_group_in_order_and_counts_what_it_leaves_out(table):
    assert table.attrs == {"episodes": 6, "excluded_baseline_zero": 1}
    assert list(table.loc[table["dose"] == "twitch_count", "group"]) == ["0", "1–2", "3–5", "> 5", "not recorded"]
    assert list(table.columns) == dose_outcome.COLUMNS
    assert list(dict.fromkeys(table["dose"])) == list(dose_outcome.DOSE_COLUMNS)


def test_no_session_reaching_session_4_gives_empty_groups_not_an_error():
    early = pd.DataFrame([row for row in ROWS if row[1] < 4], columns=COLUMNS)
    table = dose_outcome.dose_outcome(early)
    assert table["episodes"].sum() == 0 and table.attrs["episodes"] == 0
    assert np.isnan(table["mean_improvement_pct"]).all()


def test_the_caveat_says_the_figures_are_observational():
    assert "not a trial" in dose_outcome.CAVEAT
    assert "Nothing here is adjusted" in dose_outcome.CAVEAT


def test_the_table_from_episodes_summarised_a_part_at_a_time_is_the_table_of_all_the_sessions():
    """The Needling record page reads the sample in parts of whole episodes (db.frames.whole_groups) and
    summarises each as it comes: cut in reading order, between and inside episodes, the parts give the same table."""
    sessions = pd.DataFrame(ROWS, columns=COLUMNS).sort_values(["episode_id", "session_number"], ignore_index=True)
    read = iter([sessions.iloc[0:6], sessions.iloc[6:7], sessions.iloc[7:19], sessions.iloc[19:]])
    parts = list(whole_groups(read, "episode_id"))
    assert [sorted(set(part["episode_id"])) for part in parts] == [[1], [2, 3, 4], [5, 6], [7]]
    together = pd.concat([dose_outcome.episode_doses(part) for part in parts], ignore_index=True)
    whole = dose_outcome.dose_outcome(sessions)
    pd.testing.assert_frame_equal(dose_outcome.dose_table(together), whole, check_exact=True)
    assert dose_outcome.dose_table(together).attrs == whole.attrs == {"episodes": 6, "excluded_baseline_zero": 1}


def test_parts_of_no_row_give_one_empty_part():
    empty = pd.DataFrame(columns=COLUMNS)
    assert [len(part) for part in whole_groups(iter([empty]), "episode_id")] == [0]
