"""Tests that the expected-recovery figures computed with bounded memory (issue #15) are, number for number, the
ones computed from the whole improvement frame: the bands predicted a part at a time, and the calibration counted a
part at a time (recovery_calibration.held_out_parts) against the whole frame's coverage, recomputed here as it was
defined. The fit read in one pass is tested in test_recovery_stream.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import expected_recovery, on_track, recovery_calibration
from tests.analytics.test_expected_recovery import simulate


@pytest.fixture(scope="module")
def clinic() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return a simulated clinic (a third of its episodes discharged), its episodes and its follow-up sessions."""
    improvement, _ = simulate(episodes=1500, seed=11)
    improvement = improvement.assign(status=np.where(improvement["episode_id"] % 3 == 0, "completed", None))
    follow_ups = improvement.loc[improvement["session_number"] >= 2, expected_recovery.FOLLOW_UP_COLUMNS]
    return improvement, expected_recovery.episode_table(improvement), follow_ups.reset_index(drop=True)


def whole_calibration(tested: pd.DataFrame) -> pd.DataFrame:
    """The calibration table as it was computed from all the held-out bands at once: means of the flags."""
    tested = tested[tested["shown"].astype(bool)]

    def coverage(rows):
        return {"episodes": rows["episode_id"].nunique(), "observations": len(rows),
                "coverage_50": rows["inside_50"].mean(), "coverage_80": rows["inside_80"].mean()}

    rows = [{"condition": condition, "technique": technique, **coverage(group)}
            for (condition, technique), group in tested.groupby(["condition", "technique"])]
    rows.append({"condition": "all", "technique": "all", **coverage(tested)})
    table = pd.DataFrame(rows, columns=recovery_calibration.CALIBRATION_COLUMNS)
    table = table.sort_values(["condition", "technique"], ignore_index=True)
    return table.astype({"episodes": int, "observations": int}).round({"coverage_50": 4, "coverage_80": 4})


def test_the_bands_of_the_follow_ups_a_part_at_a_time_are_the_whole_frames_bands_exactly(clinic):
    improvement, episodes, follow_ups = clinic
    models = expected_recovery.quarterly_models(follow_ups, episodes=episodes)
    whole = expected_recovery.expected_bands(improvement)
    observed = whole[whole["improvement_pct"].notna() | whole["session_date"].notna()]
    parts = list(expected_recovery.observed_bands(follow_ups, models, episodes=episodes, most=70))
    assert len(parts) > 10
    for frame in parts:
        assert frame["episode_id"].dtype == "int64" and frame["session_number"].dtype == "int64"
    together = pd.concat(parts, ignore_index=True)
    key = ["episode_id", "session_number"]
    pd.testing.assert_frame_equal(together.sort_values(key, ignore_index=True),
                                  observed.sort_values(key, ignore_index=True), check_exact=True)
    listed, latest = on_track.summaries(iter(parts))
    pd.testing.assert_frame_equal(listed, on_track.work_list(whole), check_exact=True, check_dtype=False)
    for by in on_track.BY:
        pd.testing.assert_frame_equal(on_track.observed_minus_expected(latest, by),
                                      on_track.observed_minus_expected(whole, by), check_exact=True)


@pytest.mark.parametrize("most", [37, expected_recovery.PREDICTED_EPISODES])
def test_the_calibration_counted_a_part_at_a_time_is_the_whole_frames_coverage(clinic, most):
    improvement, episodes, follow_ups = clinic
    tested = recovery_calibration.held_out_bands(improvement)
    assert tested["shown"].sum() > 100
    reference = whole_calibration(tested)
    pd.testing.assert_frame_equal(recovery_calibration.calibration_table(improvement, most=most), reference,
                                  check_exact=True)
    pd.testing.assert_frame_equal(
        recovery_calibration.calibration_table(follow_ups, episodes=episodes, most=most), reference, check_exact=True)
    parts = list(recovery_calibration.held_out_parts(follow_ups, episodes=episodes, most=most))
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), tested, check_exact=True)


def test_the_calibration_of_no_episodes_has_only_its_empty_all_row():
    improvement, _ = simulate(episodes=40, seed=3)
    table = recovery_calibration.calibration_table(improvement.iloc[0:0])
    assert table[["condition", "technique", "episodes", "observations"]].values.tolist() == [["all", "all", 0, 0]]
    assert table[["coverage_50", "coverage_80"]].isna().all(axis=None)
