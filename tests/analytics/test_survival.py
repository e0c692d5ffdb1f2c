"""Tests that analytics.survival gives the product-limit curve, Greenwood band and median worked out by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics import outcomes, survival
from tests.analytics import independent
from tests.analytics.test_comparison import sample_improvement

Z95 = stats.norm.ppf(0.975)

# Six deep-needling episodes, baseline 100, so improvement in % = 100 − pain. The first session with ≥ 30 %
# is the event; an episode that never gets there is censored at its last session.
#   A 100, 60                -> responds at 2
#   B 100, 90, 70            -> responds at 3
#   C 100, 90, 80            -> censored at 3
#   D 100, 95, 80, 50, 75    -> responds at 4 (the later relapse does not move the first response)
#   E 100, 90, 85, 80, 75    -> censored at 5
#   F 100, 90, 90, 90, 80, 65 -> responds at 6
DEEP = {"A": [100, 60], "B": [100, 90, 70], "C": [100, 90, 80], "D": [100, 95, 80, 50, 75],
        "E": [100, 90, 85, 80, 75], "F": [100, 90, 90, 90, 80, 65]}
# Product limit by hand: S(k) = Π over event sessions j ≤ k of (1 − d_j / n_j).
#   k=1: n 6, d 0 -> 1      k=2: n 6, d 1 -> 5/6     k=3: n 5, d 1 (and C censored) -> 5/6 · 4/5 = 2/3
#   k=4: n 3, d 1 -> 2/3 · 2/3 = 4/9                  k=5: n 2, d 0 (E censored) -> 4/9    k=6: n 1, d 1 -> 0
HAND_SURVIVAL = {1: 1.0, 2: 5 / 6, 3: 2 / 3, 4: 4 / 9, 5: 4 / 9, 6: 0.0}
HAND_RISK = {1: (6, 0, 0), 2: (6, 1, 0), 3: (5, 1, 1), 4: (3, 1, 0), 5: (2, 0, 1), 6: (1, 1, 0)}  # n, d, censored
HAND_EVENTS = [(2, 6, 1), (3, 5, 1), (4, 3, 1), (6, 1, 1)]  # (session, at risk, responses) for Greenwood


def frame(groups: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """Return cumulative_improvement of {technique: {episode: [pain before each session]}}."""
    rows = [
        (f"{technique}-{episode}", k, technique, pain)
        for technique, series in groups.items()
        for episode, pains in series.items()
        for k, pain in enumerate(pains, start=1)
    ]
    sessions = pd.DataFrame(rows, columns=["episode_id", "session_number", "technique", "pain_before"])
    return outcomes.cumulative_improvement(sessions.assign(pain_scale="vas_100"))


@pytest.fixture(scope="module")
def times() -> pd.DataFrame:
    return survival.time_to_response(frame({"deep": DEEP, "electrical": {"Z": [0, 10, 0]}}))


@pytest.fixture(scope="module")
def curve(times) -> pd.DataFrame:
    return survival.kaplan_meier(times).set_index("session_number")


def hand_loglog(k: int) -> tuple[float, float]:
    """Return the 95 % log–log interval of S(k) from Greenwood's variance, by the textbook formulas."""
    s = HAND_SURVIVAL[k]
    greenwood = s**2 * sum(d / (n * (n - d)) for j, n, d in HAND_EVENTS if j <= k)
    se_loglog = math.sqrt(greenwood) / (s * abs(math.log(s)))
    centre = math.log(-math.log(s))
    return math.exp(-math.exp(centre + Z95 * se_loglog)), math.exp(-math.exp(centre - Z95 * se_loglog))


def test_time_to_response_is_the_first_session_with_30_percent_or_the_last_session_if_censored(times):
    deep = times[times["technique"] == "deep"].set_index("episode_id")
    got = {e.split("-")[1]: (int(r.sessions), bool(r.responded)) for e, r in deep.iterrows()}
    assert got == {"A": (2, True), "B": (3, True), "C": (3, False), "D": (4, True), "E": (5, False), "F": (6, True)}


def test_episodes_with_baseline_0_are_left_out_of_time_to_response(times):
    assert "electrical" not in set(times["technique"])


def test_kaplan_meier_matches_the_product_limit_by_hand_with_two_censored_episodes(curve):
    deep = curve[curve["technique"] == "deep"]
    assert list(deep.index) == [1, 2, 3, 4, 5, 6]
    for k, s in HAND_SURVIVAL.items():
        assert deep.loc[k, "survival"] == pytest.approx(s, abs=1e-12), k
        assert deep.loc[k, "responded_share"] == pytest.approx(1 - s, abs=1e-12), k
        assert (deep.loc[k, "at_risk"], deep.loc[k, "responses"], deep.loc[k, "censored"]) == HAND_RISK[k], k


