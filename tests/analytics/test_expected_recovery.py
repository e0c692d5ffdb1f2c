"""Tests that the expected-recovery bands are calibrated on new episodes, never peek at the episode they are for, and
that the on-track flags, the work list and observed minus expected say what docs/METHODS.md says.

The figures of issue #18's "done when" are printed (run with `-s`) and asserted: held-out coverage on the sample data
and on a generated data set of 100,000 sessions, and how often the off-track rule flags simulated non-responders
against responders.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from analytics import expected_recovery, on_track, outcomes, recovery_calibration
from analytics.expected_recovery import BAND_COLUMNS, MIN_COMPARABLE
from bench import calibration as bench
from bench.calibration import coverage_line, improvement_of
from sample_data.generate import generate
from tests.analytics import independent

TECHNIQUES = ("superficial", "deep", "electrical")


def simulate(episodes: int = 2400, seed: int = 18, non_responders: float = 0.3, clinician_bonus: float = 0.0,
             techniques=TECHNIQUES) -> tuple[pd.DataFrame, pd.Series]:
    """Return (cumulative_improvement, responder per episode) of episodes whose recovery is known.

    Responders improve by effect · (1 − exp(−(k − 1) / τ)), effect ~ N(0.50, 0.12); non-responders' effect is
    ~ N(0, 0.05). Baseline ~ N(65, 12) on 0–100, noise N(0, 6) points, 4–8 weekly sessions starting in 2024–2025,
    five clinicians; clin_0's patients improve `clinician_bonus` (a fraction of baseline) more.
    """
    rng = np.random.default_rng(seed)
    responder = rng.random(episodes) >= non_responders
    effect = np.where(responder, rng.normal(0.5, 0.12, episodes), rng.normal(0.0, 0.05, episodes))
    clinician = np.arange(episodes) % 5
    effect = effect + np.where(clinician == 0, clinician_bonus, 0.0)
    tau = np.exp(rng.normal(np.log(1.8), 0.2, episodes))
    baseline = np.clip(rng.normal(65, 12, episodes), 25, 95).round()
    technique = rng.choice(list(techniques), episodes)
    condition = rng.choice(["neck_pain", "low_back_pain", "shoulder_pain"], episodes)
    first = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 730, episodes), "D")
    sessions = rng.integers(4, 9, episodes)
    episode = np.repeat(np.arange(episodes), sessions)
    k = np.concatenate([np.arange(1, n + 1) for n in sessions])
    recovery = effect[episode] * (1 - np.exp(-(k - 1) / tau[episode]))
    pain = np.clip(baseline[episode] * (1 - recovery) + np.where(k > 1, rng.normal(0, 6, k.size), 0), 0, 100)
    frame = pd.DataFrame({
        "episode_id": episode, "patient_id": [f"P{e}" for e in episode], "session_number": k,
        "session_date": first[episode] + pd.to_timedelta(7 * (k - 1), "D"), "technique": technique[episode],
        "pain_scale": "vas_100", "pain_before": pain.round(), "condition": condition[episode],
        "clinician": [f"clin_{c}" for c in clinician[episode]],
    })
    return outcomes.cumulative_improvement(frame), pd.Series(responder, name="responder")


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return improvement_of(independent.read_rows())


@pytest.fixture(scope="module")
def simulated() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Return a simulated clinic (clin_0 12 % of baseline better than the rest), its responders and its bands."""
    improvement, responder = simulate(clinician_bonus=0.12)
    return improvement, responder, expected_recovery.expected_bands(improvement)


