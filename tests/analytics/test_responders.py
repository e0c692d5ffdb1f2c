"""Tests that analytics.responders counts IMMPACT responders at the last session and by session 4, by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics import outcomes, responders
from tests.analytics import independent
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
#   6: 100                      -> a single session: no follow-up, in no share (not "0 % improvement")
# Electrical: two episodes, both ≥ 50 % at every follow-up session -> 2 of 2 (Wilson at n).
# Superficial: two episodes never reaching 15 % -> 0 of 2 (Wilson at 0).
ROWS = (
    episodes("deep", [100, 80, 65, 75, 40], [100, 60], [100, 90, 85, 84, 60, 45], [100, 110], [0, 10], [100])
    + episodes("electrical", [80, 30, 20], [60, 25], first_id=10)
    + episodes("superficial", [70, 68, 65], [50, 48], first_id=20)
)


@pytest.fixture(scope="module")
def improvement() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["episode_id", "session_number", "technique", "pain_before"])
    return outcomes.cumulative_improvement(frame.assign(pain_scale="vas_100"))


@pytest.fixture(scope="module")
def shares(improvement) -> pd.DataFrame:
    return outcomes.responder_table(outcomes.responder_counts(improvement))


def share(table: pd.DataFrame, technique: str, threshold: int) -> pd.Series:
    rows = table[(table["technique"] == technique) & (table["threshold_pct"] == threshold)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_shares_at_the_last_session_are_counted_from_each_episodes_last_improvement(shares):
    hand = {15: 3, 30: 3, 50: 2}  # last improvements 60, 40, 55, −10 (episode 5 has baseline 0)
    for threshold, count in hand.items():
        got = share(shares, "deep", threshold)
        assert (got["patients"], got["responders"]) == (4, count)
        assert got["share"] == pytest.approx(count / 4)


def test_wilson_intervals_at_0_and_at_n_match_the_textbook_formula(shares):
    none = share(shares, "superficial", 15)
    assert (none["responders"], none["patients"]) == (0, 2)
    low, high = textbook_wilson(0, 2)
    assert none["ci95_low"] == pytest.approx(low, abs=1e-12) and none["ci95_low"] == pytest.approx(0, abs=1e-12)
    assert none["ci95_high"] == pytest.approx(high)
    every = share(shares, "electrical", 50)
    assert (every["responders"], every["patients"]) == (2, 2)
    low, high = textbook_wilson(2, 2)
    assert every["ci95_low"] == pytest.approx(low)
    assert every["ci95_high"] == pytest.approx(high) and every["ci95_high"] == pytest.approx(1.0)


def test_wilson_interval_of_a_middle_share_matches_the_textbook_formula(shares):
    got = share(shares, "deep", 50)
    low, high = textbook_wilson(2, 4)
    assert (got["ci95_low"], got["ci95_high"]) == (pytest.approx(low), pytest.approx(high))


# two criteria (IMMPACT's "at least two ways")


def last_session(*pains: float, scale: str = "vas_100", rule=outcomes.DEFAULT_RULE) -> dict[int, int]:
    """Return {threshold: responders} of one two-session-or-longer episode with these pains before each session."""
    frame = pd.DataFrame([(1, k, "deep", scale, p) for k, p in enumerate(pains, start=1)],
                         columns=["episode_id", "session_number", "technique", "pain_scale", "pain_before"])
    counts = outcomes.responder_counts(outcomes.cumulative_improvement(frame), rule=rule)
    return dict(zip(counts["threshold_pct"], counts["responders"], strict=True))


def test_nrs_2_to_1_is_50_percent_but_one_point_so_it_is_no_responder():
    assert last_session(2, 1, scale="nrs_10") == {15: 0, 30: 0, 50: 0}
    assert outcomes.progress_sentence(one_patient(2, 1, scale="nrs_10")) == (
        "Your pain is 50 % lower than at your first session."  # no "substantial" for one step of the scale
    )


def test_from_a_baseline_of_4_of_10_the_percent_alone_classifies():
    assert last_session(4, 2, scale="nrs_10") == {15: 1, 30: 1, 50: 1}  # 50 %, 20 points
    assert last_session(50, 35) == {15: 1, 30: 1, 50: 0}  # 30 % and 15 points: baseline 50 ≥ 40


def test_below_a_baseline_of_40_the_improvement_must_also_reach_the_mcid_of_20_points():
    assert last_session(30, 10) == {15: 1, 30: 1, 50: 1}  # 67 %, 20 points
    assert last_session(39, 20) == {15: 0, 30: 0, 50: 0}  # 49 %, 19 points
    assert last_session(3, 1, scale="nrs_10") == {15: 1, 30: 1, 50: 1}  # 67 %, 20 points on the NRS


def test_the_mcid_and_minimum_baseline_are_configurable():
    lenient = outcomes.ResponderRule(mcid_points=10.0)
    assert last_session(2, 1, scale="nrs_10", rule=lenient) == {15: 1, 30: 1, 50: 1}
    percent_only = outcomes.ResponderRule(min_baseline_points=0.0)
    assert last_session(2, 1, scale="nrs_10", rule=percent_only) == {15: 1, 30: 1, 50: 1}
    assert "20 points" in outcomes.DEFAULT_RULE.sentence() and "40 of 100" in outcomes.DEFAULT_RULE.sentence()


def one_patient(*pains: float, scale: str = "vas_100") -> pd.DataFrame:
    frame = pd.DataFrame([(1, k, "deep", scale, p) for k, p in enumerate(pains, start=1)],
                         columns=["episode_id", "session_number", "technique", "pain_scale", "pain_before"])
    return outcomes.cumulative_improvement(frame)


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


def test_the_curve_leaves_out_single_session_episodes_as_the_bars_do(curve, shares):
    deep = curve[curve["technique"] == "deep"].set_index("threshold_pct")
    assert set(deep["patients"]) == {4}  # episode 6 (one session) is not a 0 % improvement
    for threshold in (15, 30, 50):
        bar = share(shares, "deep", threshold)
        assert (deep.loc[threshold, "responders"], deep.loc[threshold, "patients"]) == (
            bar["responders"], bar["patients"])


def test_on_the_sample_data_the_curve_at_15_30_and_50_equals_the_shares_recomputed_from_the_csv():
    # The figure: deep ≥ 30 % was 80 of 120 on the curve (single sessions as 0 %) against 80 of 109.
    episodes = independent.episodes_from_rows(independent.read_rows())
    curve = responders.responder_curve(sample_improvement()).set_index(["technique", "threshold_pct"])
    for threshold in (15, 30, 50):
        for technique, (hit, n) in independent.last_session_responders(episodes, threshold).items():
            assert (curve.loc[(technique, threshold), "responders"], curve.loc[(technique, threshold), "patients"]) == (
                hit, n), (technique, threshold)
    assert curve.loc[("deep", 30), "patients"] == 109


def test_below_the_minimal_threshold_a_low_baseline_episode_counts_by_percent_alone():
    rule = outcomes.DEFAULT_RULE
    # First pain 30 of 100, 10 points better (33 %): not an important improvement (under 20 points) ...
    assert not bool(rule.reaches(33.3, 10.0, 30.0, 15))
    # ... but on the cumulative curve's low end it has improved by at least 0 and 10 %, as any improvement has.
    assert bool(rule.reaches(33.3, 10.0, 30.0, 0)) and bool(rule.reaches(33.3, 10.0, 30.0, 10))


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_responders_counted_a_part_at_a_time_equal_the_count_of_the_whole(parts):
    """The technique page counts a network's episodes a part at a time (#15): the table must be the whole's."""
    rng = np.random.default_rng(parts)
    n = 500
    baseline = rng.integers(0, 11, n).astype(float)
    raw = pd.DataFrame({
        "episode_id": np.arange(1, n + 1),
        "technique": rng.choice(["deep", "superficial", "electrical"], n),
        "sessions": rng.integers(1, 8, n),
        "baseline_scale": "nrs_10", "baseline_pain": baseline,
        "last_scale": "nrs_10", "last_pain": np.clip(baseline - rng.integers(-2, 9, n), 0, 10).astype(float),
    })
    whole = outcomes.count_responders(outcomes.last_from_pain(raw))
    edges = [0, *sorted(rng.choice(np.arange(1, n), parts - 1, replace=False)), n]
    no_rows = pd.DataFrame({column: [] for column in raw.columns})  # what a read of no rows gives
    pieces = [no_rows, *(raw.iloc[start:end] for start, end in itertools.pairwise(edges))]
    summed = outcomes.count_responders_in_parts(map(outcomes.last_from_pain, pieces))
    pd.testing.assert_frame_equal(outcomes.responder_table(summed),
                                  outcomes.responder_table(whole.astype({"patients": int, "responders": int})))
    assert summed["patients"].sum() > 0 and summed["responders"].sum() > 0
