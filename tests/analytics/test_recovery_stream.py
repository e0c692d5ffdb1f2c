"""Tests that the expected-recovery fit read in one pass, in order of the episodes' first sessions
(analytics.recovery_stream), gives number for number the figures computed from every episode at once: the
quarterly models, the work list, observed minus expected, and the held-out calibration. The training window is
made small (150 episodes) so that the pass lets episodes go, as at a network's scale, and the parts split the
episodes of one date between them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import expected_recovery, on_track, recovery_calibration, recovery_stream
from tests.analytics.test_expected_recovery import simulate

TRAINING = 150


@pytest.fixture(scope="module")
def clinic() -> pd.DataFrame:
    """A simulated clinic: a third of its episodes discharged, some with a baseline of 0 (left out of every fit)."""
    improvement, _ = simulate(episodes=1500, seed=7)
    improvement = improvement.assign(status=np.where(improvement["episode_id"] % 3 == 0, "completed", None))
    zero = improvement["episode_id"] % 50 == 1
    return improvement.assign(baseline_points=improvement["baseline_points"].where(~zero, 0.0))


@pytest.fixture(autouse=True)
def small_training_window(monkeypatch):
    monkeypatch.setattr(expected_recovery, "MAX_TRAINING_EPISODES", TRAINING)


def counted(improvement: pd.DataFrame) -> int:
    """The episodes a fit reads, counted from their first sessions alone, as the app counts them beforehand."""
    first = improvement.loc[improvement["session_number"] == 1, ["episode_id", "session_number", "pain_scale"]]
    baseline = improvement.loc[improvement["session_number"] == 1, "baseline_points"]
    return recovery_stream.counted_episodes(first.assign(pain_before=baseline))


def in_date_order(improvement: pd.DataFrame, sessions: int) -> list[pd.DataFrame]:
    """Return the sessions in parts of whole episodes, about `sessions` each, in order of the first session's date
    and, within one date, of episode id (as the database reads them): not episode_table's order."""
    first = improvement[improvement["session_number"] == 1].set_index("episode_id")["session_date"]
    ordered = improvement.assign(first=improvement["episode_id"].map(first)).sort_values(
        ["first", "episode_id", "session_number"], ignore_index=True).drop(columns="first")
    ends = np.flatnonzero(ordered["episode_id"].to_numpy()[1:] != ordered["episode_id"].to_numpy()[:-1]) + 1
    cuts = [0, *[end for index, end in enumerate(ends) if index % (sessions // 6) == 0], len(ordered)]
    return [ordered.iloc[low:high] for low, high in zip(cuts, cuts[1:], strict=False) if high > low]


@pytest.mark.parametrize("sessions, most", [(60, 40), (600, expected_recovery.PREDICTED_EPISODES)])
def test_the_fit_in_one_pass_is_the_fit_on_every_episode_at_once(clinic, sessions, most):
    parts = in_date_order(clinic, sessions)
    dates = [part.loc[part["session_number"] == 1, "session_date"] for part in parts]
    assert any(before.iloc[-1] == after.iloc[0] for before, after in zip(dates, dates[1:], strict=False))  # split
    fit = recovery_stream.fit_in_order(lambda: iter(parts), episodes=counted(clinic), most=most)

    models = expected_recovery.quarterly_models(clinic)
    assert list(fit.models) == sorted(models) and len(models) >= 8
    for cutoff, model in models.items():
        assert fit.models[cutoff].training_episodes == model.training_episodes
        if model.coefficients is None:
            assert fit.models[cutoff].coefficients is None
        else:
            np.testing.assert_array_equal(fit.models[cutoff].coefficients, model.coefficients)
            pd.testing.assert_series_equal(fit.models[cutoff].cells, model.cells)
    assert max(model.training_episodes for model in models.values()) == TRAINING

    bands = expected_recovery.bands_from_models(clinic, models)
    assert len(on_track.work_list(bands)) > 20
    pd.testing.assert_frame_equal(fit.work_list, on_track.work_list(bands), check_exact=True, check_dtype=False)
    reference = on_track.latest_with_band(bands)[on_track.LATEST_COLUMNS].reset_index(drop=True)
    reference = reference.astype({by: "category" for by in on_track.BY})  # kept as codes, given as categories
    pd.testing.assert_frame_equal(fit.latest, reference, check_exact=True)
    pd.testing.assert_frame_equal(fit.calibration, recovery_calibration.calibration_table(clinic), check_exact=True)


def test_the_calibration_boundary_within_a_date_holds_out_all_of_that_date(clinic):
    """Eight episodes a day: the held-out fifth begins inside a date, and every episode of that date is held out."""
    few = clinic[clinic["episode_id"] < 405]
    first = few[few["session_number"] == 1].set_index("episode_id")["session_date"]
    days = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(405) // 8, "D"), index=first.index)
    shifted = few.assign(session_date=few["session_date"] - few["episode_id"].map(first) + few["episode_id"].map(days))
    episodes = expected_recovery.episode_table(shifted)
    position = recovery_calibration.held_out_position(len(episodes))
    assert episodes["first_date"].iloc[position - 1] == episodes["first_date"].iloc[position]
    fit = recovery_stream.fit_in_order(lambda: iter(in_date_order(shifted, 30)), episodes=len(episodes))
    pd.testing.assert_frame_equal(fit.calibration, recovery_calibration.calibration_table(shifted), check_exact=True)


def test_no_episodes_give_no_models_and_only_the_calibrations_empty_all_row(clinic):
    fit = recovery_stream.fit_in_order(lambda: iter([clinic.iloc[0:0]]), episodes=0)
    assert fit.models == {} and fit.work_list.empty and fit.latest.empty
    pd.testing.assert_frame_equal(fit.calibration, recovery_calibration.calibration_table(clinic.iloc[0:0]))


def test_sessions_out_of_order_of_first_date_are_refused(clinic):
    parts = in_date_order(clinic, 600)
    with pytest.raises(ValueError, match="in order of their episode's first session"):
        recovery_stream.fit_in_order(lambda: iter([parts[3], parts[1]]), episodes=counted(clinic))


def test_the_episodes_counted_from_their_first_sessions_are_those_every_fit_reads(clinic):
    assert counted(clinic) == len(expected_recovery.episode_table(clinic)) == 1470  # 30 with a baseline of 0
    parts = in_date_order(clinic, 600)
    with pytest.raises(ValueError, match="1470 episodes read where 1471 were counted"):
        recovery_stream.fit_in_order(lambda: iter(parts), episodes=1471)
