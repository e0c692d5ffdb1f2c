"""Tests that analytics.safety counts side effects per 100 sessions and per patient as worked out by hand."""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest
from scipy import stats

from analytics import outcomes, safety
from tests.analytics.test_comparison import sample_improvement

Z95 = stats.norm.ppf(0.975)

# Four patients, worked by hand. A side effect belongs to the technique of the session where it happened.
#   P1 deep ×3: "bruising:mild;soreness:mild", "", "bruising:mild"
#   P2 deep ×2: "soreness:mild;soreness:significant" (one type twice in a session: counted once, at its highest
#               severity), "faintness:significant"
#   P3 superficial then deep: "", "bleeding:mild" (a deep-needling side effect in a superficial episode)
#   P4 electrical ×2: none
# Deep: 6 sessions of 3 patients. Superficial: 1 session, 1 patient. Electrical: 2 sessions, 1 patient.
SESSIONS = pd.DataFrame(
    [
        ("P1", 1, 1, "2026-01-05", "deep", 70, "bruising:mild;soreness:mild", "ann"),
        ("P1", 1, 2, "2026-01-12", "deep", 60, "", "ann"),
        ("P1", 1, 3, "2026-01-19", "deep", 50, "bruising:mild", "ann"),
        ("P2", 2, 1, "2026-02-02", "deep", 80, "soreness:mild;soreness:significant", "bob"),
        ("P2", 2, 2, "2026-02-09", "deep", 70, "faintness:significant", "ann"),
        ("P3", 3, 1, "2026-03-01", "superficial", 60, "", "bob"),
        ("P3", 3, 2, "2026-03-08", "deep", 50, " bleeding : mild ", "bob"),
        ("P4", 4, 1, "2026-04-01", "electrical", 40, "", "ann"),
        ("P4", 4, 2, "2026-04-08", "electrical", 30, "", "ann"),
    ],
    columns=[
        "patient_id", "episode_id", "session_number", "session_date", "technique", "pain_before", "side_effects",
        "clinician",
    ],
).assign(pain_scale="vas_100")


def textbook_wilson(successes: int, trials: int) -> tuple[float, float]:
    """Return the 95 % Wilson score interval by its textbook formula."""
    p = successes / trials
    centre = (p + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 / (1 + Z95**2 / trials) * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2))
    return centre - half, centre + half


@pytest.fixture(scope="module")
def rates() -> pd.DataFrame:
    return safety.safety_rates(outcomes.cumulative_improvement(SESSIONS))


def rate(table: pd.DataFrame, technique: str, code: str, severity: str) -> pd.Series:
    rows = table[(table["technique"] == technique) & (table["code"] == code) & (table["severity"] == severity)]
    assert len(rows) == 1, (technique, code, severity)
    return rows.iloc[0]


def test_events_per_100_sessions_and_patient_shares_match_the_hand_counts(rates):
    hand = {  # (code, severity): (sessions with it, patients with it) among 6 deep sessions of 3 patients
        ("bruising", "mild"): (2, 1),
        ("soreness", "mild"): (1, 1),
        ("soreness", "significant"): (1, 1),
        ("soreness", safety.ALL): (2, 2),
        ("faintness", "significant"): (1, 1),
        ("bleeding", "mild"): (1, 1),
        (safety.ANY, safety.ALL): (5, 3),
        (safety.ANY, "mild"): (3, 2),
        (safety.ANY, "significant"): (2, 1),
    }
    for (code, severity), (events, patients) in hand.items():
        got = rate(rates, "deep", code, severity)
        assert (got["events"], got["sessions"]) == (events, 6), (code, severity)
        assert got["per_100_sessions"] == pytest.approx(100 * events / 6)
        assert (got["patients_with"], got["patients"]) == (patients, 3), (code, severity)
        assert got["patient_share"] == pytest.approx(patients / 3)


def test_a_type_never_seen_has_no_row_and_techniques_without_side_effects_have_none(rates):
    assert set(rates["technique"]) == {"deep"}
    assert not ((rates["code"] == "bleeding") & (rates["severity"] == "significant")).any()


