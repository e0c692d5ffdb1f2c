"""Tests that analytics.outcomes computes the definitions of docs/METHODS.md, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics import outcomes

Z95 = stats.norm.ppf(0.975)


def sessions(*rows: tuple) -> pd.DataFrame:
    """Return a per-session frame from (episode_id, session_number, technique, pain_scale, pain_before) tuples."""
    return pd.DataFrame(rows, columns=["episode_id", "session_number", "technique", "pain_scale", "pain_before"])


# Six episodes worked through by hand (improvement in points of the 0–100 scale, and in percent of the baseline):
#   1 deep, VAS           80, 60, 40          -> points 0, 20, 40     pct 0, 25, 50
#   2 deep, NRS/VAS mixed nrs 5, vas 35, nrs 2 -> 50, 35, 20 -> 0, 15, 30   pct 0, 30, 60
#   3 deep, drops out     40, 30              -> points 0, 10         pct 0, 25
#   4 superficial, then switched to deep at session 2: 50, 45, 40 -> 0, 5, 10   pct 0, 10, 20
#   5 electrical, baseline 0: 0, 10           -> points 0, -10        pct undefined
#   6 electrical, one session only: 70         -> points 0             pct 0
CLINIC = sessions(
    (2, 3, "deep", "nrs_10", 2),  # rows deliberately out of order: the function sorts by episode and number
    (1, 1, "deep", "vas_100", 80),
    (1, 2, "deep", "vas_100", 60),
    (1, 3, "deep", "vas_100", 40),
    (2, 1, "deep", "nrs_10", 5),
    (2, 2, "deep", "vas_100", 35),
    (3, 1, "deep", "vas_100", 40),
    (3, 2, "deep", "vas_100", 30),
    (4, 1, "superficial", "vas_100", 50),
    (4, 2, "deep", "vas_100", 45),
    (4, 3, "deep", "vas_100", 40),
    (5, 1, "electrical", "vas_100", 0),
    (5, 2, "electrical", "vas_100", 10),
    (6, 1, "electrical", "vas_100", 70),
)


@pytest.fixture
def improvement() -> pd.DataFrame:
    return outcomes.cumulative_improvement(CLINIC)


def at(frame: pd.DataFrame, episode: int, k: int) -> pd.Series:
    """Return the row of one episode's session k."""
    rows = frame[(frame["episode_id"] == episode) & (frame["session_number"] == k)]
    assert len(rows) == 1
    return rows.iloc[0]


def hand_interval(values: list[float]) -> tuple[float, float, float]:
    """Return mean and 95 % Student-t interval (mean ± t·sd/√n, sd with ddof=1) of values."""
    x = np.asarray(values, dtype=float)
    mean = x.mean()
    half = stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def textbook_wilson(successes: int, trials: int) -> tuple[float, float]:
    """Return the 95 % Wilson score interval by its textbook formula."""
    p = successes / trials
    centre = (p + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 / (1 + Z95**2 / trials) * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2))
    return centre - half, centre + half


# to_points


def test_nrs_scores_are_multiplied_by_ten_and_vas_scores_kept_as_entered():
    points = outcomes.to_points(pd.Series([7, 45.5, 0, 10]), pd.Series(["nrs_10", "vas_100", "nrs_10", "vas_100"]))
    assert points.tolist() == [70.0, 45.5, 0.0, 10.0]


def test_an_unknown_pain_scale_is_refused_with_a_message_naming_pain_scale_and_the_scale():
    with pytest.raises(ValueError, match=r"pain_scale.*likert_5"):
        outcomes.to_points(pd.Series([3, 40]), pd.Series(["likert_5", "vas_100"]))


# cumulative_improvement


def test_cumulative_improvement_is_baseline_minus_pain_in_points_and_percent_of_baseline(improvement):
    expected = {  # (episode, k): (points, pct)
        (1, 1): (0, 0), (1, 2): (20, 25), (1, 3): (40, 50),
        (3, 1): (0, 0), (3, 2): (10, 25),
        (6, 1): (0, 0),
    }
    for (episode, k), (points, pct) in expected.items():
        row = at(improvement, episode, k)
        assert row["improvement_points"] == pytest.approx(points)
        assert row["improvement_pct"] == pytest.approx(pct)


