"""Tests that analytics.effect_sizes gives the SRM and Cohen's d worked out by hand, with intervals that cover."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics import effect_sizes, outcomes
from tests.analytics import independent
from tests.analytics.test_comparison import sample_improvement


def episodes(*series: list[float], technique: str = "deep") -> pd.DataFrame:
    rows = [(i, k, technique, "vas_100", p) for i, pains in enumerate(series) for k, p in enumerate(pains, start=1)]
    frame = pd.DataFrame(rows, columns=["episode_id", "session_number", "technique", "pain_scale", "pain_before"])
    return outcomes.cumulative_improvement(frame)


def test_srm_and_d_by_hand_at_session_4_and_at_the_last_session():
    # Baselines 50, 60, 70 (SD 10); improvements at session 4: 10, 20, 30 (mean 20, SD 10): SRM 2, d 2.
    # At the last session (5, 4, 6): 10, 20, 45 (mean 25, SD 17.56): SRM 1.42, d 2.5.
    improvement = episodes([50, 48, 45, 40, 40], [60, 55, 50, 40], [70, 60, 50, 40, 30, 25])
    table = effect_sizes.effect_sizes(improvement).set_index("timepoint")
    at_4, last = table.loc["session 4"], table.loc["last session"]
    assert (at_4["patients"], at_4["mean_change"], at_4["srm"], at_4["cohens_d"]) == (3, 20.0, 2.0, 2.0)
    assert last["mean_change"] == pytest.approx(25.0)
    assert last["srm"] == pytest.approx(25.0 / np.std([10, 20, 45], ddof=1))
    assert last["cohens_d"] == pytest.approx(2.5)
    for row in (at_4, last):
        assert row["srm_ci95_low"] < row["srm"] < row["srm_ci95_high"]
        assert row["d_ci95_low"] < row["cohens_d"] < row["d_ci95_high"]


def test_the_srm_interval_covers_the_true_value_95_times_in_100_for_small_groups():
    rng = np.random.default_rng(14)
    truth, n, covered, reps = 0.5, 12, 0, 600
    for _ in range(reps):
        change = rng.normal(5.0, 10.0, n)
        srm = change.mean() / change.std(ddof=1)
        low, high = effect_sizes.srm_interval(srm, n)
        covered += low <= truth <= high
    assert 0.93 <= covered / reps <= 0.97  # 0.952 here; the naive srm ± 1.96 / √n covers 0.885 of the same draws


def test_cohens_d_interval_covers_the_true_value_about_95_times_in_100():
    rng = np.random.default_rng(41)
    n, reps, covered = 100, 500, 0
    truth = 10.0 / 15.0  # mean change 10 points, baseline SD 15
    for _ in range(reps):
        baseline = rng.normal(65.0, 15.0, n)
        follow_up = 0.5 * (baseline - 65.0) + rng.normal(55.0, 15.0 * np.sqrt(0.75), n)  # SD 15, r = 0.5
        change = baseline - follow_up
        d = change.mean() / baseline.std(ddof=1)
        low, high = effect_sizes.d_interval(d, float(np.corrcoef(baseline, follow_up)[0, 1]), n)
        covered += low <= truth <= high
    assert 0.92 <= covered / reps <= 0.975


def test_on_the_sample_data_the_effect_sizes_count_the_episodes_of_the_curve_and_of_the_responders():
    data = sample_improvement()
    table = effect_sizes.effect_sizes(data).set_index(["technique", "timepoint"])
    episodes_ = independent.episodes_from_rows(independent.read_rows())
    at_4 = {t: sum(1 for s in episodes_.values() if s[0]["technique"] == t and s[0]["points"] > 0 and len(s) >= 4)
            for t in ("deep", "electrical", "superficial")}
    for technique, n in at_4.items():
        assert table.loc[(technique, "session 4"), "patients"] == n
    for technique, (_, n) in independent.last_session_responders(episodes_, 30).items():
        assert table.loc[(technique, "last session"), "patients"] == n
    assert (table["srm"] > 0).all() and (table["cohens_d"] > 0).all()


def test_groups_under_three_episodes_have_no_row():
    assert effect_sizes.effect_sizes(episodes([50, 40, 30, 20], [60, 50, 40, 30])).empty
