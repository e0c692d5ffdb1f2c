"""Tests that analytics.safety counts side effects per 100 sessions and per session as worked out by hand."""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest
from scipy import stats

from analytics import outcomes, safety
from clinic import side_effects
from tests.analytics import independent
from tests.analytics.test_comparison import sample_improvement

Z95 = stats.norm.ppf(0.975)

# Four patients, worked by hand. A side effect belongs to the technique of the session where it happened.
#   P1 deep ×3: "bruising:mild;soreness:mild", "", "bruising:mild"
#   P2 deep ×2: "soreness:mild;soreness:significant" (one type twice in a session: counted once, at its highest
#               severity), "faintness:significant"
#   P3 superficial then deep: "", "bleeding:mild" (a deep-needling side effect in a superficial episode)
#   P4 electrical ×2: none
# Deep: 6 sessions, 6 events (bruising mild 2, soreness mild 1, soreness significant 1, faintness significant 1,
# bleeding mild 1) in 5 sessions with any. Superficial: 1 session, none. Electrical: 2 sessions, none.
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


def tidy(sessions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (sessions, side effects) as db.queries returns them: each session an id, one row per side effect."""
    sessions = sessions.assign(session_id=range(1, len(sessions) + 1))
    rows = [(i, code, severity) for i, text in zip(sessions["session_id"], sessions["side_effects"], strict=True)
            for code, severity in side_effects.parse(text)]
    return sessions.drop(columns="side_effects"), pd.DataFrame(rows, columns=["session_id", "code", "severity"])


TIDY = tidy(SESSIONS)


def textbook_wilson(successes: int, trials: int) -> tuple[float, float]:
    """Return the 95 % Wilson score interval by its textbook formula."""
    p = successes / trials
    centre = (p + Z95**2 / (2 * trials)) / (1 + Z95**2 / trials)
    half = Z95 / (1 + Z95**2 / trials) * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2))
    return centre - half, centre + half


@pytest.fixture(scope="module")
def counts() -> safety.SafetyCounts:
    return safety.count_side_effects(outcomes.cumulative_improvement(TIDY[0]), TIDY[1])


@pytest.fixture(scope="module")
def rates(counts) -> pd.DataFrame:
    return safety.rate_table(counts.events, counts.sessions)


def rate(table: pd.DataFrame, technique: str, code: str, severity: str) -> pd.Series:
    rows = table[(table["technique"] == technique) & (table["side_effect"] == code) & (table["severity"] == severity)]
    assert len(rows) == 1, (technique, code, severity)
    return rows.iloc[0]


def test_events_per_100_sessions_count_every_side_effect_by_hand(rates):
    hand = {  # (code, severity): events among 6 deep sessions
        ("bruising", "mild"): 2, ("bruising", "any"): 2, ("soreness", "mild"): 1, ("soreness", "significant"): 1,
        ("soreness", "any"): 2, ("faintness", "significant"): 1, ("bleeding", "mild"): 1,
        ("any", "any"): 6, ("any", "mild"): 4, ("any", "significant"): 2, ("any", "serious"): 0,
    }
    for (code, severity), events in hand.items():
        got = rate(rates, "deep", code, severity)
        assert (got["events"], got["sessions"]) == (events, 6), (code, severity)
        assert got["per_100_sessions"] == pytest.approx(100 * events / 6)
    assert rate(rates, "all", "any", "any")[["events", "sessions"]].tolist() == [6, 9]


def test_a_session_with_two_side_effects_counts_twice_as_events_and_once_in_the_share(counts, rates):
    # The published rates are events per 100 treatments: P1's first session adds 2 events but 1 session with any.
    assert rate(rates, "deep", "any", "any")["per_100_sessions"] == pytest.approx(100.0)
    shares = safety.share_table(counts.sessions_with, counts.sessions).set_index(["technique", "severity"])
    assert shares.loc[("deep", "any"), ["sessions_with", "sessions"]].tolist() == [5, 6]
    assert shares.loc[("deep", "mild"), "sessions_with"] == 3
    assert shares.loc[("deep", "significant"), "sessions_with"] == 2
    assert shares.loc[("deep", "serious"), "sessions_with"] == 0
    low, high = textbook_wilson(5, 6)
    assert shares.loc[("deep", "any"), ["ci95_low", "ci95_high"]].tolist() == [pytest.approx(low), pytest.approx(high)]


def test_only_rows_with_events_and_the_three_always_rows_are_kept(rates):
    superficial = rates[rates["technique"] == "superficial"]
    assert sorted(zip(superficial["side_effect"], superficial["severity"], strict=True)) == [
        ("any", "any"), ("any", "serious"), ("any", "significant")]
    assert (superficial["events"] == 0).all() and (superficial["sessions"] == 1).all()
    assert not ((rates["side_effect"] == "bleeding") & (rates["severity"] == "significant")).any()
    assert list(rates.columns) == safety.TABLE_COLUMNS
    keys = rates[["technique", "side_effect", "severity"]].apply(tuple, axis=1).tolist()
    assert keys == sorted(keys)


@pytest.mark.parametrize(("events", "low", "high"), [(0, 0.0, 3.689), (3, 0.619, 8.767), (20, 12.217, 30.888)])
def test_garwood_limits_match_the_published_table_of_exact_poisson_limits(events, low, high):
    got_low, got_high = safety.garwood_interval(events, 1.0)
    assert float(got_low) == pytest.approx(low, abs=1e-3) and float(got_high) == pytest.approx(high, abs=1e-3)


def test_the_rate_interval_is_garwoods_per_100_sessions(rates):
    for code, severity, events in (("bruising", "mild", 2), ("any", "any", 6), ("any", "serious", 0)):
        low, high = independent.garwood(events, 6)
        got = rate(rates, "deep", code, severity)
        assert (got["ci95_low"], got["ci95_high"]) == (pytest.approx(100 * low), pytest.approx(100 * high))


def test_the_technique_filter_counts_sessions_of_that_technique_whatever_the_episode_began_with():
    deep = safety.count_side_effects(*TIDY, techniques=("deep",))
    assert deep.sessions.values.tolist() == [["deep", 6]]  # P3's second session counts, its first does not
    assert set(deep.events["technique"]) == {"deep"}
    superficial = safety.rate_table(*[getattr(safety.count_side_effects(*TIDY, ("superficial",)), name)
                                      for name in ("events", "sessions")])
    assert set(superficial["technique"]) == {"superficial", "all"}  # no deep or electrical bar


# published rates, on the same basis


def test_brady_none_in_7629_is_an_exact_upper_bound_not_a_rate_and_boyce_has_its_exact_interval(rates):
    table = safety.serious_vs_published(rates)
    brady = table[table["source"] == safety.BRADY_2014].iloc[0]
    assert bool(brady["bound"]) and brady["events"] == 0 and brady["sessions"] == 7629
    assert brady["per_100"] == pytest.approx(100 * -math.log(0.05) / 7629)  # 0.0393: "rule of three"
    boyce = table[table["source"] == safety.BOYCE_2020].iloc[0]
    assert boyce["per_100"] == pytest.approx(100 * 20 / 20464)
    assert (boyce["ci95_low"], boyce["ci95_high"]) == (pytest.approx(100 * 12.217 / 20464, rel=1e-4),
                                                       pytest.approx(100 * 30.888 / 20464, rel=1e-4))
    deep = table[(table["source"] == "deep") & (table["severity"] == safety.SIGNIFICANT_OR_SERIOUS)].iloc[0]
    assert (deep["events"], deep["sessions"]) == (2, 6)


def test_the_sample_datas_three_significant_events_are_set_beside_brady_and_boyce_with_exact_tests():
    counts = safety.count_side_effects(*tidy(sample_improvement()))
    table = safety.serious_vs_published(safety.rate_table(counts.events, counts.sessions))
    clinic = table[(table["source"] == "all") & (table["severity"] == safety.SIGNIFICANT_OR_SERIOUS)].iloc[0]
    assert (clinic["events"], clinic["sessions"]) == (3, 1571)
    assert clinic["per_100"] == pytest.approx(0.19096, abs=1e-4)
    brady_p = table.loc[table["source"] == safety.BRADY_2014, "p_value"].iloc[0]
    assert brady_p == pytest.approx((1571 / (1571 + 7629)) ** 3)  # all 3 of 3 events in the clinic's share
    boyce_p = table.loc[table["source"] == safety.BOYCE_2020, "p_value"].iloc[0]
    assert boyce_p == pytest.approx(stats.binomtest(3, 23, 1571 / (1571 + 20464)).pvalue)
    sentence = safety.serious_sentence(table)
    assert "3 in 1,571 sessions, 0.19 per 100" in sentence
    assert "upper bound" in sentence and "the clinic's rate is higher (p = 0.005" in sentence
    assert "may be chance (p = 0.223" in sentence


def test_mild_rates_are_events_per_100_sessions_beside_events_per_100_treatments_on_the_sample_data():
    # The figure: deep "any mild" on Brady's basis is 36.38 per 100 sessions, not the share 31.89.
    counts = safety.count_side_effects(*tidy(sample_improvement()))
    comparison = safety.safety_vs_published(safety.rate_table(counts.events, counts.sessions))
    clinic = comparison[~comparison["published"]].set_index(["code", "source"])
    assert clinic.loc[("any", "deep"), "per_100"] == pytest.approx(36.38, abs=0.005)
    published = comparison[comparison["published"]].set_index(["code", "source"])["per_100"]
    assert published[("any", safety.BRADY_2014)] == 19.18 and published[("any", safety.BOYCE_2020)] == 36.7
    assert published[("bruising", safety.BRADY_2014)] == 7.55 and published[("bleeding", safety.BOYCE_2020)] == 16.0


def test_soreness_is_set_beside_no_published_figure():
    # Brady's "pain after treatment" (2.19 per 100) is not post-needling soreness; trials report soreness as a share
    # of patients (29–91 %), another basis.
    counts = safety.count_side_effects(*tidy(sample_improvement()))
    comparison = safety.safety_vs_published(safety.rate_table(counts.events, counts.sessions))
    assert "soreness" not in set(comparison["code"])
    assert 2.19 not in set(safety.PUBLISHED_MILD["per_100_treatments"])


def test_the_sample_data_table_equals_a_count_of_the_csv_with_textbook_garwood_intervals():
    counts = safety.count_side_effects(*tidy(sample_improvement()))
    got = safety.rate_table(counts.events, counts.sessions)
    expected = independent.safety_by_hand(independent.read_rows())
    keys = ["technique", "side_effect", "severity"]
    pd.testing.assert_frame_equal(got.sort_values(keys, ignore_index=True),
                                  expected.sort_values(keys, ignore_index=True), check_dtype=False)


def test_events_list_each_type_once_per_session_at_its_highest_severity():
    events = safety.side_effect_events(*TIDY)
    assert len(events) == 6
    p2 = events[events["patient"] == "P2"]
    assert sorted(zip(p2["code"], p2["severity"], strict=True)) == [
        ("faintness", "significant"), ("soreness", "significant"),
    ]
    assert events[events["patient"] == "P3"][["technique", "code", "severity"]].values.tolist() == [
        ["deep", "bleeding", "mild"]
    ]


def test_significant_and_serious_events_are_listed_with_date_technique_clinician_and_patient():
    alerts = safety.alert_events(*TIDY)
    assert alerts.to_dict("records") == [
        {"session_date": "2026-02-09", "technique": "deep", "code": "faintness", "severity": "significant",
         "clinician": "ann", "patient_id": "P2"},
        {"session_date": "2026-02-02", "technique": "deep", "code": "soreness", "severity": "significant",
         "clinician": "bob", "patient_id": "P2"},
    ]


def test_the_sample_data_tables_come_without_warnings_and_intervals_around_the_rates():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counts = safety.count_side_effects(*tidy(sample_improvement()))
        rates = safety.rate_table(counts.events, counts.sessions)
        shares = safety.share_table(counts.sessions_with, counts.sessions)
    assert [str(w.message) for w in caught] == []
    assert ((rates["ci95_low"] <= rates["per_100_sessions"]) & (rates["per_100_sessions"] <= rates["ci95_high"])).all()
    assert ((shares["ci95_low"] <= shares["share"] + 1e-12) & (shares["share"] <= shares["ci95_high"])).all()
    assert rates.loc[rates["technique"] == "all", "sessions"].iloc[0] == len(sample_improvement())


def test_sessions_without_side_effects_or_with_a_repeated_index_are_handled():
    sessions, effects = TIDY
    bare = safety.count_side_effects(sessions, effects.iloc[0:0])
    table = safety.rate_table(bare.events, bare.sessions)
    assert (table["events"] == 0).all() and set(table["side_effect"]) == {"any"}
    again = sessions.assign(session_id=sessions["session_id"] + 100, patient_id=sessions["patient_id"] + "b")
    doubled = pd.concat([sessions, again])  # index 0..8 twice
    doubled_effects = pd.concat([effects, effects.assign(session_id=effects["session_id"] + 100)])
    assert len(safety.alert_events(doubled, doubled_effects)) == 4
    twice = safety.count_side_effects(doubled, doubled_effects)
    assert rate(safety.rate_table(twice.events, twice.sessions), "deep", "bruising", "mild")["events"] == 4