def test_nrs_and_vas_sessions_of_one_episode_are_compared_on_the_0_to_100_scale(improvement):
    assert at(improvement, 2, 1)["baseline_points"] == 50
    assert [at(improvement, 2, k)["pain_before_points"] for k in (1, 2, 3)] == [50, 35, 20]
    assert at(improvement, 2, 2)["improvement_pct"] == pytest.approx(30)
    assert at(improvement, 2, 3)["improvement_points"] == pytest.approx(30)
    assert at(improvement, 2, 3)["improvement_pct"] == pytest.approx(60)


def test_percent_improvement_is_undefined_when_baseline_is_zero_but_points_are_defined(improvement):
    first, second = at(improvement, 5, 1), at(improvement, 5, 2)
    assert first["baseline_points"] == 0 and second["baseline_points"] == 0
    assert math.isnan(first["improvement_pct"]) and math.isnan(second["improvement_pct"])
    assert first["improvement_points"] == 0
    assert second["improvement_points"] == -10


def test_a_single_session_episode_has_zero_improvement():
    one = outcomes.cumulative_improvement(sessions((9, 1, "deep", "nrs_10", 6)))
    assert len(one) == 1
    assert one.loc[0, "baseline_points"] == 60
    assert one.loc[0, "improvement_points"] == 0
    assert one.loc[0, "improvement_pct"] == 0


def test_episodes_of_different_lengths_keep_their_own_sessions_only(improvement):
    per_episode = improvement.groupby("episode_id")["session_number"].apply(list).to_dict()
    assert per_episode == {1: [1, 2, 3], 2: [1, 2, 3], 3: [1, 2], 4: [1, 2, 3], 5: [1, 2], 6: [1]}
    assert len(improvement) == len(CLINIC)


def test_the_episode_technique_is_that_of_the_first_session_when_a_patient_switches(improvement):
    episode = improvement[improvement["episode_id"] == 4]
    assert episode["technique"].tolist() == ["superficial", "deep", "deep"]
    assert set(episode["episode_technique"]) == {"superficial"}


def test_pain_after_is_converted_to_points_when_present():
    frame = sessions((1, 1, "deep", "nrs_10", 6), (1, 2, "deep", "vas_100", 40)).assign(pain_after=[4, 35])
    result = outcomes.cumulative_improvement(frame)
    assert result["pain_after_points"].tolist() == [40.0, 35.0]
    assert outcomes.immediate_effect(frame).tolist() == [20.0, 5.0]


# curve_moments and technique_curve


def test_curve_moments_are_the_sums_per_episode_technique_and_session_number(improvement):
    moments = outcomes.curve_moments(improvement).set_index(["technique", "session_number"])
    assert list(moments.columns) == ["n", "sum_pain", "sum_points", "sum_pct", "sumsq_pct"]
    # Episode 5 (baseline 0) is left out; episode 4 counts as superficial although sessions 2 and 3 were deep.
    assert sorted(moments.index) == [
        ("deep", 1), ("deep", 2), ("deep", 3), ("electrical", 1),
        ("superficial", 1), ("superficial", 2), ("superficial", 3),
    ]
    deep2 = moments.loc[("deep", 2)]
    assert deep2["n"] == 3
    assert deep2["sum_pain"] == pytest.approx(60 + 35 + 30)
    assert deep2["sum_points"] == pytest.approx(20 + 15 + 10)
    assert deep2["sum_pct"] == pytest.approx(25 + 30 + 25)
    assert deep2["sumsq_pct"] == pytest.approx(25**2 + 30**2 + 25**2)
    assert moments.loc[("electrical", 1), "n"] == 1


def test_technique_curve_gives_the_mean_with_a_student_t_interval(improvement):
    curve = outcomes.technique_curve(outcomes.curve_moments(improvement)).set_index(["technique", "session_number"])
    for key, values in {("deep", 2): [25, 30, 25], ("deep", 3): [50, 60]}.items():
        mean, low, high = hand_interval(values)
        row = curve.loc[key]
        assert row["patients"] == len(values)
        assert row["mean_improvement_pct"] == pytest.approx(mean)
        assert row["ci95_low_pct"] == pytest.approx(low)
        assert row["ci95_high_pct"] == pytest.approx(high)
    deep3 = curve.loc[("deep", 3)]
    assert deep3["mean_pain_before"] == pytest.approx((40 + 20) / 2)
    assert deep3["mean_improvement_points"] == pytest.approx((40 + 30) / 2)


