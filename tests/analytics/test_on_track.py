"""Tests that what the app keeps of the expected-recovery fit gives the figures of the full bands: the work list and
observed minus expected from the bands read a quarter at a time (on_track.summaries of
expected_recovery.observed_bands), and one episode's band predicted from its own sessions and the kept models.

The app keeps only these (dashboard.recovery_data): at a million sessions every episode's band took 172 MB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import expected_recovery, on_track
from tests.analytics.test_expected_recovery import simulate


@pytest.fixture(scope="module")
def clinic() -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Return a simulated clinic with a third of its episodes discharged, its quarterly models and its full bands."""
    improvement, _ = simulate(episodes=1500, seed=7)
    discharged = improvement["episode_id"] % 3 == 0
    improvement = improvement.assign(status=np.where(discharged, "completed", None))
    models = expected_recovery.quarterly_models(improvement)
    return improvement, models, expected_recovery.bands_from_models(improvement, models)


def test_the_work_list_from_the_bands_a_quarter_at_a_time_is_the_one_from_all_the_bands(clinic):
    improvement, models, bands = clinic
    listed, _ = on_track.summaries(expected_recovery.observed_bands(improvement, models))
    expected = on_track.work_list(bands)
    assert len(expected) > 20 and not expected["episode_id"].isin(improvement.loc[
        improvement["status"].notna(), "episode_id"]).any()  # open episodes only, and enough of them to compare
    pd.testing.assert_frame_equal(listed, expected, check_dtype=False)


def test_observed_minus_expected_from_one_row_per_episode_is_the_one_from_all_the_bands(clinic):
    improvement, models, bands = clinic
    _, latest = on_track.summaries(expected_recovery.observed_bands(improvement, models))
    assert latest["episode_id"].is_unique and list(latest.columns) == on_track.LATEST_COLUMNS
    assert len(latest) == bands.loc[bands["shown"] & bands["improvement_pct"].notna(), "episode_id"].nunique()
    some = improvement["episode_id"].drop_duplicates().sample(frac=0.4, random_state=1)  # as a filter selects
    for chosen_latest, chosen_bands in ((latest, bands), (latest[latest["episode_id"].isin(some)],
                                                          bands[bands["episode_id"].isin(some)])):
        for by in on_track.BY:
            pd.testing.assert_frame_equal(on_track.observed_minus_expected(chosen_latest, by),
                                          on_track.observed_minus_expected(chosen_bands, by))


def test_one_episodes_band_from_its_own_sessions_and_the_kept_models_is_its_band_in_the_full_computation(clinic):
    improvement, models, bands = clinic
    shown = bands.loc[bands["shown"], "episode_id"]
    for episode in (shown.iloc[0], shown.iloc[len(shown) // 2], shown.iloc[-1]):
        alone = expected_recovery.bands_from_models(improvement[improvement["episode_id"] == episode], models)
        full = bands[bands["episode_id"] == episode].reset_index(drop=True)
        assert alone["shown"].any()
        pd.testing.assert_frame_equal(alone, full, check_exact=False, rtol=1e-9)


def test_the_latest_sessions_kept_as_codes_are_the_rows_of_all_the_bands(clinic):
    """Parts in no episode order, a clinician first met in a later part, sessions without one, and a part whose
    improvement arrives as whole numbers: the rows kept (as codes, in arrays) are the whole frame's, exactly."""
    _, _, bands = clinic
    bands = bands.assign(clinician=bands["clinician"].where(bands["episode_id"] % 7 != 0, None))
    bands.loc[bands["episode_id"] % 11 == 0, "clinician"] = "clin_late"
    episodes = bands["episode_id"].drop_duplicates().sample(frac=1, random_state=3).to_numpy()
    parts = [bands[bands["episode_id"].isin(chosen)] for chosen in np.array_split(episodes, 9)]
    parts[-1] = parts[-1][parts[-1]["episode_id"] % 11 == 0]  # the late clinician's episodes, and only now
    first = parts[0][(parts[0]["episode_id"] % 11 != 0) & parts[0]["improvement_pct"].notna()]
    parts[0] = first.assign(improvement_pct=first["improvement_pct"].round().astype("int64"))
    _, latest = on_track.summaries(iter(parts))
    whole = pd.concat(parts, ignore_index=True)
    reference = on_track.latest_with_band(whole)[on_track.LATEST_COLUMNS].reset_index(drop=True)
    assert reference["clinician"].isna().any() and (reference["clinician"] == "clin_late").any()
    pd.testing.assert_frame_equal(latest, reference.astype({by: "category" for by in on_track.BY}), check_exact=True)
    for by in on_track.BY:
        pd.testing.assert_frame_equal(on_track.observed_minus_expected(latest, by),
                                      on_track.observed_minus_expected(whole, by))
