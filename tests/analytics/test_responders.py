"""Tests that analytics.responders counts IMMPACT responders at the last session and by session 4, by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics import outcomes, responders
from tests.analytics.test_comparison import sample_improvement

Z95 = stats.norm.ppf(0.975)


def textbook_wilson(successes: int, trials: int) -> tuple[float, float]:
    """Return the 95 % Wilson score interval by its textbook formula."""
    p = successes / trials
    centre = (p + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 / (1 + Z95**2 / trials) * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2))
    return centre - half, centre + half


def episodes(technique: str, *pains: list[float], first_id: int = 1) -> list[tuple]:
    """Return session rows (episode_id, k, technique, pain) for episodes given as lists of pain before each session."""
    return [
        (first_id + i, k, technique, pain)
        for i, series in enumerate(pains)
        for k, pain in enumerate(series, start=1)
    ]


# Deep, worked by hand (baseline 100 unless said; improvement in % = 100 − pain):
#   1: 100, 80, 65, 75, 40      -> 35 % at session 3, 25 % at session 4, 60 % at the last (5)
#   2: 100, 60                  -> 40 % at its last session (2), so by session 4 as well
#   3: 100, 90, 85, 84, 60, 45  -> 16 % by session 4, 55 % at the last (6)
#   4: 100, 110                 -> −10 % (worse), never a responder
#   5: baseline 0: 0, 10        -> percent undefined, left out of every share
# Electrical: two episodes, both ≥ 50 % at every follow-up session -> 2 of 2 (Wilson at n).
# Superficial: two episodes never reaching 15 % -> 0 of 2 (Wilson at 0).
ROWS = (
    episodes("deep", [100, 80, 65, 75, 40], [100, 60], [100, 90, 85, 84, 60, 45], [100, 110], [0, 10])
    + episodes("electrical", [80, 30, 20], [60, 25], first_id=10)
    + episodes("superficial", [70, 68, 65], [50, 48], first_id=20)
)


@pytest.fixture(scope="module")
def improvement() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["episode_id", "session_number", "technique", "pain_before"])
    return outcomes.cumulative_improvement(frame.assign(pain_scale="vas_100"))


@pytest.fixture(scope="module")
def shares(improvement) -> pd.DataFrame:
    return responders.responder_shares(improvement)


def share(table: pd.DataFrame, technique: str, timepoint: str, threshold: int) -> pd.Series:
    rows = table[
        (table["technique"] == technique) & (table["timepoint"] == timepoint) & (table["threshold_pct"] == threshold)
    ]
    assert len(rows) == 1
    return rows.iloc[0]


def test_shares_at_the_last_session_are_counted_from_each_episodes_last_improvement(shares):
    hand = {15: 3, 30: 3, 50: 2}  # last improvements 60, 40, 55, −10 (episode 5 has baseline 0)
    for threshold, count in hand.items():
        got = share(shares, "deep", responders.LAST, threshold)
        assert (got["patients"], got["responders"]) == (4, count)
        assert got["share"] == pytest.approx(count / 4)


def test_by_session_4_means_reached_at_any_session_up_to_4_even_if_pain_rose_again(shares):
    # Episode 1 reached 30 % at session 3 and was at 25 % at session 4: it counts. Episode 3's 55 % came at
    # session 6: only its 16 % counts. Episode 2 stopped at session 2 with 40 %: it counts.
    hand = {15: 3, 30: 2, 50: 0}
    for threshold, count in hand.items():
        got = share(shares, "deep", "by session 4", threshold)
        assert (got["patients"], got["responders"]) == (4, count)


def test_wilson_intervals_at_0_and_at_n_match_the_textbook_formula(shares):
    none = share(shares, "superficial", responders.LAST, 15)
    assert (none["responders"], none["patients"]) == (0, 2)
    low, high = textbook_wilson(0, 2)
    assert none["ci95_low"] == pytest.approx(low, abs=1e-12) and none["ci95_low"] == pytest.approx(0, abs=1e-12)
    assert none["ci95_high"] == pytest.approx(high)
    every = share(shares, "electrical", "by session 4", 50)
    assert (every["responders"], every["patients"]) == (2, 2)
    low, high = textbook_wilson(2, 2)
    assert every["ci95_low"] == pytest.approx(low)
    assert every["ci95_high"] == pytest.approx(high) and every["ci95_high"] == pytest.approx(1.0)


def test_wilson_interval_of_a_middle_share_matches_the_textbook_formula(shares):
    got = share(shares, "deep", responders.LAST, 50)
    low, high = textbook_wilson(2, 4)
    assert (got["ci95_low"], got["ci95_high"]) == (pytest.approx(low), pytest.approx(high))


def test_every_technique_threshold_and_timepoint_has_one_row(shares):
    assert len(shares) == 3 * 3 * 2
    assert list(shares.columns) == responders.SHARE_COLUMNS
    assert set(shares["timepoint"]) == {responders.LAST, "by session 4"}


def test_by_session_can_be_another_session_number(improvement):
    table = responders.responder_shares(improvement, session=2, thresholds=(30,))
    got = share(table, "deep", "by session 2", 30)
    assert got["responders"] == 1  # only episode 2 (40 % at session 2); episode 1 was at 20 %


# the cumulative responder curve


@pytest.fixture(scope="module")
def curve(improvement) -> pd.DataFrame:
    return responders.responder_curve(improvement)


def test_the_curve_has_every_integer_threshold_from_0_to_100_for_each_technique(curve):
    for technique in ("deep", "electrical", "superficial"):
        assert curve.loc[curve["technique"] == technique, "threshold_pct"].tolist() == list(range(101))


def test_the_curve_is_1_at_0_when_no_patient_got_worse_and_never_rises(curve):
    for technique, rows in curve.groupby("technique"):
        shares = rows["share"].to_numpy()
        assert np.all(np.diff(shares) <= 0), technique
    for technique in ("electrical", "superficial"):  # improvements ≥ 0 only
        assert curve[(curve["technique"] == technique) & (curve["threshold_pct"] == 0)]["share"].item() == 1.0


def test_the_curve_counts_each_episodes_last_improvement_against_x(curve):
    deep = curve[curve["technique"] == "deep"].set_index("threshold_pct")
    # last improvements of the 4 deep episodes with a baseline: 60, 40, 55, −10
    hand = {0: 3, 40: 3, 41: 2, 55: 2, 56: 1, 60: 1, 61: 0, 100: 0}
    for x, count in hand.items():
        assert deep.loc[x, "responders"] == count, x
        assert deep.loc[x, "patients"] == 4
    low, high = textbook_wilson(3, 4)
    assert (deep.loc[0, "ci95_low"], deep.loc[0, "ci95_high"]) == (pytest.approx(low), pytest.approx(high))


def test_the_curve_on_the_sample_data_starts_near_1_and_ends_near_0():
    curve = responders.responder_curve(sample_improvement())
    start = curve[curve["threshold_pct"] == 0]
    end = curve[curve["threshold_pct"] == 100]
    assert (start["share"] > 0.85).all() and (end["share"] < 0.05).all()
    assert set(curve["technique"]) == {"superficial", "deep", "electrical"}