def test_the_band_is_the_log_log_interval_from_greenwoods_variance(curve):
    deep = curve[curve["technique"] == "deep"]
    for k in (2, 3, 4, 5):
        low, high = hand_loglog(k)
        assert deep.loc[k, "ci95_low"] == pytest.approx(low, rel=1e-9), k
        assert deep.loc[k, "ci95_high"] == pytest.approx(high, rel=1e-9), k
        assert 0 <= deep.loc[k, "ci95_low"] < deep.loc[k, "survival"] < deep.loc[k, "ci95_high"] <= 1
    # Session 4 worked through: Greenwood (4/9)² · (1/30 + 1/20 + 1/6) = 4/81, a standard error of exactly 2/9.
    s, se = 4 / 9, 2 / 9
    spread = Z95 * se / (s * abs(math.log(s)))
    assert deep.loc[4, "ci95_low"] == pytest.approx(math.exp(-math.exp(math.log(-math.log(s)) + spread)))
    assert deep.loc[4, "ci95_high"] == pytest.approx(math.exp(-math.exp(math.log(-math.log(s)) - spread)))
    assert (deep.loc[1, "ci95_low"], deep.loc[1, "ci95_high"]) == (1.0, 1.0)  # nobody responds at session 1
    assert math.isnan(deep.loc[6, "ci95_low"]) and math.isnan(deep.loc[6, "ci95_high"])  # undefined at S = 0


def test_the_median_is_the_first_session_where_the_curve_is_at_or_below_one_half(times):
    medians = survival.median_sessions(times).set_index("technique")
    assert medians.loc["deep", "median_sessions"] == 4  # S(3) = 2/3, S(4) = 4/9
    assert (medians.loc["deep", "patients"], medians.loc["deep", "responses"]) == (6, 4)
    # The interval: where the band's limits first reach 0.5. By hand (hand_loglog) the lower limit is 0.273 at
    # session 2; the upper limit is 0.975, 0.904, 0.785, 0.785 at sessions 2–5 and undefined at S(6) = 0.
    assert hand_loglog(2)[0] <= 0.5 < min(hand_loglog(k)[1] for k in (2, 3, 4, 5))
    assert medians.loc["deep", "median_ci95_low"] == 2
    assert medians.loc["deep", "median_ci95_high"] is None


def test_the_median_is_none_when_the_curve_never_drops_to_one_half():
    # 1 of 3 responds at session 2, the others stop at sessions 3 and 4: S stays at 2/3.
    times = survival.time_to_response(frame({"superficial": {"a": [80, 40], "b": [80, 75, 70], "c": [80, 80, 78, 70]}}))
    medians = survival.median_sessions(times)
    assert medians.loc[0, "median_sessions"] is None
    assert medians.loc[0, "median_ci95_high"] is None


def test_a_curve_exactly_at_one_half_reaches_the_median_there():
    # 1 of 2 responds at session 2 and the other stops at 3: S(2) = 1/2, so the median is 2 sessions
    # (statsmodels' own quantile, with its strict "<", would say never).
    times = survival.time_to_response(frame({"deep": {"a": [50, 30], "b": [50, 45, 40]}}))
    assert survival.median_sessions(times).loc[0, "median_sessions"] == 2


