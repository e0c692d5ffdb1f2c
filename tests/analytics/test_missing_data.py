"""Tests that analytics.missing_data splits outcomes by discharge status and carries baseline forward for dropouts,
against hand figures, scipy's t and the textbook Wilson formula."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics import missing_data, outcomes
from clinic.vocabulary import EPISODE_STATUSES
from tests.analytics import independent
from tests.analytics.test_comparison import sample_improvement

# Episode id: (technique, pain before each session on 0–100, discharge status).
EPISODES = {
    1: ("deep", [50, 25], "goal_met"),  # 50 %, a responder
    2: ("deep", [80, 60], "goal_met"),  # 25 %
    3: ("deep", [60, 30], "dropped_out"),  # 50 %, a responder
    4: ("deep", [70, 70, 63], "dropped_out"),  # 10 %
    5: ("deep", [30, 20], None),  # 33.3 % but 10 points from a baseline under 40: not a responder
    6: ("deep", [40, 20], ""),  # 50 %, a responder
    7: ("deep", [50], "dropped_out"),  # a single session: outcome unknown as observed, 0 % under BOCF
    8: ("deep", [0, 0], "referred_on"),  # baseline 0: no percentage, in no figure
    9: ("superficial", [60, 30], "referred_on"),  # 50 %, a responder
}


def last_rows(episodes: dict = EPISODES) -> pd.DataFrame:
    rows = [(i, k, technique, "vas_100", pain) for i, (technique, pains, _) in episodes.items()
            for k, pain in enumerate(pains, start=1)]
    sessions = pd.DataFrame(rows, columns=["episode_id", "session_number", "technique", "pain_scale", "pain_before"])
    return outcomes.episode_last(outcomes.cumulative_improvement(sessions))


def statuses(episodes: dict = EPISODES) -> pd.Series:
    return pd.Series({i: status for i, (_, _, status) in episodes.items()}, dtype=object)


def t_interval(values: list[float]) -> tuple[float, float]:
    return stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))


def wilson(k: int, n: int) -> tuple[float, float]:
    z = stats.norm.ppf(0.975)
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def assert_figures(row: pd.Series, pct: list[float], responders: int) -> None:
    n = len(pct)
    assert (row["episodes"], row["responders_30"]) == (n, responders)
    assert row["mean_improvement_pct"] == pytest.approx(np.mean(pct))
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx(t_interval(pct))
    assert row["share_30"] == pytest.approx(responders / n)
    assert (row["ci95_low_30"], row["ci95_high_30"]) == pytest.approx(wilson(responders, n))


def test_completed_dropped_out_and_open_episodes_have_their_own_last_session_figures():
    table = missing_data.status_table(last_rows(), statuses()).set_index(["technique", "status_group"])
    assert list(table.columns) == missing_data.STATUS_COLUMNS[2:]
    assert_figures(table.loc[("deep", "completed")], [50, 25], 1)  # episode 8 (baseline 0) is in no figure
    assert_figures(table.loc[("deep", "dropped_out")], [50, 10], 1)  # episode 7 (one session) is not followed up
    assert_figures(table.loc[("deep", "open")], [100 / 3, 50], 1)  # episode 5 fails the points criterion
    superficial = table.loc[("superficial", "completed")]
    assert (superficial["episodes"], superficial["responders_30"], superficial["mean_improvement_pct"]) == (1, 1, 50)
    assert np.isnan(superficial["ci95_low"])  # one episode: no interval
    empty = table.loc[("superficial", "dropped_out")]
    assert empty["episodes"] == 0 and empty[["mean_improvement_pct", "share_30", "ci95_low_30"]].isna().all()


def test_baseline_carried_forward_lowers_the_share_by_the_dropouts_who_responded_and_adds_those_never_followed_up():
    table = missing_data.sensitivity_table(last_rows(), statuses()).set_index(["technique", "scenario"])
    assert list(table.columns) == missing_data.SENSITIVITY_COLUMNS[2:]
    observed, bocf = table.loc[("deep", missing_data.AS_OBSERVED)], table.loc[("deep", missing_data.BOCF)]
    assert_figures(observed, [50, 25, 50, 10, 100 / 3, 50], 3)  # today's figure: 3 of 6
    # Dropouts 3, 4 and 7 at 0 %: responder 3 is lost and single-session episode 7 joins the denominator, 2 of 7.
    assert_figures(bocf, [50, 25, 100 / 3, 50, 0, 0, 0], 2)
    assert observed["share_30"] - bocf["share_30"] == pytest.approx(3 / 6 - 2 / 7)
    assert (observed["imputed"], bocf["imputed"], bocf["note"]) == (0, 3, "")


def test_with_no_dropout_recorded_both_scenarios_are_equal_and_the_table_says_why():
    table = missing_data.sensitivity_table(last_rows(), statuses())
    superficial = table[table["technique"] == "superficial"].set_index("scenario")
    figures = missing_data.FIGURE_COLUMNS
    pd.testing.assert_series_equal(superficial.loc[missing_data.BOCF, figures],
                                   superficial.loc[missing_data.AS_OBSERVED, figures], check_names=False)
    assert superficial.loc[missing_data.BOCF, "note"] == missing_data.NOTE_NO_DROPOUTS


@pytest.mark.parametrize("status", [pd.Series(dtype=object), pd.Series({i: None for i in EPISODES}, dtype=object),
                                    pd.Series({i: "" for i in EPISODES}, dtype=object)],
                         ids=["absent", "none", "empty"])
def test_without_any_discharge_status_bocf_equals_as_observed_and_says_so(status):
    table = missing_data.sensitivity_table(last_rows(), status)
    for _, rows in table.groupby("technique"):
        rows = rows.set_index("scenario")
        figures = rows[missing_data.FIGURE_COLUMNS]
        pd.testing.assert_series_equal(figures.loc[missing_data.BOCF], figures.loc[missing_data.AS_OBSERVED],
                                       check_names=False)
        assert rows.loc[missing_data.BOCF, "note"] == missing_data.NOTE_NO_STATUS
    assert table.loc[table["scenario"] == missing_data.BOCF, "imputed"].eq(0).all()
    assert "No episode has a discharge status yet" in missing_data.sensitivity_sentence(table)


def test_an_unknown_discharge_status_is_refused_with_one_line_naming_the_field():
    with pytest.raises(ValueError, match=r"^status: unknown discharge status discharged \(expected goal_met"):
        missing_data.sensitivity_table(last_rows(), statuses().replace("goal_met", "discharged"))


def test_every_discharge_status_of_the_vocabulary_and_only_those_is_grouped_dropouts_apart():
    assert missing_data.STATUS_GROUPS == {"goal_met": "completed", "dropped_out": "dropped_out",
                                          "referred_on": "completed", "other": "completed"}
    assert list(missing_data.STATUS_GROUPS) == list(EPISODE_STATUSES)


def test_the_sentence_gives_the_share_under_both_scenarios_in_plain_words():
    sentence = missing_data.sensitivity_sentence(missing_data.sensitivity_table(last_rows(), statuses()))
    assert sentence == ("If every patient who dropped out had no lasting improvement, the share whose pain fell by at "
                        "least 30 % would be 29 % instead of 50 % for deep; the truth for those patients lies "
                        "somewhere in between.")
    no_dropouts = statuses().replace("dropped_out", "other")
    assert missing_data.sensitivity_sentence(missing_data.sensitivity_table(last_rows(), no_dropouts)).startswith(
        "No patient is recorded as having dropped out")


def test_on_the_sample_data_both_scenarios_match_a_recomputation_from_the_csv():
    # Status made up for the test: episodes of fewer than 4 sessions dropped out, the others met their goal.
    improvement = sample_improvement()
    last = outcomes.episode_last(improvement)
    status = pd.Series(np.where(last["sessions"] < 4, "dropped_out", "goal_met"), index=last["episode_id"])
    table = missing_data.sensitivity_table(last, status).set_index(["technique", "scenario"])
    observed = independent.last_session_responders(independent.episodes_from_rows(independent.read_rows()), 30)
    bocf: dict[str, tuple[int, int]] = {}
    for sessions in independent.episodes_from_rows(independent.read_rows()).values():
        baseline, dropped = sessions[0]["points"], len(sessions) < 4
        if baseline <= 0 or (len(sessions) < 2 and not dropped):
            continue
        hit = not dropped and independent.reaches(baseline, sessions[-1]["points"], 30)
        r, n = bocf.get(sessions[0]["technique"], (0, 0))
        bocf[sessions[0]["technique"]] = (r + hit, n + 1)
    for technique in observed:
        for scenario, (hit, n) in ((missing_data.AS_OBSERVED, observed[technique]),
                                   (missing_data.BOCF, bocf[technique])):
            row = table.loc[(technique, scenario)]
            assert (row["responders_30"], row["episodes"]) == (hit, n), (technique, scenario)
        assert table.loc[(technique, missing_data.BOCF), "share_30"] < observed[technique][0] / observed[technique][1]