def test_session_and_patient_intervals_are_wilson_intervals_including_at_n(rates):
    bruising = rate(rates, "deep", "bruising", "mild")
    low, high = textbook_wilson(2, 6)
    assert bruising["ci95_low"] == pytest.approx(100 * low) and bruising["ci95_high"] == pytest.approx(100 * high)
    every = rate(rates, "deep", safety.ANY, safety.ALL)  # all 3 deep patients had one: the Wilson interval at n
    low, high = textbook_wilson(3, 3)
    assert every["patient_ci95_low"] == pytest.approx(low) and every["patient_ci95_high"] == pytest.approx(1.0)
    assert every["patient_ci95_high"] == pytest.approx(high)


def test_events_list_each_type_once_per_session_at_its_highest_severity():
    events = safety.side_effect_events(SESSIONS)
    assert len(events) == 6
    p2 = events[events["patient"] == "P2"]
    assert sorted(zip(p2["code"], p2["severity"], strict=True)) == [
        ("faintness", "significant"), ("soreness", "significant"),
    ]
    assert events[events["patient"] == "P3"][["technique", "code", "severity"]].values.tolist() == [
        ["deep", "bleeding", "mild"]
    ]


def test_significant_and_serious_events_are_listed_with_date_technique_clinician_and_patient():
    alerts = safety.alert_events(SESSIONS)
    assert alerts.to_dict("records") == [
        {"session_date": "2026-02-09", "technique": "deep", "code": "faintness", "severity": "significant",
         "clinician": "ann", "patient_id": "P2"},
        {"session_date": "2026-02-02", "technique": "deep", "code": "soreness", "severity": "significant",
         "clinician": "bob", "patient_id": "P2"},
    ]


def test_published_rates_carry_the_figures_and_sources_of_references_md():
    published = safety.PUBLISHED_RATES.set_index(["source", "code", "severity"])["per_100_treatments"]
    assert published[(safety.BRADY_2014, "any", "mild")] == 19.18
    assert published[(safety.BRADY_2014, "bruising", "mild")] == 7.55
    assert published[(safety.BRADY_2014, "soreness", "mild")] == 2.19  # Brady's "pain after treatment"
    assert published[(safety.BOYCE_2020, "any", "mild")] == 36.7
    assert published[(safety.BOYCE_2020, "bleeding", "mild")] == 16.0
    assert published[(safety.BOYCE_2020, "any", "significant")] == pytest.approx(100 / 1023.2)  # 20 in 20,464
    assert safety.BRADY_2014.startswith("Brady et al. 2014") and safety.BOYCE_2020.startswith("Boyce et al. 2020")


def test_the_comparison_with_published_rates_keeps_mild_rates_of_the_published_types_only(rates):
    table = safety.safety_vs_published(rates)
    clinic = table[~table["published"]].set_index("code")
    assert set(clinic.index) == {"any", "bruising", "soreness", "bleeding"}  # faintness is not in the publications
    assert clinic.loc["bruising", "per_100"] == pytest.approx(100 * 2 / 6)
    assert clinic.loc["any", "per_100"] == pytest.approx(100 * 3 / 6)  # mild only, like the publications
    published = table[table["published"]]
    assert len(published) == (safety.PUBLISHED_RATES["severity"] == "mild").sum()
    assert published["ci95_low"].isna().all()


def test_the_sample_data_rates_are_proportions_with_intervals_around_them_and_no_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rates = safety.safety_rates(sample_improvement())
    assert [str(w.message) for w in caught] == []
    assert (rates["events"] <= rates["sessions"]).all()
    assert (rates["patients_with"] <= rates["patients"]).all()
    assert ((rates["ci95_low"] <= rates["per_100_sessions"]) & (rates["per_100_sessions"] <= rates["ci95_high"])).all()
    anything = rates[(rates["code"] == safety.ANY) & (rates["severity"] == safety.ALL)].set_index("technique")
    assert set(anything.index) == {"superficial", "deep", "electrical"}
    assert anything["sessions"].sum() == len(sample_improvement())


def test_a_frame_without_side_effects_or_with_a_repeated_index_is_handled():
    assert safety.safety_rates(SESSIONS.drop(columns="side_effects")).empty
    doubled = pd.concat([SESSIONS, SESSIONS.assign(patient_id=SESSIONS["patient_id"] + "b")])  # index 0..8 twice
    assert len(safety.alert_events(doubled)) == 4
    assert rate(safety.safety_rates(doubled), "deep", "bruising", "mild")["events"] == 4