def test_technique_curve_interval_is_zero_wide_when_every_patient_has_the_same_improvement(improvement):
    deep1 = outcomes.technique_curve(outcomes.curve_moments(improvement)).set_index(
        ["technique", "session_number"]).loc[("deep", 1)]
    assert deep1["patients"] == 3
    assert deep1["ci95_low_pct"] == pytest.approx(0, abs=1e-9)
    assert deep1["ci95_high_pct"] == pytest.approx(0, abs=1e-9)


def test_technique_curve_interval_is_undefined_with_one_patient(improvement):
    curve = outcomes.technique_curve(outcomes.curve_moments(improvement)).set_index(["technique", "session_number"])
    single = curve.loc[("superficial", 3)]
    assert single["patients"] == 1
    assert single["mean_improvement_pct"] == pytest.approx(20)
    assert math.isnan(single["ci95_low_pct"]) and math.isnan(single["ci95_high_pct"])


def test_technique_curve_flags_points_with_fewer_than_ten_patients_as_small():
    frame = sessions(*[(e, 1, "deep", "vas_100", 50) for e in range(10)],
                     *[(e, 2, "deep", "vas_100", 40 + e % 3) for e in range(9)])
    curve = outcomes.technique_curve(outcomes.curve_moments(outcomes.cumulative_improvement(frame)))
    assert curve[["session_number", "patients", "small"]].values.tolist() == [[1, 10, False], [2, 9, True]]


def test_technique_curve_of_many_patients_matches_numpy_and_scipy():
    rng = np.random.default_rng(3)
    baseline = rng.integers(30, 90, size=25)
    later = np.minimum(baseline, rng.integers(0, 90, size=25))
    frame = sessions(*[(e, 1, "electrical", "vas_100", float(b)) for e, b in enumerate(baseline)],
                     *[(e, 2, "electrical", "vas_100", float(p)) for e, p in enumerate(later)])
    curve = outcomes.technique_curve(outcomes.curve_moments(outcomes.cumulative_improvement(frame)))
    second = curve[curve["session_number"] == 2].iloc[0]
    mean, low, high = hand_interval(list(100 * (baseline - later) / baseline))
    assert second["patients"] == 25 and not second["small"]
    assert (second["mean_improvement_pct"], second["ci95_low_pct"], second["ci95_high_pct"]) == pytest.approx(
        (mean, low, high))


# summary_table


def test_summary_table_has_exactly_the_contract_columns_rounded_to_two_decimals(improvement):
    summary = outcomes.summary_table(outcomes.technique_curve(outcomes.curve_moments(improvement)))
    assert list(summary.columns) == [
        "technique", "session_number", "patients", "mean_pain_before", "mean_improvement_points",
        "mean_improvement_pct", "ci95_low_pct", "ci95_high_pct",
    ]
    deep2 = summary[(summary["technique"] == "deep") & (summary["session_number"] == 2)].iloc[0]
    mean, low, high = hand_interval([25, 30, 25])
    assert deep2["mean_improvement_pct"] == round(mean, 2) == 26.67
    assert deep2["mean_pain_before"] == round(125 / 3, 2) == 41.67
    assert deep2["ci95_low_pct"] == round(low, 2)
    assert deep2["ci95_high_pct"] == round(high, 2)
    numbers = summary.select_dtypes("number")
    assert ((numbers.round(2) == numbers) | numbers.isna()).all().all()
    assert numbers.isna().any().any(), "single-patient points keep an undefined interval"


# wilson_interval


@pytest.mark.parametrize(("successes", "trials"), [(7, 20), (1, 3), (42, 120), (0, 12), (12, 12)])
def test_wilson_interval_matches_the_textbook_formula(successes, trials):
    low, high = outcomes.wilson_interval(successes, trials)
    expected_low, expected_high = textbook_wilson(successes, trials)
    assert float(low) == pytest.approx(expected_low, abs=1e-12)
    assert float(high) == pytest.approx(expected_high, abs=1e-12)


@pytest.mark.parametrize("trials", [12, 37, 624, 1571])
def test_wilson_interval_starts_at_exactly_zero_with_no_successes_and_ends_at_exactly_one_with_all(trials):
    # Exactly: a residue such as 4e-19 (0 of 624) reads on screen as a lower bound above 0.
    low, high = outcomes.wilson_interval([0, trials], [trials, trials])
    assert low[0] == 0.0 and 0 < high[0] < 1
    assert high[1] == 1.0 and 0 < low[1] < 1


# responders