# --- the fit ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("quantile", expected_recovery.QUANTILES)
def test_the_linear_programme_reaches_the_optimum_statsmodels_quantreg_approaches(quantile):
    rng = np.random.default_rng(3)
    x = np.column_stack([np.ones(400), rng.normal(size=400), rng.integers(0, 2, 400)])
    y = x @ [20.0, 5.0, -8.0] + rng.standard_t(4, 400) * (3 + 2 * np.abs(x[:, 1]))
    ours = expected_recovery._quantile_coefficients(x, y, quantile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # QuantReg warns about its own convergence
        theirs = sm.QuantReg(y, x).fit(q=quantile, max_iter=5000).params

    def check_loss(beta):
        residual = y - x @ beta
        return float(np.sum(residual * (quantile - (residual < 0))))

    assert check_loss(ours) <= check_loss(theirs) + 1e-9
    assert ours == pytest.approx(theirs, abs=0.05)


def test_a_band_needs_30_earlier_episodes_of_its_technique_at_its_session():
    improvement, _ = simulate(episodes=600, techniques=("deep", "electrical"))
    episodes = expected_recovery.episode_table(improvement)
    deep = episodes[episodes["technique"] == "deep"]["episode_id"]
    kept = [*deep, *episodes[episodes["technique"] == "electrical"]["episode_id"].head(MIN_COMPARABLE - 1)]
    model = expected_recovery.fit_recovery(improvement[improvement["episode_id"].isin(kept)])
    rows = expected_recovery.follow_up_rows(improvement, episodes.head(50))
    bands = expected_recovery.predict_bands(model, rows[rows["session_number"] == 2])
    shown = bands.groupby("technique")["shown"].all()
    assert shown.to_dict() == {"deep": True, "electrical": False}
    electrical = bands[bands["technique"] == "electrical"].iloc[0]
    assert electrical["note"] == "fewer than 30 earlier episodes of electrical needling at session 2"
    assert np.isnan(electrical[BAND_COLUMNS].to_numpy(float)).all()
    assert model.cells[("deep", 2)] >= MIN_COMPARABLE and ("electrical", 2) not in model.cells.index


def test_the_percentiles_are_in_order_and_the_median_follows_the_simulated_recovery(simulated):
    improvement, _, bands = simulated
    shown = bands[bands["shown"] & bands["improvement_pct"].notna()]
    assert (np.diff(shown[BAND_COLUMNS].to_numpy(float), axis=1) >= 0).all()
    fitted = shown.groupby("session_number")["q50"].mean()
    assert fitted.is_monotonic_increasing  # recovery grows with every session in the simulation
    # Technique and condition make no difference in the simulation: the fitted median is the plain one.
    observed = improvement[improvement["session_number"] >= 2].groupby("session_number")["improvement_pct"].median()
    assert fitted.to_numpy() == pytest.approx(observed.loc[fitted.index].to_numpy(), abs=3)


def test_an_episodes_band_comes_only_from_episodes_begun_before_its_quarter(simulated):
    improvement, _, bands = simulated
    episodes = expected_recovery.episode_table(improvement)
    chosen = episodes[episodes["first_date"] >= "2025-07-01"].iloc[0]
    cutoff = pd.Timestamp("2025-07-01")  # the start of its calendar quarter
    own = bands[bands["episode_id"] == chosen["episode_id"]].reset_index(drop=True)
    assert (own["trained_before"] == cutoff).all() and own["shown"].any()
    # Whatever happened to it and to every episode begun since, its band stays the same ...
    later = improvement["episode_id"].isin(episodes[episodes["first_date"] >= cutoff]["episode_id"])
    changed = improvement.assign(pain_before=improvement["pain_before"].where(~later, 100 - improvement["pain_before"]))
    again = expected_recovery.episode_band(outcomes.cumulative_improvement(changed), chosen["episode_id"])
    assert again[BAND_COLUMNS].to_numpy(float) == pytest.approx(own[BAND_COLUMNS].to_numpy(float), nan_ok=True)
    assert not again["improvement_pct"].equals(own["improvement_pct"])
    # ... while earlier episodes move it.
    worse = (improvement["pain_before"] + 10).clip(upper=100).where(improvement["session_number"] >= 2)
    earlier = improvement.assign(pain_before=improvement["pain_before"].where(later | worse.isna(), worse))
    moved = expected_recovery.episode_band(outcomes.cumulative_improvement(earlier), chosen["episode_id"])
    assert not np.allclose(moved["q50"].dropna(), own["q50"].dropna())


def test_bands_reach_ahead_of_the_last_session_without_an_observation(simulated):
    _, _, bands = simulated
    one = bands[bands["episode_id"] == bands.loc[bands["shown"], "episode_id"].iloc[-1]]
    assert one["session_number"].tolist() == list(range(2, one["session_number"].max() + 1))
    ahead = one[one["session_date"].isna()]
    assert ahead["improvement_pct"].isna().all()
    assert one["session_number"].max() == 8  # the simulation's last session number with 30 earlier episodes


def test_training_cutoffs_of_a_column_are_each_dates_training_cutoff():
    dates = pd.Series(pd.to_datetime(["2024-03-31", "2024-04-01", "2024-06-30", "2024-12-31", "2025-01-01",
                                      "2025-02-14"]))
    assert expected_recovery.training_cutoffs(dates).tolist() == dates.map(expected_recovery.training_cutoff).tolist()
    assert expected_recovery.training_cutoffs(dates).dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01", "2024-04-01", "2024-04-01", "2024-10-01", "2025-01-01", "2025-01-01"]


def test_models_fitted_once_give_every_episodes_band_and_none_to_an_episode_of_a_quarter_not_fitted(simulated):
    improvement, _, bands = simulated
    models = expected_recovery.quarterly_models(improvement)
    assert sorted(models) == sorted(set(expected_recovery.episode_table(improvement)["first_date"].map(
        expected_recovery.training_cutoff)))
    again = expected_recovery.bands_from_models(improvement, models)
    pd.testing.assert_frame_equal(again, bands)
    newest = max(models)
    without = expected_recovery.bands_from_models(improvement, {k: m for k, m in models.items() if k != newest})
    assert (without["trained_before"] < newest).all() and len(without) < len(bands)


def test_a_band_counts_the_earlier_episodes_of_its_condition(simulated):
    _, _, bands = simulated
    shown = bands[bands["shown"]]
    assert (shown["condition_episodes"] >= MIN_COMPARABLE).all()
    hidden = bands[~bands["shown"]]
    assert ((hidden["comparable_episodes"] < MIN_COMPARABLE) | (hidden["condition_episodes"] < MIN_COMPARABLE)).all()


def test_since_keeps_the_episodes_seen_on_or_after_that_date(simulated):
    improvement, _, bands = simulated
    recent = expected_recovery.expected_bands(improvement, since="2025-12-01")
    last_seen = pd.to_datetime(improvement.groupby("episode_id")["session_date"].max())
    assert set(recent["episode_id"]) == set(last_seen[last_seen >= "2025-12-01"].index)
    pd.testing.assert_frame_equal(recent.reset_index(drop=True), bands[bands["episode_id"].isin(
        recent["episode_id"])].reset_index(drop=True))


# --- calibration: issue #18's "done when" -------------------------------------------------------------------

def check_calibration(table: pd.DataFrame) -> None:
    assert list(table.columns) == recovery_calibration.CALIBRATION_COLUMNS
    keys = list(zip(table["condition"], table["technique"], strict=True))
    assert keys == sorted(keys) and ("all", "all") in keys
    overall = table.set_index(["condition", "technique"]).loc[("all", "all")]
    cells = table[table["condition"] != "all"]
    assert overall["observations"] == cells["observations"].sum()
    assert overall["episodes"] == cells["episodes"].sum()  # an episode has one condition and one technique
    assert 0.45 <= overall["coverage_50"] <= 0.55
    assert 0.75 <= overall["coverage_80"] <= 0.85


def test_on_the_sample_data_the_held_out_bands_cover_half_and_four_fifths(sample):
    table = recovery_calibration.calibration_table(sample)
    print("\n" + coverage_line("sample data", table))
    check_calibration(table)
    assert table["coverage_50"].round(4).equals(table["coverage_50"])


def test_on_100000_generated_sessions_the_held_out_bands_cover_half_and_four_fifths():
    raw = generate(patients=bench.GENERATED_PATIENTS)  # a known recovery process: sample_data/parameters.py
    assert len(raw) >= 100_000
    table = recovery_calibration.calibration_table(improvement_of(raw))
    print("\n" + coverage_line(f"{len(raw):,} generated sessions", table))
    check_calibration(table)
    assert table.set_index(["condition", "technique"]).loc[("all", "all"), "episodes"] > 3000


def test_held_out_episodes_all_began_after_every_fitted_one(sample):
    tested = recovery_calibration.held_out_bands(sample)
    episodes = expected_recovery.episode_table(sample)
    boundary = tested["trained_before"].iloc[0]
    held_out = episodes[episodes["episode_id"].isin(tested["episode_id"])]
    assert (held_out["first_date"] >= boundary).all()
    assert len(episodes[episodes["first_date"] >= boundary]) >= 0.2 * len(episodes)


def test_calibration_of_too_few_episodes_is_the_all_row_with_nothing_tested():
    improvement, _ = simulate(episodes=20)
    table = recovery_calibration.calibration_table(improvement)
    assert table.to_dict("records") == [{"condition": "all", "technique": "all", "episodes": 0, "observations": 0,
                                         "coverage_50": pytest.approx(np.nan, nan_ok=True),
                                         "coverage_80": pytest.approx(np.nan, nan_ok=True)}]


# --- on track ---------------------------------------------------------------------------------------------------

def hand_bands(rows: list[tuple]) -> pd.DataFrame:
    """Return a bands frame from (episode, k, baseline, pain, q25) rows; q25 None means no band shown."""
    frame = pd.DataFrame(rows, columns=["episode_id", "session_number", "baseline_points", "pain", "q25"])
    frame["improvement_points"] = frame["baseline_points"] - frame["pain"]
    frame["improvement_pct"] = 100 * frame["improvement_points"] / frame["baseline_points"]
    frame["q25"] = frame["q25"].astype(float)
    frame["shown"] = frame["q25"].notna()
    frame["session_date"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(7 * frame["session_number"], "D")
    frame[["patient_id", "clinician"]] = frame["episode_id"].str.split("/", expand=True).to_numpy()
    return frame.assign(technique="deep", condition="neck_pain", status=None, q50=frame["q25"] + 10)


HAND = hand_bands([
    ("P1/clin_a", 2, 80, 76, 10), ("P1/clin_a", 3, 80, 60, 20),                              # below once: on track
    ("P2/clin_a", 2, 80, 60, 10), ("P2/clin_a", 3, 80, 76, 20), ("P2/clin_a", 4, 80, 72, 30),  # below at 3 and 4
    ("P3/clin_b", 2, 30, 25, None), ("P3/clin_b", 3, 30, 25, None), ("P3/clin_b", 4, 30, 25, None),  # 17 %, 5 points
    ("P4/clin_b", 2, 80, 72, None), ("P4/clin_b", 3, 80, 70, None), ("P4/clin_b", 4, 80, 64, None),  # 20 % at 4
    ("P5/clin_b", 2, 80, 60, None), ("P5/clin_b", 3, 80, 80, None), ("P5/clin_b", 4, 80, 80, None),  # 25 % at 2, lost
])


def test_two_sessions_in_a_row_below_the_25th_percentile_put_an_episode_off_track():
    status = on_track.episode_status(HAND).set_index("episode_id")
    assert not status.loc["P1/clin_a", "off_track"]
    assert status.loc["P2/clin_a", "off_track"]
    assert status.loc["P2/clin_a", "reason"] == "below the expected 25th percentile at sessions 3 and 4"


def test_no_minimal_important_improvement_by_session_4_by_the_responder_rule_puts_an_episode_off_track():
    status = on_track.episode_status(HAND).set_index("episode_id")
    # 17 % of a baseline of 30 is 5 points: below the 20-point MCID the rule asks for under a baseline of 40.
    assert status.loc["P3/clin_b", "reason"] == "no minimal important improvement (15 %) by session 4"
    assert not status.loc["P4/clin_b", "off_track"]  # 20 % at session 4
    assert not status.loc["P5/clin_b", "off_track"]  # reached 25 % at session 2: improved by session 4
    lenient = on_track.episode_status(HAND, outcomes.ResponderRule(mcid_points=5)).set_index("episode_id")
    assert not lenient.loc["P3/clin_b", "off_track"]


def test_the_work_list_is_the_off_track_episodes_newest_first_and_filters_by_clinician():
    bands = HAND.copy()
    bands.loc[bands["episode_id"] == "P3/clin_b", "session_date"] += pd.Timedelta(days=30)
    listed = on_track.work_list(bands)
    assert list(listed.columns) == on_track.WORK_LIST_COLUMNS
    assert listed["episode_id"].tolist() == ["P3/clin_b", "P2/clin_a"]
    assert listed["latest_session_date"].is_monotonic_decreasing
    assert on_track.work_list(bands, clinician="clin_a")["episode_id"].tolist() == ["P2/clin_a"]
    bands.loc[bands["episode_id"] == "P3/clin_b", "status"] = "dropped_out"
    assert on_track.work_list(bands)["episode_id"].tolist() == ["P2/clin_a"]


def test_the_off_track_rule_flags_simulated_non_responders_far_more_often_than_responders(simulated):
    _, responder, bands = simulated
    status = on_track.episode_status(bands)
    flagged = status.groupby(status["episode_id"].map(responder))["off_track"].agg(["mean", "size"])
    print(f"\noff track at their latest session: {flagged.loc[False, 'mean']:.1%} of {flagged.loc[False, 'size']} "
          f"simulated non-responders, {flagged.loc[True, 'mean']:.1%} of {flagged.loc[True, 'size']} responders")
    assert flagged.loc[False, "mean"] >= 0.6
    assert flagged.loc[True, "mean"] <= 0.05


# --- observed minus expected -----------------------------------------------------------------------------------

def test_observed_minus_expected_is_the_mean_difference_at_each_episodes_latest_session_with_a_t_interval():
    bands = HAND.assign(expected=HAND["q50"].fillna(20.0), shown=True)
    table = on_track.observed_minus_expected(bands, "clinician", end="2026-01-22").set_index("clinician")
    latest = bands[bands["session_date"] <= "2026-01-22"].groupby("episode_id").tail(1)
    differences = (latest["improvement_pct"] - latest["expected"]).groupby(latest["clinician"])
    for clinician, values in differences:
        low, high = stats.t.interval(0.95, len(values) - 1, values.mean(), stats.sem(values))
        assert table.loc[clinician, ["episodes", "difference", "ci95_low", "ci95_high"]].tolist() == pytest.approx(
            [len(values), values.mean(), low, high])
    everyone = latest["improvement_pct"] - latest["expected"]
    assert table["clinic_mean"].iloc[0] == pytest.approx(everyone.mean())
    half = stats.norm.ppf(0.975) * everyone.std() / np.sqrt(table["episodes"])
    assert table["upper95"].to_numpy() == pytest.approx((everyone.mean() + half).to_numpy())


def test_observed_minus_expected_finds_the_clinician_whose_patients_do_better_and_no_technique(simulated):
    _, _, bands = simulated
    clinicians = on_track.observed_minus_expected(bands, "clinician", start="2025-01-01").set_index("clinician")
    print("\n" + clinicians[["episodes", "difference", "ci95_low", "ci95_high", "outside95"]].round(1).to_string())
    # Only clin_0 stands above the funnel; the others share the same recovery, slightly below a clinic mean that
    # includes clin_0's patients, so one of them may fall below the lower limit by chance.
    above = clinicians["difference"] > clinicians["upper95"]
    assert above.to_dict() == {f"clin_{i}": i == 0 for i in range(5)}
    assert clinicians.loc["clin_0", "ci95_low"] > 5
    techniques = on_track.observed_minus_expected(bands, "technique", start="2025-01-01")
    assert not techniques["outside95"].any()  # the simulation gave every technique the same recovery
    with pytest.raises(ValueError, match="by: one of clinician, technique"):
        on_track.observed_minus_expected(bands, "condition")


# --- words ------------------------------------------------------------------------------------------------------

def test_the_band_in_plain_words_for_the_patient_and_for_clinicians():
    row = {"shown": True, "session_number": 4, "q10": -5.2, "q25": 18.0, "q50": 31.0, "q75": 44.6, "q90": 60.0,
           "comparable_episodes": 212, "technique": "deep", "condition_adjusted": False, "note": ""}
    assert expected_recovery.band_sentence(row) == (
        "By session 4, half of the earlier patients like you had 18–45 % less pain than at their first session, "
        "and 8 in 10 had anything from 5 % more to 60 % less pain. This is what happened to others treated here, "
        "not a promise.")
    assert expected_recovery.band_sentence(row, to_patient=False) == (
        "Expected at session 4 (212 earlier episodes of deep needling): median 31 %, 50 % band 18 to 45 %, 80 % band "
        "-5 to 60 %; condition pooled with the less common ones.")
    hidden = {**row, "shown": False, "note": "fewer than 30 earlier episodes of deep needling at session 4"}
    assert expected_recovery.band_sentence(hidden).startswith("Not enough earlier patients like this")
    assert expected_recovery.band_sentence({**row, "improvement_pct": 41.6}) == (
        "By session 4, half of the earlier patients like you had 18–45 % less pain than at their first session, "
        "and 8 in 10 had anything from 5 % more to 60 % less pain. You had 42 % less pain. This is what happened to "
        "others treated here, not a promise.")
    assert "You had 12 % more pain." in expected_recovery.band_sentence({**row, "improvement_pct": -12.0})
    assert expected_recovery.no_band_sentence({**hidden, "comparable_episodes": 12, "condition_episodes": 45}) == (
        "No expected-recovery band at session 4: 12 earlier episodes of deep needling reached that session and 45 "
        "share the condition; a band needs 30 of each. Its outer edges are the 10th and 90th percentiles, and among "
        "30 episodes only about three lie beyond each: fewer cannot place them.")


def test_the_calibration_bench_prints_every_figure_at_a_small_size(capsys):
    assert bench.main(["--patients", "400", "--episodes", "700"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "sample data", f"{len(generate(patients=400)):,} generated sessions", lines[2].split(":")[0],
        "one fit, latest 5,000 episodes", "one fit, every episode", "calibration table", "bands of every episode",
        "bands of the episodes seen in the last 30 days"]
    assert lines[0] == ("sample data: 52 held-out episodes, 181 sessions; inside the 50 % band 49.7%, inside the "
                        "80 % band 79.0%")
