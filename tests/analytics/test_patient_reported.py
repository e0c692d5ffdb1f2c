"""analytics.patient_reported on small frames whose figures are worked out by hand below."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analytics import patient_reported as pr

T_975_2, T_975_1 = 4.302653, 12.706205  # Student t quantiles, 2 and 1 degrees of freedom (tables)


def diary(*rows) -> pd.DataFrame:
    """Entries as db.report_queries.diary_soreness returns them: (session, technique, adjuncts, window, soreness)."""
    frame = pd.DataFrame(rows, columns=["session_id", "technique", "adjuncts", "window_h", "soreness"])
    frame.insert(0, "entry_id", range(1, len(frame) + 1))
    return frame.assign(episode_id=frame["session_id"], patient_id="P", hours_after=frame["window_h"].astype(float))


SAMPLE = diary(
    (1, "deep", "cold_spray;massage", 6, 5), (1, "deep", "cold_spray;massage", 24, 6),
    (1, "deep", "cold_spray;massage", 48, 3),
    (2, "deep", None, 24, 4), (2, "deep", None, 72, 1),  # adjuncts not recorded: not counted under none
    (3, "superficial", "none", 6, 2),
    (4, "deep", "none", 24, 5),
    (5, "deep", "", 6, 3),  # an empty cell is not recorded either
)


def test_soreness_table_is_the_contract_per_technique_and_each_adjunct():
    table = pr.soreness_table(SAMPLE)
    assert list(table.columns) == pr.SORENESS_COLUMNS
    rows = [[None if isinstance(v, float) and math.isnan(v) else v for v in row] for row in table.values.tolist()]
    assert rows == [
        ["deep", "cold_spray", 1, 3, 6.0, 3.0, None],  # session 1 counts under each of its two adjuncts
        ["deep", "massage", 1, 3, 6.0, 3.0, None],
        ["deep", "none", 1, 1, 5.0, None, None],  # session 4 alone: recorded as no adjunct
        ["deep", "not_recorded", 2, 3, 4.0, None, 1.0],  # sessions 2 and 5: their adjuncts are not known
        ["superficial", "none", 1, 1, None, None, None],  # a 6 h entry only: counted, no mean shown
    ]
    csv = table.to_csv(index=False, lineterminator="\n")
    assert csv.splitlines()[5] == "superficial,none,1,1,,,"


def test_soreness_table_of_no_entries_is_its_header():
    assert pr.soreness_table(SAMPLE.iloc[:0]).to_csv(index=False) == ",".join(pr.SORENESS_COLUMNS) + "\n"


def test_mean_soreness_per_window_has_a_t_interval():
    means = pr.soreness_means(SAMPLE, by="technique")
    deep_24 = means[(means["technique"] == "deep") & (means["window_h"] == 24)].iloc[0]
    # 6, 4, 5: mean 5, sd 1, half-width t(0.975; 2) · 1 / √3
    assert (deep_24["entries"], deep_24["mean_soreness"]) == (3, 5.0)
    assert deep_24["ci95_low"] == pytest.approx(5 - T_975_2 / math.sqrt(3), abs=1e-5)
    assert deep_24["ci95_high"] == pytest.approx(5 + T_975_2 / math.sqrt(3), abs=1e-5)
    one = means[(means["technique"] == "deep") & (means["window_h"] == 72)].iloc[0]
    assert one["entries"] == 1 and math.isnan(one["ci95_low"])  # one entry: no interval
    assert set(means["window_h"]) == {24, 48, 72}  # the 6 h entry is the diary's, not the page's


def test_mean_soreness_by_adjunct_counts_a_session_under_each_adjunct():
    means = pr.soreness_means(SAMPLE, by="adjunct")
    at_24 = means[means["window_h"] == 24].set_index("adjunct")["mean_soreness"].to_dict()
    assert at_24 == {"cold_spray": 6.0, "massage": 6.0, "none": 5.0, "not_recorded": 4.0}


RESOLVING = diary(
    (1, "deep", None, 6, 5), (1, "deep", None, 24, 3), (1, "deep", None, 48, 1),  # resolved at 48 h
    (2, "deep", None, 6, 4), (2, "deep", None, 24, 2),  # censored at 24 h, its last entry
    (3, "deep", None, 6, 1),  # resolved at once: 1 counts as resolved
    (4, "deep", None, 6, 6), (4, "deep", None, 24, 5), (4, "deep", None, 48, 3), (4, "deep", None, 72, 2),
)


def test_time_until_soreness_resolves_is_the_first_entry_at_1_or_less_else_censored_at_the_last():
    times = pr.resolution_times(RESOLVING)
    assert times[["session_id", "window_h", "resolved"]].values.tolist() == [
        [1, 48, True], [2, 24, False], [3, 6, True], [4, 72, False]]


def test_kaplan_meier_of_resolution_by_window():
    curve = pr.resolution_curve(RESOLVING).set_index("window_h")
    # 6 h: 4 at risk, 1 resolves → S = 3/4; 24 h: 3 at risk, none resolves, 1 censored; 48 h: 2 at risk, 1
    # resolves → S = 3/4 · 1/2 = 3/8; 72 h: 1 at risk, censored.
    assert curve["at_risk"].tolist() == [4, 3, 2, 1]
    assert curve["resolved"].tolist() == [1, 0, 1, 0]
    assert curve["censored"].tolist() == [0, 1, 0, 1]
    assert curve["unresolved"].tolist() == pytest.approx([0.75, 0.75, 0.375, 0.375])
    assert curve.loc[48, "resolved_share"] == pytest.approx(0.625)


EFFECTS = {
    "sessions": pd.DataFrame({"session_id": [1, 2, 3], "patient_id": ["A", "A", "B"],
                              "technique": ["deep", "deep", "superficial"], "adjuncts": [None, None, "none"],
                              "entries": [3, 2, 1]}),
    "patient": pd.DataFrame({"session_id": [1, 1, 2], "code": ["bruising", "soreness_over_72h", "fatigue"],
                             "severity": ["mild", "significant", "mild"]}),
    # drowsiness and fatigue are one checklist item (at the worse severity); pain during treatment is on no item.
    "clinician": pd.DataFrame({"session_id": [1, 2, 2, 3], "code": ["bruising", "drowsiness", "fatigue", "pain_during"],
                               "severity": ["mild", "mild", "significant", "mild"]}),
}


def test_effects_per_100_sessions_from_both_sources_on_the_same_sessions():
    rates = pr.effect_rates(EFFECTS).set_index(["technique", "source", "side_effect", "severity"])
    deep_patient = rates.loc[("deep", "patient", "any", "any")]
    # 3 events in 2 sessions: 150 per 100; Garwood χ²(0.025; 6) / 2 = 0.6187, χ²(0.975; 8) / 2 = 8.7673, per 2.
    assert (deep_patient["events"], deep_patient["sessions"], deep_patient["per_100_sessions"]) == (3, 2, 150.0)
    assert deep_patient["ci95_low"] == pytest.approx(30.9336, abs=1e-3)
    assert deep_patient["ci95_high"] == pytest.approx(438.3637, abs=1e-3)
    assert rates.loc[("deep", "clinician", "any", "any"), "events"] == 2  # bruising, tiredness
    assert rates.loc[("deep", "clinician", "fatigue", "significant_or_serious"), "events"] == 1
    assert rates.loc[("deep", "patient", "any", "significant_or_serious"), "events"] == 1
    assert rates.loc[("superficial", "clinician", "any", "any"), "events"] == 0  # pain during: not compared
    assert rates.loc[("superficial", "clinician", "any", "any"), "ci95_high"] == pytest.approx(368.8879, abs=1e-3)
    assert rates.loc[("all", "patient", "any", "any"), ["events", "sessions"]].tolist() == [3, 3]


def test_pgic_share_much_or_very_much_improved_is_of_each_episodes_latest_answer():
    answers = pd.DataFrame({"episode_id": [1, 1, 2, 2, 3], "technique": ["deep"] * 4 + ["superficial"],
                            "adjuncts": [None] * 5, "answered_at": [1, 2, 1, 2, 1], "score": [4, 2, 1, 3, 1]})
    table = pr.pgic_improved(answers).set_index("technique")
    assert table.loc["deep", ["episodes", "improved", "share"]].tolist() == [2, 1, 0.5]
    # Wilson for 1 of 2: (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n) = 0.5 ± 0.4055
    assert table.loc["deep", "ci95_low"] == pytest.approx(0.094531, abs=1e-5)
    assert table.loc["deep", "ci95_high"] == pytest.approx(0.905469, abs=1e-5)
    assert table.loc["all", ["episodes", "improved"]].tolist() == [3, 2]


RATINGS = pd.DataFrame(
    [(1, 11, 1, 2), (1, 11, 2, 5), (1, 12, 1, 4), (1, 12, 2, 6), (1, 12, 3, 6), (1, 13, 1, 3),
     (2, 21, 1, 5), (2, 21, 2, 6), (3, 31, 1, 3)],
    columns=["episode_id", "activity_id", "rated_at", "score"],
).assign(technique=lambda f: f["episode_id"].map({1: "deep", 2: "deep", 3: "superficial"}), adjuncts=None,
         position=1, patient_id="P")


def test_psfs_change_is_the_mean_over_activities_rated_twice_of_latest_minus_first():
    change = pr.psfs_change(RATINGS).set_index("episode_id")
    # Episode 1: activity 11 from 2 to 5 (+3), 12 from 4 to 6 (+2), 13 rated once (left out): +2.5.
    assert change.loc[1, ["activities", "baseline", "latest", "change"]].tolist() == [2, 3.0, 5.5, 2.5]
    assert change.loc[2, "change"] == 1.0
    assert 3 not in change.index  # no activity rated twice


def test_psfs_summary_gives_mean_change_with_t_interval_and_the_share_reaching_2_3_points():
    table = pr.psfs_summary(RATINGS).set_index("technique")
    deep = table.loc["deep"]
    # Changes 2.5 and 1.0: mean 1.75, sd 1.0607, half-width t(0.975; 1) · 1.0607 / √2 = 9.5297.
    assert (deep["episodes"], deep["mean_change"], deep["reached_mid"], deep["share_mid"]) == (2, 1.75, 1, 0.5)
    assert deep["ci95_low"] == pytest.approx(1.75 - T_975_1 * 0.75, abs=1e-4)
    assert deep["ci95_high"] == pytest.approx(1.75 + T_975_1 * 0.75, abs=1e-4)
    assert "superficial" not in table.index


def test_a_grouping_other_than_technique_or_adjunct_is_refused_naming_it():
    with pytest.raises(ValueError, match="^by: 'technique' or 'adjunct'"):
        pr.soreness_means(SAMPLE, by="clinician")


def test_a_soreness_interval_from_few_entries_is_cut_at_the_ends_of_the_scale():
    # 0 and 2: mean 1, sd √2, half-width t(0.975; 1) · √2 / √2 = 12.7: the interval would run from −11.7 to 13.7.
    means = pr.soreness_means(diary((1, "deep", None, 24, 0), (2, "deep", None, 24, 2)))
    assert means[["mean_soreness", "ci95_low", "ci95_high"]].values.tolist() == [[1.0, 0.0, 10.0]]