def test_responders_are_counted_at_each_episodes_last_session(improvement):
    counts = outcomes.responder_counts(improvement)
    assert list(counts.columns) == ["technique", "threshold_pct", "patients", "responders"]
    got = {(r.technique, r.threshold_pct): (r.patients, r.responders) for r in counts.itertuples()}
    # Last sessions: deep 50 %, 60 %, 25 %; superficial 20 %. Electrical has no responder row: episode 5 has
    # baseline 0 and episode 6 a single session (no follow-up), so both are left out.
    assert got == {
        ("deep", 15): (3, 3), ("deep", 30): (3, 2), ("deep", 50): (3, 2),
        ("superficial", 15): (1, 1), ("superficial", 30): (1, 0), ("superficial", 50): (1, 0),
    }


def test_an_improvement_of_exactly_30_percent_is_a_responder_at_30_and_just_below_is_not():
    frame = sessions(
        (1, 1, "deep", "vas_100", 50), (1, 2, "deep", "vas_100", 35),  # exactly 30 %
        (2, 1, "deep", "nrs_10", 10), (2, 2, "deep", "nrs_10", 7),      # exactly 30 % on the NRS
        (3, 1, "deep", "vas_100", 50), (3, 2, "deep", "vas_100", 36),  # 28 %
        (4, 1, "deep", "vas_100", 50), (4, 2, "deep", "vas_100", 25),  # exactly 50 %
    )
    counts = outcomes.responder_counts(outcomes.cumulative_improvement(frame)).set_index("threshold_pct")
    assert counts.loc[30, "responders"] == 3
    assert counts.loc[50, "responders"] == 1
    assert counts.loc[15, "responders"] == 4
    assert (counts["patients"] == 4).all()


def test_responder_table_gives_shares_with_wilson_intervals():
    counts = pd.DataFrame(
        [("superficial", 30, 20, 7), ("deep", 50, 12, 12), ("deep", 30, 12, 0)],
        columns=["technique", "threshold_pct", "patients", "responders"],
    )
    table = outcomes.responder_table(counts)
    assert list(table.columns) == ["technique", "threshold_pct", "patients", "responders", "share", "ci95_low",
                                   "ci95_high"]
    assert table[["technique", "threshold_pct"]].values.tolist() == [["deep", 30], ["deep", 50], ["superficial", 30]]
    assert table["share"].tolist() == pytest.approx([0.0, 1.0, 0.35])
    for row in table.itertuples():
        low, high = textbook_wilson(row.responders, row.patients)
        assert (row.ci95_low, row.ci95_high) == pytest.approx((low, high), abs=1e-12)


# excluded episodes


def test_episodes_with_baseline_zero_or_a_single_session_are_counted_as_excluded_with_a_reason(improvement):
    excluded = outcomes.excluded_episodes(improvement)
    assert excluded.values.tolist() == [
        ["electrical", 1, "a single session: no follow-up yet"],  # episode 6
        ["electrical", 1, "baseline pain 0: percent improvement undefined"],  # episode 5
    ]


def test_no_episode_is_excluded_when_every_baseline_is_above_zero():
    frame = sessions((1, 1, "deep", "vas_100", 20), (1, 2, "deep", "vas_100", 0))
    excluded = outcomes.excluded_episodes(outcomes.cumulative_improvement(frame))
    assert excluded.empty
    assert {"technique", "episodes", "reason"} <= set(excluded.columns)


def test_an_episode_whose_pain_falls_to_zero_later_is_not_excluded():
    frame = sessions((1, 1, "deep", "vas_100", 20), (1, 2, "deep", "vas_100", 0),
                     (2, 1, "deep", "nrs_10", 0), (2, 2, "deep", "nrs_10", 3))
    improvement = outcomes.cumulative_improvement(frame)
    assert outcomes.excluded_episodes(improvement)[["technique", "episodes"]].values.tolist() == [["deep", 1]]
    assert at(improvement, 1, 2)["improvement_pct"] == 100


# progress_sentence


def one_patient(*pains: float, scale: str = "vas_100") -> pd.DataFrame:
    """Return the cumulative improvement of one patient's episode with these pain scores before each session."""
    return outcomes.cumulative_improvement(
        sessions(*[(1, k, "deep", scale, p) for k, p in enumerate(pains, start=1)]))


def test_progress_sentence_after_the_first_session_explains_the_starting_point():
    assert "first session" in outcomes.progress_sentence(one_patient(60))
    assert "starting point" in outcomes.progress_sentence(one_patient(60))