def test_a_technique_with_no_response_stays_at_1_with_no_median_and_no_warning():
    times = survival.time_to_response(frame({"superficial": {"a": [60, 58, 55], "b": [70, 69]}}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curve = survival.kaplan_meier(times)
        medians = survival.median_sessions(times)
    assert [str(w.message) for w in caught] == []
    assert curve["survival"].tolist() == [1.0, 1.0, 1.0]
    assert curve["at_risk"].tolist() == [2, 2, 1]
    assert medians.loc[0, "median_sessions"] is None


def test_the_sample_data_gives_non_increasing_curves_within_their_bands_without_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        times = survival.time_to_response(sample_improvement())
        curve = survival.kaplan_meier(times)
        medians = survival.median_sessions(times)
    assert [str(w.message) for w in caught] == []
    for _, rows in curve.groupby("technique"):
        assert np.all(np.diff(rows["survival"].to_numpy()) <= 1e-12)
        band = rows.dropna(subset=["ci95_low", "ci95_high"])
        assert (band["ci95_low"] <= band["survival"] + 1e-12).all()
        assert (band["survival"] <= band["ci95_high"] + 1e-12).all()
    assert set(medians["technique"]) == {"superficial", "deep", "electrical"}
    assert all(m is None or isinstance(m, int) for m in medians["median_sessions"])


# "reached by session k": the one definition, Kaplan–Meier for every threshold


def test_reached_by_session_k_is_one_minus_the_product_limit_with_the_band_turned_round(times):
    table = survival.reached_table(frame({"deep": DEEP}), thresholds=(30,)).set_index("session_number")
    assert list(table.columns[:2]) == ["technique", "threshold_pct"] and list(table.index) == [2, 3, 4, 5, 6]
    for k in (2, 3, 4, 5, 6):
        n, d, _ = HAND_RISK[k]
        assert (table.loc[k, "at_risk"], table.loc[k, "events"]) == (n, d), k
        assert table.loc[k, "reached"] == pytest.approx(1 - HAND_SURVIVAL[k], abs=1e-12), k
    for k in (2, 3, 4, 5):
        low, high = hand_loglog(k)
        assert (table.loc[k, "ci95_low"], table.loc[k, "ci95_high"]) == (pytest.approx(1 - high),
                                                                          pytest.approx(1 - low)), k
    assert math.isnan(table.loc[6, "ci95_low"]) and math.isnan(table.loc[6, "ci95_high"])  # S = 0: undefined


def test_an_episode_that_stopped_before_session_4_is_censored_not_a_non_responder():
    # a reaches 30 % at 2; b stops after session 2 without it; c and d carry on and c reaches it at 4.
    # At session 4, 2 are at risk (c, d): S(4) = (1 − 1/4) · (1 − 1/2) = 3/8, so 5/8 reached, not 2 of 4.
    improvement = frame({"deep": {"a": [80, 50], "b": [80, 75], "c": [80, 75, 70, 40], "d": [80, 78, 76, 70]}})
    table = survival.reached_table(improvement, thresholds=(30,)).set_index("session_number")
    assert table.loc[4, ["at_risk", "events"]].tolist() == [2, 1]
    assert table.loc[4, "reached"] == pytest.approx(5 / 8)


def simulated_course(episodes: int = 20_000, p: float = 0.35, seed: int = 14) -> tuple[pd.DataFrame, float]:
    """Return (improvement, truth): episodes whose first ≥ 30 % session T has T − 1 ~ Geometric(p), with dropout.

    Pain is 70 before T and 42 (40 % less, 28 points) from T on. Before responding an episode stops after each
    session with probability 0.25; after responding, with 0.3 (discharged): stopping does not depend on T, so
    the truth P(T ≤ 4) = 1 − (1 − p)³ is what a fair estimate must recover.
    """
    rng = np.random.default_rng(seed)
    response = 1 + rng.geometric(p, size=episodes)
    stops = rng.random((episodes, 10))
    k = np.arange(1, 11)
    hazard = np.where(k[None, :] < response[:, None], 0.25, 0.30)
    stopped = (stops < hazard) | (k[None, :] == 10)
    sessions = stopped.argmax(axis=1) + 1
    episode, index = np.nonzero(k[None, :] <= sessions[:, None])
    pain = np.where(k[index] < response[episode], 70.0, 42.0)
    rows = pd.DataFrame({"episode_id": episode, "session_number": k[index], "technique": "deep",
                         "pain_scale": "vas_100", "pain_before": pain})
    return outcomes.cumulative_improvement(rows), 1 - (1 - p) ** 3


def test_reached_by_session_4_recovers_a_simulated_truth_that_counting_stoppers_as_failures_misses():
    improvement, truth = simulated_course()
    table = survival.reached_table(improvement)
    at_4 = table[(table["threshold_pct"] == 30) & (table["session_number"] == 4)].iloc[0]
    assert at_4["reached"] == pytest.approx(truth, abs=0.015)  # truth 0.7254; standard error about 0.006
    assert at_4["ci95_low"] < truth < at_4["ci95_high"]
    # The old table: reached by 4 among every followed-up episode, stoppers counted as not reached.
    per_episode = improvement.groupby("episode_id").agg(sessions=("session_number", "max"))
    first = improvement[improvement["improvement_pct"] >= 30].groupby("episode_id")["session_number"].min()
    followed = per_episode[per_episode["sessions"] >= 2]
    naive = (first.reindex(followed.index) <= 4).mean()
    assert naive < truth - 0.05
    # 40 % never reaches 50 %: nobody, at any session
    assert (table.loc[table["threshold_pct"] == 50, "reached"] == 0).all()


def test_on_the_sample_data_reached_equals_a_textbook_kaplan_meier_of_the_csv():
    expected = independent.reached_by_technique(independent.episodes_from_rows(independent.read_rows()))
    got = survival.reached_table(sample_improvement())
    keys = ["technique", "threshold_pct", "session_number"]
    got, expected = got.sort_values(keys, ignore_index=True), expected.sort_values(keys, ignore_index=True)
    assert got[keys + ["at_risk", "events"]].astype(str).equals(expected[keys + ["at_risk", "events"]].astype(str))
    for column in ("reached", "ci95_low", "ci95_high"):
        assert np.allclose(got[column].astype(float), expected[column].astype(float), atol=1e-9, equal_nan=True)


def test_a_threshold_every_episode_reached_before_session_4_is_reached_by_session_4():
    # 15 %: a and b both reach it at session 3, so no episode is at risk at 4, yet 100 % reached it by then.
    # 30 %: a reaches it at 3; b stops at 3 without it: past its last session the product limit says nothing.
    improvement = frame({"deep": {"a": [80, 75, 50], "b": [80, 76, 66]}})
    table = survival.reached_table(improvement, thresholds=(15, 30))
    assert 4 not in set(table["session_number"])
    by_then = survival.reached_by(table, 4)
    assert by_then[["technique", "threshold_pct", "session_number", "at_risk", "events", "reached"]].values.tolist() \
        == [["deep", 15, 4, 0, 0, 1.0]]
    assert survival.reached_by(table, 3)["threshold_pct"].tolist() == [15, 30]  # the rows at 3, as they are
