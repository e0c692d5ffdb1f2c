"""Expected recovery in the app (issue #18): the band on the patient's chart for clinicians and in plain words for the
patient, the clinicians' work list of off-track episodes one click from the patient, observed minus expected on
the technique page, the calibration on Methods; and who may read what of it.

Run in-process with AppTest on a copy of the seeded sample data (tests/app/conftest.py). The fit runs on the
worker: a test waits for it by its state (resources.analyses_settled), never by time.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlmodel import Session

from clinic.vocabulary import EPISODE_STATUSES
from dashboard import recovery_data, resources
from db import recovery_queries
from db.access import AccessDenied, Actor
from db.engine import make_engine
from db.queries import OutcomeFilter

ADMIN = Actor(id=None, username="admin", role="admin")
# P0002, the demo patient: one course of electrical needling, 10 sessions; earlier electrical courses reached
# sessions 2 to 5 often enough for a band, not 6 to 10.
PATIENT = "P0002"


def settled(app):
    """Run the page again once the analyses its last run started are computed: as a user sees it then."""
    assert resources.analyses_settled(timeout=120), "an analysis still running after 2 minutes"
    return app.run()


def chart_traces(app, key: str = "progress_chart") -> list[str]:
    chart = next(c for c in app.get("plotly_chart") if c.proto.id.endswith(key) or key in c.proto.id)
    return [trace.get("name", "") for trace in json.loads(chart.proto.spec)["data"]]


def texts(app, kind: str) -> list[str]:
    return [str(element.value) for element in app.get(kind)]


def record_id(url: str, pseudonym: str) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        episodes = recovery_queries.open_episodes(session, actor=ADMIN)
    engine.dispose()
    return int(episodes.loc[episodes["patient_id"] == pseudonym, "patient"].iloc[0])


def user_id(url: str, username: str) -> int:
    from sqlalchemy import text

    engine = make_engine(url)
    with engine.connect() as connection:
        found = connection.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()
    engine.dispose()
    return int(found)


def open_progress(app, pseudonym: str = PATIENT):
    app.switch_page("views/patient_progress.py").run()
    app.selectbox(key="progress_patient").select(pseudonym).run()
    return settled(app)


# -- the band on the patient's chart ------------------------------------------------------------------------------


def test_a_clinician_sees_the_band_behind_the_patients_improvement_once_it_is_computed(app):
    open_progress(app)
    traces = chart_traces(app)
    assert traces.index("8 in 10 of earlier patients like this") < traces.index("Improvement")  # behind the bars
    assert {"Half of earlier patients like this", "Expected (median)"} <= set(traces)
    captions = texts(app, "caption")
    assert any(c.startswith("Expected at session 5 (") and "median" in c for c in captions)
    assert any(c.startswith("Observational: the band is what happened to earlier patients") for c in captions)
    assert any(c.startswith("As of ") for c in captions)
    assert "refresh_expected_band" in [b.key for b in app.button]


def test_a_clinician_is_told_how_many_comparable_episodes_there_are_when_there_are_too_few(app):
    open_progress(app)
    why = [c for c in texts(app, "caption") if c.startswith("No expected-recovery band at session 10")]
    assert len(why) == 1
    assert "earlier episodes of electrical needling reached that session" in why[0]
    assert "a band needs 30 of each" in why[0] and "10th and 90th percentiles" in why[0]


def test_the_patient_reads_the_band_in_plain_words_and_sees_the_middle_half_only(as_role):
    app = settled(as_role("patient"))
    assert [t.value for t in app.title] == ["My progress"]
    words = [i for i in texts(app, "info") if "earlier patients like you" in i]
    assert len(words) == 1
    assert words[0].startswith("By session 5, half of the earlier patients like you had ")
    assert " You had " in words[0] and words[0].endswith("not a promise.")
    traces = chart_traces(app)
    assert "Half of earlier patients like this" in traces
    assert "8 in 10 of earlier patients like this" not in traces and "Expected (median)" not in traces
    assert any("Not enough earlier patients like this to say what to expect at session 10" in c
               for c in texts(app, "caption"))
    assert "refresh_expected_band" not in [b.key for b in app.button]  # the clinic's fit is not theirs to restart


def test_a_patients_band_is_theirs_only(seeded_url):
    own_id = record_id(seeded_url, PATIENT)
    other_id = record_id(seeded_url, "P0102")
    _, own_sessions, _ = resources.patient_record(ADMIN, own_id)
    _, other_sessions, _ = resources.patient_record(ADMIN, other_id)
    own_episode, other_episode = int(own_sessions["episode_id"].iloc[0]), int(other_sessions["episode_id"].iloc[0])
    patient = Actor(id=None, username="patient", role="patient", patient_id=own_id)
    recovery_data.episode_expectation(patient, own_id, own_episode)
    assert resources.analyses_settled(timeout=120)
    mine = recovery_data.episode_expectation(patient, own_id, own_episode).value
    assert set(mine) == {"band", "figure", "sentence", "why_not"}  # the numbers of this episode, nothing else
    assert mine["band"]["session_number"].tolist() == list(range(2, len(own_sessions) + 1))
    with pytest.raises(AccessDenied):  # another patient's record
        recovery_data.episode_expectation(patient, other_id, other_episode)
    with pytest.raises(AccessDenied):  # another patient's episode asked for under their own record
        recovery_data.episode_expectation(patient, own_id, other_episode)
    for outsider in (Actor(id=None, username="manager", role="manager"), None):
        with pytest.raises(AccessDenied):
            recovery_data.episode_expectation(outsider, own_id, own_episode)
    resources.clear_after_write()


def test_a_charts_band_predicted_for_its_episode_alone_is_its_band_in_the_full_computation(seeded_url):
    from analytics import expected_recovery, outcomes

    own_id = record_id(seeded_url, PATIENT)
    _, sessions, _ = resources.patient_record(ADMIN, own_id)
    episode = int(sessions["episode_id"].iloc[0])
    recovery_data.episode_expectation(ADMIN, own_id, episode)
    assert resources.analyses_settled(timeout=120)
    band = recovery_data.episode_expectation(ADMIN, own_id, episode).value["band"]
    engine = make_engine(seeded_url)
    with Session(engine) as session:
        every = outcomes.cumulative_improvement(recovery_queries.recovery_sessions(session, actor=ADMIN))
    engine.dispose()
    full = expected_recovery.expected_bands(every)
    full = full[(full["episode_id"] == episode) & (full["session_number"] <= len(sessions) + recovery_data.AHEAD)]
    assert band["shown"].any()
    pd.testing.assert_frame_equal(band[recovery_data.BAND_ROW_COLUMNS].astype({"shown": bool}),
                                  full[recovery_data.BAND_ROW_COLUMNS].reset_index(drop=True).astype({"shown": bool}),
                                  check_exact=False, rtol=1e-9, check_dtype=False)
    resources.clear_after_write()


def test_the_fits_sessions_read_in_parts_hold_whole_episodes_and_are_the_sessions_read_at_once(seeded_url):
    engine = make_engine(seeded_url)
    with Session(engine) as session:
        whole = recovery_queries.recovery_sessions(session, actor=ADMIN)
        parts = list(recovery_queries.recovery_session_parts(session, actor=ADMIN, rows=7))
    engine.dispose()
    assert len(parts) > 10 and len(whole) > 100
    episodes = [set(part["episode_id"]) for part in parts]
    assert sum(map(len, episodes)) == len(set().union(*episodes))  # no episode split between two parts
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    # in order of the episode's first session date (as the fit reads them: analytics.recovery_stream)
    opened = whole.loc[whole["session_number"] == 1, ["episode_id", "session_date"]].reset_index(drop=True)
    assert opened["session_date"].is_monotonic_increasing and not opened["episode_id"].is_monotonic_increasing
    assert (whole.groupby("episode_id", sort=False)["session_number"].diff().dropna() > 0).all()
    assert whole.loc[whole["status"].notna(), "status"].isin(EPISODE_STATUSES).all()


def test_the_episodes_counted_before_the_fit_are_those_it_reads_though_a_patient_is_recorded_between(seeded_url):
    """The fit counts its episodes first (the calibration's held-out fifth begins at a position among them), then
    reads them: one snapshot of the data for both, so a new patient recorded in between is in neither."""
    from tests.db.factories import record

    engine = make_engine(seeded_url)
    with Session(engine) as session:
        recovery_queries.one_snapshot(session)
        first = recovery_queries.first_session_pain(session, actor=ADMIN)
        record(engine, patient_id="P-NEW-1", session_date="2025-06-02")
        parts = list(recovery_queries.recovery_session_parts(session, actor=ADMIN))
    with Session(engine) as session:
        after = recovery_queries.first_session_pain(session, actor=ADMIN)
    engine.dispose()
    read = pd.concat(parts, ignore_index=True)
    assert len(after) == len(first) + 1  # recorded meanwhile, seen by a later read
    assert sorted(first["episode_id"]) == sorted(read["episode_id"].unique()) and len(first) > 100
    assert (first["session_number"] == 1).all()


# -- the work list -------------------------------------------------------------------------------------------------


def test_the_fit_reads_as_the_clinic_whoever_asks_first_and_each_reader_reads_as_themselves(seeded_url, monkeypatch):
    from dashboard import clinic_wide

    fitted_as, listed_as = [], []
    read_sessions, read_open = recovery_queries.recovery_session_parts, recovery_queries.open_episodes
    monkeypatch.setattr(recovery_queries, "recovery_session_parts",
                        lambda session, *, actor: fitted_as.append(actor) or read_sessions(session, actor=actor))
    monkeypatch.setattr(recovery_queries, "open_episodes",
                        lambda session, *, actor, among: listed_as.append(actor) or read_open(session, actor=actor,
                                                                                             among=among))
    clinician = Actor(id=user_id(seeded_url, "clin_ahmed"), username="clin_ahmed", role="clinician")
    recovery_data.off_track(clinician)  # the first to ask: the fit is computed for their work list
    assert resources.analyses_settled(timeout=120)
    assert fitted_as == [clinic_wide.CLINIC] * 2 and listed_as == [clinician]  # the fit reads the sessions twice
    assert set(recovery_data.off_track(clinician).value["clinician"]) == {"clin_ahmed"}


def test_the_work_list_is_newest_first_and_one_click_opens_the_patients_progress(app):
    app.switch_page("views/off_track.py").run()
    settled(app)
    assert [t.value for t in app.title] == ["Off track"]
    lines = [m for m in texts(app, "markdown") if " · session " in m]
    assert lines, "no off-track episode listed"
    dates = [pd.Timestamp(line.split(" on ")[1][:10]) for line in lines]
    assert dates == sorted(dates, reverse=True)
    pseudonym = lines[1].split("**")[1].replace("\\", "")
    buttons = [b for b in app.button if b.key and b.key.startswith("open_")]
    assert len(buttons) == len(lines)
    buttons[1].click().run()
    assert [t.value for t in app.title] == ["Patient progress"]
    assert app.selectbox(key="progress_patient").value == pseudonym


def test_a_clinicians_work_list_holds_only_their_own_episodes(seeded_url):
    clinician = Actor(id=user_id(seeded_url, "clin_ahmed"), username="clin_ahmed", role="clinician")
    recovery_data.off_track(clinician), recovery_data.off_track(ADMIN)  # each list is computed on the worker
    assert resources.analyses_settled(timeout=120)
    own, every = recovery_data.off_track(clinician).value, recovery_data.off_track(ADMIN).value
    assert not own.empty and set(own["clinician"]) == {"clin_ahmed"}
    assert set(every["clinician"]) > {"clin_ahmed"}
    assert set(own["episode_id"]) == set(every.loc[every["clinician"] == "clin_ahmed", "episode_id"])
    with pytest.raises(AccessDenied):
        recovery_data.off_track(Actor(id=None, username="manager", role="manager"))
    # In the database too: a clinician's open episodes are those whose first session they saw.
    engine = make_engine(seeded_url)
    with Session(engine) as session:
        assert set(recovery_queries.open_episodes(session, actor=clinician)["clinician"]) == {"clin_ahmed"}
        nobody = Actor(id=None, username="someone", role="clinician")
        assert recovery_queries.open_episodes(session, actor=nobody).empty
    engine.dispose()


def test_open_episodes_among_a_work_list_are_those_of_the_whole_read_a_part_at_a_time(seeded_url):
    engine = make_engine(seeded_url)
    with Session(engine) as session:
        every = recovery_queries.open_episodes(session, actor=ADMIN)
        among = list(every["episode_id"].iloc[::3]) + [10**9]  # every third, and an id of no open episode
        some = recovery_queries.open_episodes(session, actor=ADMIN, among=among, rows=2)
        none = recovery_queries.open_episodes(session, actor=ADMIN, among=[])
    engine.dispose()
    assert len(every) > 6 and len(some) == len(every.iloc[::3])
    pd.testing.assert_frame_equal(some, every.iloc[::3].reset_index(drop=True))
    assert none.empty and list(none.columns) == recovery_queries.OPEN_EPISODE_COLUMNS


def test_a_discharged_episode_leaves_the_work_list_once_computed_again(seeded_url):
    from datetime import date

    from db.engine import write_session
    from db.episodes import discharge_episode

    clinician = Actor(id=user_id(seeded_url, "clin_ahmed"), username="clin_ahmed", role="clinician")
    recovery_data.off_track(clinician)
    assert resources.analyses_settled(timeout=120)
    before = recovery_data.off_track(clinician).value
    episode = int(before["episode_id"].iloc[0])
    engine = make_engine(seeded_url)
    with write_session(engine) as session:
        discharge_episode(session, actor=clinician, episode_id=episode, status="dropped_out",
                          discharged_on=date.today())
    engine.dispose()
    recovery_data.off_track(clinician)  # the discharge is a change: the list is computed again
    assert resources.analyses_settled(timeout=120)
    after = recovery_data.off_track(clinician).value
    assert set(after["episode_id"]) == set(before["episode_id"]) - {episode}


# -- the technique page and Methods --------------------------------------------------------------------------------


def test_observed_minus_expected_is_drawn_on_funnel_plots_for_the_manager(as_role):
    app = as_role("manager")
    app.segmented_control(key="section").set_value("Observed vs expected").run()
    settled(app)
    assert [h.value for h in app.header][-1] == "Observed minus expected improvement"
    for by, points in (("clinician", "Clinicians"), ("technique", "Techniques")):
        assert {points, "95 % limits", "99.8 % limits"} <= set(chart_traces(app, f"expected_funnel_{by}"))
    tables = [f.value for f in app.dataframe if "difference" in f.value.columns]
    assert [t.columns[0] for t in tables] == ["clinician", "technique"]
    assert sorted(tables[1]["technique"]) == [
        "Deep dry needling", "Electrical dry needling", "Superficial dry needling"]


def test_a_filter_narrows_observed_minus_expected_to_its_episodes(seeded_url):
    manager = Actor(id=None, username="manager", role="manager")
    where = OutcomeFilter(techniques=("deep",))
    recovery_data.observed_minus_expected(manager, where)
    assert resources.analyses_settled(timeout=120)
    assert recovery_data.observed_minus_expected(manager, where).value["technique"]["technique"].tolist() == ["deep"]


def test_methods_shows_the_calibration_computed_in_the_background(as_role):
    app = as_role("manager")
    app.switch_page("views/methods.py").run()
    settled(app)
    table = next(f.value for f in app.dataframe if "coverage_50" in f.value.columns)
    overall = table[(table["condition"] == "All conditions") & (table["technique"] == "All techniques")].iloc[0]
    assert "neck pain" in set(table["condition"])
    assert (overall["observations"], overall["coverage_50"], overall["coverage_80"]) == (181, 0.4972, 0.7901)
    assert any("What a band is" in m for m in texts(app, "markdown"))


@pytest.mark.parametrize(("loader", "arguments"), [("observed_minus_expected", (OutcomeFilter(),)),
                                                   ("calibration", ()), ("off_track", ())])
def test_the_clinic_wide_figures_are_refused_to_a_patient_and_to_nobody(seeded_url, loader, arguments):
    patient = Actor(id=None, username="patient", role="patient", patient_id=1)
    for outsider in (patient, None):
        with pytest.raises(AccessDenied):
            getattr(recovery_data, loader)(outsider, *arguments)