def test_progress_sentence_says_45_percent_lower_and_names_an_important_improvement():
    sentence = outcomes.progress_sentence(one_patient(60, 50, 33))
    assert sentence.startswith("Your pain is 45 % lower than at your first session.")
    assert "important improvement" in sentence


def test_progress_sentence_names_a_substantial_improvement_from_50_percent():
    assert "substantial" in outcomes.progress_sentence(one_patient(8, 6, 4, scale="nrs_10"))


def test_progress_sentence_says_how_much_higher_when_pain_went_up():
    sentence = outcomes.progress_sentence(one_patient(50, 60))
    assert sentence == "Your pain is 20 % higher than at your first session."


def test_progress_sentence_says_about_the_same_for_a_change_that_rounds_to_zero():
    assert "about the same" in outcomes.progress_sentence(one_patient(80, 80))
    assert "about the same" in outcomes.progress_sentence(one_patient(80, 79.7))


def test_progress_sentence_speaks_of_points_only_when_baseline_is_zero():
    sentence = outcomes.progress_sentence(one_patient(0, 20))
    assert "points only" in sentence and "%" not in sentence


def test_progress_sentence_without_sessions_says_none_are_recorded():
    assert outcomes.progress_sentence(one_patient()) == "No sessions recorded yet."


def curve_at_4(rows) -> pd.DataFrame:
    """Return a technique curve at session 4 from (technique, mean %, low, high, episodes) written by hand."""
    frame = pd.DataFrame(rows, columns=["technique", "mean_improvement_pct", "ci95_low_pct", "ci95_high_pct",
                                        "patients"])
    return frame.assign(session_number=4)


def test_the_best_by_session_4_sentence_names_the_best_technique_and_every_figure():
    sentence = outcomes.best_by_session_sentence(curve_at_4(
        [("deep", 38.2, 33.0, 43.4, 63), ("electrical", 44.6, 39.1, 50.0, 41), ("superficial", 25.0, 18.0, 32.0, 30)]
    ))
    assert sentence == (
        "By session 4, electrical dry needling did best: pain 45 % (95 % CI 39 to 50 %, 41 episodes) lower than at "
        "the first session on average, against deep 38 % (95 % CI 33 to 43 %, 63 episodes); superficial 25 % "
        "(95 % CI 18 to 32 %, 30 episodes). Its interval lies above superficial's but overlaps deep's, so its lead "
        "over deep may be chance."
    )


def test_the_sentence_says_the_intervals_overlap_when_the_best_clears_none_of_them():
    sentence = outcomes.best_by_session_sentence(curve_at_4(
        [("deep", 38.2, 33.0, 43.4, 63), ("electrical", 44.6, 39.1, 50.0, 41), ("superficial", 40.0, 30.0, 45.0, 30)]
    ))
    assert sentence.endswith(" The intervals overlap, so this may be chance rather than a real difference.")


def test_the_sentence_says_when_the_best_interval_clears_the_others_and_flags_small_groups():
    sentence = outcomes.best_by_session_sentence(curve_at_4(
        [("deep", 50.0, 45.0, 55.0, 80), ("superficial", 20.0, 5.0, 35.0, 6)]
    ))
    assert "Its interval lies above the others'." in sentence
    assert sentence.endswith("Fewer than 10 episodes: superficial; read with care.")


def test_the_sentence_says_so_when_nobody_reached_the_session():
    curve = curve_at_4([("deep", 50.0, 45.0, 55.0, 80)]).assign(session_number=3)
    assert outcomes.best_by_session_sentence(curve) == "No episode of care in these filters has reached session 4 yet."


def test_progress_sentence_speaks_about_the_patient_to_a_clinician_and_to_the_patient_otherwise():
    improvement = one_patient(60, 50, 33)
    assert outcomes.progress_sentence(improvement, to_patient=False) == (
        "The patient's pain is 45 % lower than at the first session. That is an important improvement."
    )
    assert outcomes.progress_sentence(improvement).startswith("Your pain is 45 % lower than at your first session.")


def test_the_sentence_counts_one_episode_in_the_singular():
    sentence = outcomes.best_by_session_sentence(curve_at_4(
        [("deep", 50.0, 45.0, 55.0, 80), ("superficial", 20.0, float("nan"), float("nan"), 1)]
    ))
    assert "superficial 20 % (1 episode)" in sentence
