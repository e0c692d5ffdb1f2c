"""Tests that the SQL aggregates of db.queries equal the pandas definitions of analytics.outcomes, on every backend.

The sample data set is imported once per backend into a database that the read-only tests of this module share.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event
from sqlmodel import Session

from analytics import outcomes, safety
from clinic import side_effects
from db import patient_search, queries
from db.corrections import delete_session
from db.engine import write_session
from db.queries import OutcomeFilter
from db.writes import record_session
from tests.db.factories import (
    ADMIN,
    DATE_IS_RIGHT,
    SAMPLE_FILE,
    another_database,
    engine_on,
    import_file,
    record,
    session_input,
)

FLOAT_MOMENTS = ["sum_pain", "sum_points", "sum_pct", "sumsq_pct"]
NECK_AND_BACK = OutcomeFilter(conditions=("neck_pain", "low_back_pain"))
AUTUMN_TO_WINTER = OutcomeFilter(start=date(2025, 9, 1), end=date(2026, 2, 28))
FILTERS = {
    "all": OutcomeFilter(),
    "conditions": NECK_AND_BACK,
    "dates": AUTUMN_TO_WINTER,
    "both": OutcomeFilter(conditions=("neck_pain",), start=date(2025, 9, 1), end=date(2026, 2, 28)),
    # Ranges that cut months: whole months come from the roll-ups, the cut ones from the sessions themselves.
    "cut months": OutcomeFilter(start=date(2025, 9, 17), end=date(2026, 2, 11)),
    "within a month": OutcomeFilter(conditions=("neck_pain", "low_back_pain"), start=date(2025, 10, 3),
                                    end=date(2025, 10, 29)),
    # Each dimension alone reads its own roll-up rows; two or more read the sessions of the episodes they select.
    "body regions": OutcomeFilter(body_regions=("neck", "shoulder")),
    "clinicians": OutcomeFilter(clinicians=("clin_ahmed", "clin_chen")),
    "techniques": OutcomeFilter(techniques=("deep", "electrical")),
    "technique and condition": OutcomeFilter(techniques=("deep", "superficial"),
                                             conditions=("neck_pain", "low_back_pain")),
    "technique and whole months": OutcomeFilter(techniques=("superficial", "electrical"), start=date(2025, 9, 1),
                                                end=date(2026, 4, 30)),
    "condition and clinician": OutcomeFilter(conditions=("neck_pain", "low_back_pain"),
                                             clinicians=("clin_ahmed", "clin_diaz", "clin_brown")),
    "clinician and whole months": OutcomeFilter(clinicians=("clin_diaz", "clin_evans", "clin_fischer"),
                                                start=date(2025, 6, 1), end=date(2026, 5, 31)),
    "region, technique, cut months": OutcomeFilter(body_regions=("neck", "lower_back", "shoulder"),
                                                   techniques=("deep", "electrical"), start=date(2025, 7, 17),
                                                   end=date(2026, 6, 11)),
    "every filter": OutcomeFilter(conditions=("neck_pain", "low_back_pain", "shoulder_pain"),
                                  body_regions=("neck", "lower_back", "shoulder"),
                                  clinicians=("clin_ahmed", "clin_diaz", "clin_brown", "clin_chen"),
                                  techniques=("deep", "electrical", "superficial"), start=date(2025, 5, 20),
                                  end=date(2026, 8, 20)),
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sample_engine(request, tmp_path_factory):
    """Yield an engine on a database holding sample_data/sessions.csv, shared by the read-only tests below."""
    with another_database(request, request.param, tmp_path_factory.mktemp("sample")) as url, engine_on(url) as engine:
        import_file(engine, SAMPLE_FILE)
        yield engine


@pytest.fixture(scope="module")
def csv_rows() -> pd.DataFrame:
    """The sample file as plain pandas reads it: the independent reference for counts."""
    rows = pd.read_csv(SAMPLE_FILE, dtype=str, keep_default_na=False)
    rows["first_date"] = rows.groupby("patient_id")["session_date"].transform("min")
    return rows


@pytest.fixture(scope="module")
def per_session(sample_engine) -> pd.DataFrame:
    with Session(sample_engine) as session:
        return queries.all_sessions(session, actor=ADMIN)


def in_filter(frame: pd.DataFrame, where: OutcomeFilter) -> pd.DataFrame:
    """Return the sessions of the episodes the filter covers, decided in pandas from each episode's session 1."""
    first = frame[frame["session_number"] == 1].set_index("episode_id")
    keep = pd.Series(True, index=first.index)
    if where.conditions:
        keep &= first["condition"].isin(where.conditions)
    if where.body_regions:
        keep &= first["body_region"].isin(where.body_regions)
    if where.clinicians:
        keep &= first["clinician"].isin(where.clinicians)
    if where.techniques:  # the technique of the episode, that of its first session
        keep &= first["technique"].isin(where.techniques)
    if where.start:
        keep &= first["session_date"] >= where.start
    if where.end:
        keep &= first["session_date"] <= where.end
    return frame[frame["episode_id"].isin(keep[keep].index)]


def pandas_improvement(per_session: pd.DataFrame, where: OutcomeFilter) -> pd.DataFrame:
    return outcomes.cumulative_improvement(in_filter(per_session, where))


def sorted_frame(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.mark.parametrize("name", FILTERS)
def test_technique_moments_in_sql_equal_the_pandas_curve_moments(sample_engine, per_session, name):
    where = FILTERS[name]
    with Session(sample_engine) as session:
        in_sql = sorted_frame(
            queries.technique_moments(session, actor=ADMIN, where=where), ["technique", "session_number"]
        )
    in_pandas = sorted_frame(
        outcomes.curve_moments(pandas_improvement(per_session, where)), ["technique", "session_number"]
    )
    assert len(in_sql) > 10
    assert list(in_sql.columns) == outcomes.MOMENT_COLUMNS
    assert (
        in_sql[["technique", "session_number", "n"]]
        .astype({"n": int, "session_number": int})
        .equals(in_pandas[["technique", "session_number", "n"]].astype({"n": int, "session_number": int}))
    )
    assert np.allclose(in_sql[FLOAT_MOMENTS].astype(float), in_pandas[FLOAT_MOMENTS], rtol=1e-9, atol=1e-6)


def responder_counts(session: Session, where: OutcomeFilter = FILTERS["all"]) -> pd.DataFrame:
    """Return the responder counts of every filtered episode, from the database's per-episode rows."""
    episodes = queries.episode_last_pain(session, actor=ADMIN, where=where)
    return outcomes.count_responders(outcomes.last_from_pain(episodes))


@pytest.mark.parametrize("name", FILTERS)
def test_responder_counts_from_the_database_equal_the_pandas_responder_counts(sample_engine, per_session, name):
    where = FILTERS[name]
    with Session(sample_engine) as session:
        in_sql = responder_counts(session, where)
    in_pandas = outcomes.responder_counts(pandas_improvement(per_session, where))
    keys = ["technique", "threshold_pct"]
    pd.testing.assert_frame_equal(sorted_frame(in_sql, keys), sorted_frame(in_pandas, keys), check_dtype=False)
    assert in_sql["responders"].sum() > 0


def test_excluded_episodes_count_the_csvs_zero_baselines_and_single_sessions(sample_engine, csv_rows):
    # Equality with the pandas definition, under every filter, is the parametrized test below.
    with Session(sample_engine) as session:
        in_sql = queries.excluded_episodes(session, actor=ADMIN)
    first_rows = csv_rows.groupby("patient_id").head(1)
    zero = in_sql[in_sql["reason"].str.startswith("baseline")]
    assert zero["episodes"].sum() == (first_rows["pain_before"] == "0").sum() >= 1
    single = in_sql[in_sql["reason"].str.startswith("a single")]
    sizes = csv_rows.groupby("patient_id").size()
    assert (
        single["episodes"].sum()
        == ((sizes == 1) & ~sizes.index.isin(first_rows.loc[first_rows["pain_before"] == "0", "patient_id"])).sum()
        >= 1
    )


@pytest.mark.parametrize("name", FILTERS)
def test_excluded_episodes_under_each_filter_equal_the_pandas_ones(sample_engine, per_session, name):
    where = FILTERS[name]
    with Session(sample_engine) as session:
        in_sql = queries.excluded_episodes(session, actor=ADMIN, where=where)
    in_pandas = outcomes.excluded_episodes(pandas_improvement(per_session, where))
    keys = ["technique", "reason"]
    pd.testing.assert_frame_equal(sorted_frame(in_sql, keys), sorted_frame(in_pandas, keys), check_dtype=False)


@pytest.mark.parametrize("name", ["conditions", "dates", "both", "cut months", "within a month"])
def test_filters_restrict_the_episodes_to_those_matching_the_csv(sample_engine, csv_rows, name):
    where = FILTERS[name]
    rows = csv_rows
    if where.conditions:
        rows = rows[rows["condition"].isin(where.conditions)]
    if where.start:
        rows = rows[rows["first_date"] >= where.start.isoformat()]
    if where.end:
        rows = rows[rows["first_date"] <= where.end.isoformat()]
    first_rows = rows.groupby("patient_id").head(1)
    expected = first_rows[first_rows["pain_before"] != "0"].groupby("technique").size()
    with Session(sample_engine) as session:
        moments = queries.technique_moments(session, actor=ADMIN, where=where)
        everything = queries.technique_moments(session, actor=ADMIN)
    at_first = moments[moments["session_number"] == 1].set_index("technique")["n"]
    assert at_first.astype(int).to_dict() == expected.to_dict()
    assert 0 < at_first.sum() < everything[everything["session_number"] == 1]["n"].sum()


def test_an_improvement_of_exactly_30_percent_is_a_responder_in_sql(engine):
    patients = [("P1", "vas_100", 50, 35), ("P2", "nrs_10", 10, 7), ("P3", "vas_100", 50, 36)]  # 30 %, 30 %, 28 %
    for patient, scale, before, after in patients:
        record(engine, patient_id=patient, pain_scale=scale, pain_before=before, session_date="2025-03-01")
        record(engine, patient_id=patient, pain_scale=scale, pain_before=after, session_date="2025-03-08")
    with Session(engine) as session:
        counts = responder_counts(session).set_index("threshold_pct")
    assert counts["responders"].to_dict() == {15: 3, 30: 2, 50: 0}
    assert set(counts["patients"]) == {3}


def test_a_filter_matching_nothing_gives_empty_aggregates(sample_engine):
    nowhere = OutcomeFilter(start=date(2030, 1, 1))
    with Session(sample_engine) as session:
        assert queries.technique_moments(session, actor=ADMIN, where=nowhere).empty
        assert queries.episode_last_pain(session, actor=ADMIN, where=nowhere).empty
        safety = queries.safety_events(session, actor=ADMIN, where=nowhere)
    assert safety.events.empty and safety.sessions.empty and safety.sessions_with.empty


def csv_safety(rows: pd.DataFrame) -> tuple[dict, dict]:
    """Return side-effect events per (technique, code), plus 'any', and sessions per technique, counted in pandas."""
    pairs = rows.assign(pair=rows["side_effects"].str.split(";")).explode("pair")
    pairs = pairs[pairs["pair"].fillna("") != ""]
    events = pairs.assign(code=pairs["pair"].str.split(":").str[0]).groupby(["technique", "code"]).size().to_dict()
    with_any = rows[rows["side_effects"] != ""].groupby("technique").size()
    events |= {(technique, "any"): n for technique, n in with_any.items()}
    return events, rows.groupby("technique").size().to_dict()


@pytest.mark.parametrize("name", ["all", "conditions", "cut months", "within a month"])
def test_safety_events_per_type_and_any_equal_a_direct_count_of_the_csv(sample_engine, csv_rows, name):
    where = FILTERS[name]
    rows = csv_rows[csv_rows["condition"].isin(where.conditions)] if where.conditions else csv_rows
    if where.start:
        rows = rows[rows["first_date"].between(where.start.isoformat(), where.end.isoformat())]
    expected_events, expected_sessions = csv_safety(rows)
    with Session(sample_engine) as session:
        safety = queries.safety_events(session, actor=ADMIN, where=where)
    per_type = safety.events.groupby(["technique", "code"])["events"].sum()
    with_any = safety.sessions_with[safety.sessions_with["severity"] == "any"]
    got = per_type.to_dict() | {(r.technique, "any"): r.sessions_with for r in with_any.itertuples()}
    assert got == expected_events
    assert {r.technique: int(r.sessions) for r in safety.sessions.itertuples()} == expected_sessions
    assert sum(expected_sessions.values()) == len(rows)


@pytest.mark.parametrize("name", ["all", "both"])
def test_safety_events_in_sql_equal_the_pandas_count_of_the_tidy_side_effects(sample_engine, per_session, name):
    where = FILTERS[name]
    with Session(sample_engine) as session:
        in_sql = queries.safety_events(session, actor=ADMIN, where=where)
        effects = queries.all_side_effects(session, actor=ADMIN)
    in_pandas = safety.count_side_effects(in_filter(per_session, where), effects)
    for part, keys in (("events", ["technique", "code", "severity"]), ("sessions", ["technique"]),
                       ("sessions_with", ["technique", "severity"])):
        pd.testing.assert_frame_equal(sorted_frame(getattr(in_sql, part), keys),
                                      sorted_frame(getattr(in_pandas, part), keys), check_dtype=False)
    assert in_sql.events["events"].sum() > 0


def test_serious_events_list_every_significant_or_serious_side_effect(sample_engine, csv_rows):
    with Session(sample_engine) as session:
        events = queries.serious_events(session, actor=ADMIN)
    flagged = csv_rows[csv_rows["side_effects"].str.contains(":significant|:serious")]
    assert sorted(events["patient_id"]) == sorted(flagged["patient_id"])
    assert set(events["severity"]) <= {"significant", "serious"} and len(events) >= 1
    assert list(events["session_date"]) == sorted(events["session_date"], reverse=True)


def test_patients_list_every_patient_with_their_session_count(sample_engine, csv_rows):
    with Session(sample_engine) as session:
        listed = patient_search.patients(session, actor=ADMIN)
        assert queries.count_sessions(session, actor=ADMIN) == len(csv_rows)
        assert queries.conditions(session, actor=ADMIN) == sorted(set(csv_rows["condition"]))
    per_patient = dict(zip(listed["patient_id"], listed["sessions"], strict=True))
    assert per_patient == csv_rows.groupby("patient_id").size().to_dict()
    assert list(listed["patient_id"]) == sorted(listed["patient_id"])


def db_patient_id(engine, pseudonym: str) -> int:
    with Session(engine) as session:
        listed = patient_search.patients(session, actor=ADMIN)
    return int(listed.loc[listed["patient_id"] == pseudonym, "id"].iloc[0])


def packed(sessions: pd.DataFrame, effects: pd.DataFrame) -> list[str]:
    """Return each session's tidy side effects as the interchange text `code:severity;…`, in `sessions`' order."""
    by_session = effects.groupby("session_id")[["code", "severity"]].apply(lambda rows: side_effects.format(
        rows.itertuples(index=False, name=None)))
    return [by_session.get(i, "") for i in sessions["session_id"]]


def test_patient_sessions_are_one_patients_sessions_in_order_with_side_effects(sample_engine, csv_rows):
    same_day = csv_rows[csv_rows.duplicated(["patient_id", "session_date"], keep=False)]
    pseudonym = same_day["patient_id"].iloc[0]
    with Session(sample_engine) as session:
        patient = db_patient_id(sample_engine, pseudonym)
        mine = queries.patient_sessions(session, actor=ADMIN, patient_id=patient)
        effects = queries.patient_side_effects(session, actor=ADMIN, patient_id=patient)
    expected = csv_rows[csv_rows["patient_id"] == pseudonym]
    assert set(mine["patient_id"]) == {pseudonym}
    assert list(mine["session_number"]) == list(range(1, len(expected) + 1))
    assert [d.isoformat() for d in mine["session_date"]] == list(expected["session_date"])
    assert [f"{p:g}" for p in mine["pain_before"]] == list(expected["pain_before"])
    assert packed(mine, effects) == list(expected["side_effects"])
    assert list(mine["notes"]) == list(expected["notes"])


def test_patient_sessions_follow_session_numbers_after_a_back_dated_entry(engine):
    record(engine, patient_id="P7", session_date="2025-03-10", pain_before=50, side_effects=[("bruising", "mild")])
    record(engine, patient_id="P7", session_date="2025-03-03", pain_before=70, answer=DATE_IS_RIGHT)
    record(engine, patient_id="P8", session_date="2025-03-04", pain_before=20)
    with Session(engine) as session:
        mine = queries.patient_sessions(session, actor=ADMIN, patient_id=db_patient_id(engine, "P7"))
        effects = queries.patient_side_effects(session, actor=ADMIN, patient_id=db_patient_id(engine, "P7"))
    assert list(mine["session_number"]) == [1, 2]
    assert list(mine["pain_before"]) == [70, 50]
    assert packed(mine, effects) == ["", "bruising:mild"]


def test_last_session_defaults_are_those_of_the_patients_latest_session(engine):
    record(
        engine,
        patient_id="P7",
        session_date="2025-03-10",
        technique="electrical",
        pain_scale="nrs_10",
        pain_before=6,
        muscles=["infraspinatus"],
        condition="shoulder_pain",
        body_region="shoulder",
    )
    record(
        engine,
        patient_id="P7",
        session_date="2025-03-03",
        technique="superficial",
        muscles=["deltoid"],
        condition="shoulder_pain",
        answer=DATE_IS_RIGHT,
    )
    record(engine, patient_id="P8", session_date="2025-04-01", technique="deep")
    with Session(engine) as session:
        defaults = queries.last_session_defaults(session, actor=ADMIN, patient_id=db_patient_id(engine, "P7"))
        nothing = queries.last_session_defaults(session, actor=ADMIN, patient_id=987654)
    assert defaults == {
        "technique": "electrical",
        "muscles": "infraspinatus",
        "pain_scale": "nrs_10",
        "pain_before": 6,
        "condition": "shoulder_pain",
        "body_region": "shoulder",
    }
    assert nothing == {}


def test_episodes_of_a_patient_count_their_sessions(engine):
    record(engine, patient_id="P7", condition="neck_pain", session_date="2025-03-01")
    record(engine, patient_id="P7", condition="neck_pain", session_date="2025-03-08")
    record(engine, patient_id="P7", condition="headache", session_date="2025-03-09")
    with Session(engine) as session:
        listed = queries.episodes(session, actor=ADMIN, patient_id=db_patient_id(engine, "P7"))
    assert dict(zip(listed["condition"], listed["sessions"], strict=True)) == {"neck_pain": 2, "headache": 1}


def test_a_deleted_session_leaves_the_safety_counts_and_the_alerts(engine):
    record(engine, patient_id="P1", pain_before=60, session_date="2025-03-01")
    kept = record(engine, patient_id="P1", pain_before=40, session_date="2025-03-08",
                  side_effects=[("bruising", "mild")])
    gone = record(engine, patient_id="P1", pain_before=30, session_date="2025-03-15",
                  side_effects=[("bruising", "mild"), ("syncope", "serious")])
    with Session(engine) as session:
        assert len(queries.serious_events(session, actor=ADMIN)) == 1
    with write_session(engine) as session:
        delete_session(session, actor=ADMIN, session_id=gone["id"], reason="entered for the wrong patient")
    with Session(engine) as session:
        counts = queries.safety_events(session, actor=ADMIN)
        alerts = queries.serious_events(session, actor=ADMIN)
    assert {(r.code, r.severity, int(r.events)) for r in counts.events.itertuples()} == {("bruising", "mild", 1)}
    assert int(counts.sessions["sessions"].sum()) == 2
    assert alerts.empty
    assert kept["id"] != gone["id"]


def test_find_patients_narrows_by_id_prefix_or_name_and_hides_names_from_managers(engine):
    from db.access import Actor

    for pseudonym, name in (("P0001", "Ada Lovelace"), ("P0002", "Alan Turing"), ("Q0003", "Grace Hopper"),
                            ("P0004", "José-María  Núñez"), ("R0005", None), ("b0006", "Rosalind Franklin")):
        entry = session_input(patient_id=pseudonym)
        with write_session(engine) as session:
            record_session(session, actor=ADMIN, entry=entry, patient_name=name)
    manager = Actor(id=None, username="m", role="manager")
    with Session(engine) as session:
        def found(actor=ADMIN, **given) -> list[str]:
            return list(patient_search.find_patients(session, actor=actor, **given)["patient_id"])

        assert found() == ["b0006", "P0001", "P0002", "P0004", "Q0003", "R0005"]  # in id order, case aside
        assert found(search="p0") == ["P0001", "P0002", "P0004"]
        assert found(search="B") == ["b0006"]
        assert found(search=" P0002 ") == ["P0002"]
        assert found(search="turing") == found(search="TUR") == found(search="alan t") == ["P0002"]
        assert found(search="nunez") == found(search="maria nu") == found(search="JOSÉ-MARÍA") == ["P0004"]
        assert found(search="a") == ["P0001", "P0002"]  # Ada and Alan: no word of José-María Núñez starts so
        assert found(search="uring") == found(search="ada turing") == []  # a name is found from a word's start
        assert found(limit=2, include=("Q0003",)) == ["b0006", "P0001", "Q0003"]
        assert found(search="r") == ["b0006", "R0005"] and found(search="r", limit=1) == ["b0006"]  # by name, by id
        assert found(search="_0001") == found(search="%") == []  # neither is a wildcard
        assert found(search="\U0010ffff") == found(search="\ud7ff") == []  # the last characters there are
        assert found(actor=manager, search="turing") == []  # not found by a hidden name
        assert found(actor=manager, search="q") == ["Q0003"]
        by_manager = patient_search.find_patients(session, actor=manager)
    assert by_manager["name"].isna().all() and list(by_manager["label"]) == ["b0006", "P0001", "P0002", "P0004",
                                                                              "Q0003", "R0005"]


def test_an_imported_patient_is_found_by_their_id_case_aside(engine):
    import_file(engine, SAMPLE_FILE)
    with Session(engine) as session:
        found = patient_search.find_patients(session, actor=ADMIN, search="p001")
    assert list(found["patient_id"]) == [f"P001{i}" for i in range(10)]


def test_the_search_reads_its_keys_by_index_never_every_patient(sqlite_template, tmp_path):
    """On SQLite, whose plans name the indexes: a prefix is a range of each key's index (issue #15: every id was
    lower-cased at each search)."""
    shutil.copy(sqlite_template, tmp_path / "plans.db")
    sent = []
    with engine_on(f"sqlite:///{tmp_path / 'plans.db'}") as engine:
        event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2:4]))
        with Session(engine) as session:
            patient_search.find_patients(session, actor=ADMIN, search="Tur")
        searches = [(sql, parameters) for sql, parameters in sent if "FROM patients" in sql]
        with engine.connect() as connection:
            plan = [row[-1] for sql, parameters in searches
                    for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)]
    assert not [step for step in plan if step.startswith("SCAN")], plan
    assert any("INDEX ix_patients_search_id (search_id>? AND search_id<?)" in step for step in plan), plan
    assert any("patient_name_keys" in step and "(key>? AND key<?)" in step for step in plan), plan


def test_search_keys_are_the_id_lower_cased_and_the_name_folded_from_each_word():
    assert patient_search.search_id("Pt-00A_7") == "pt-00a_7"
    assert patient_search.name_keys("  Zoë  O'Brien-Smith ") == ["zoe o brien smith", "o brien smith", "brien smith",
                                                                 "smith"]
    assert patient_search.name_keys("Straße ﬁne") == ["strasse fine", "fine"]
    assert patient_search.name_keys(None) == patient_search.name_keys(" - ") == []
    long = patient_search.name_keys("a " * 64)
    assert len(long) == len(set(long)) and max(map(len, long)) == patient_search.KEY_LENGTH


@pytest.mark.parametrize("name", ["all", "both"])
def test_a_sample_of_episodes_is_fixed_and_keeps_every_session_of_each(sample_engine, per_session, name):
    where = FILTERS[name]
    with Session(sample_engine) as session:
        every = queries.outcome_sessions(session, actor=ADMIN, where=where)
        total = queries.count_episodes(session, actor=ADMIN, where=where)
        size = total // 3
        sample = queries.outcome_sessions(session, actor=ADMIN, where=where, episodes=size)
        again = queries.outcome_sessions(session, actor=ADMIN, where=where, episodes=size)
        whole = queries.outcome_sessions(session, actor=ADMIN, where=where, episodes=total)
    assert total == every["episode_id"].nunique() == in_filter(per_session, where)["episode_id"].nunique()
    pd.testing.assert_frame_equal(whole, every)  # a sample as large as the filter is all of it
    chosen = sample["episode_id"].unique()
    assert len(chosen) == size
    pd.testing.assert_frame_equal(sample, again)  # the same episodes every time
    # Each chosen episode with all its sessions, as the unsampled read gives them.
    pd.testing.assert_frame_equal(sample, every[every["episode_id"].isin(chosen)].reset_index(drop=True))


def test_a_sample_of_episodes_spreads_over_the_whole_range_not_the_oldest_or_newest(sample_engine):
    with Session(sample_engine) as session:
        ids = np.sort(queries.outcome_sessions(session, actor=ADMIN)["episode_id"].unique())
        chosen = queries.outcome_sessions(session, actor=ADMIN, episodes=100)["episode_id"].unique()
    assert len(ids) == 300 and len(chosen) == 100
    thirds = [np.isin(third, chosen).sum() for third in np.array_split(ids, 3)]
    assert all(25 <= n <= 42 for n in thirds), thirds  # about a third of the sample from each third of the ids


def test_tidy_side_effects_are_one_row_each_in_session_then_entry_order_as_in_the_file(sample_engine, csv_rows):
    where = FILTERS["both"]
    with Session(sample_engine) as session:
        every = queries.all_sessions(session, actor=ADMIN)
        tidy = queries.all_side_effects(session, actor=ADMIN)
        some = queries.outcome_sessions(session, actor=ADMIN, where=where, episodes=20)
        some_tidy = queries.outcome_side_effects(session, actor=ADMIN, where=where, episodes=20)
        patient = int(patient_search.patients(session, actor=ADMIN)["id"].iloc[0])
        mine = queries.patient_sessions(session, actor=ADMIN, patient_id=patient)
        mine_tidy = queries.patient_side_effects(session, actor=ADMIN, patient_id=patient)
    for frame in (tidy, some_tidy, mine_tidy):
        assert list(frame.columns) == ["session_id", "code", "severity"]
        assert frame["session_id"].is_monotonic_increasing
    stored = zip(every["patient_id"], every["session_date"].map(date.isoformat), packed(every, tidy), strict=True)
    in_file = zip(csv_rows["patient_id"], csv_rows["session_date"], csv_rows["side_effects"], strict=True)
    assert Counter(stored) == Counter(in_file) and len(tidy) > 0
    for sessions, own in ((some, some_tidy), (mine, mine_tidy)):  # the rows of their sessions, nothing else
        pd.testing.assert_frame_equal(own, tidy[tidy["session_id"].isin(sessions["session_id"])].reset_index(drop=True))


def test_a_sample_reads_only_its_own_episodes_side_effects(sample_engine):
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(sample_engine, "before_cursor_execute", seen)
    try:
        with Session(sample_engine) as session:
            tidy = queries.outcome_side_effects(session, actor=ADMIN, episodes=10)
            chosen = queries.outcome_sessions(session, actor=ADMIN, episodes=10)
    finally:
        event.remove(sample_engine, "before_cursor_execute", seen)
    reads = [s for s in statements if "FROM side_effects" in s]
    assert reads and all("LIMIT" in s for s in reads)  # every read of side effects is joined to the sample
    assert set(tidy["session_id"]) <= set(chosen["session_id"])


def test_a_deleted_session_has_no_tidy_side_effects(engine):
    kept = record(engine, patient_id="P1", session_date="2025-03-01", side_effects=[("bruising", "mild")])
    gone = record(engine, patient_id="P1", session_date="2025-03-08",
                  side_effects=[("syncope", "serious"), ("bruising", "mild")])
    with write_session(engine) as session:
        delete_session(session, actor=ADMIN, session_id=gone["id"], reason="entered twice")
    patient = db_patient_id(engine, "P1")
    with Session(engine) as session:
        reads = (queries.all_side_effects(session, actor=ADMIN), queries.outcome_side_effects(session, actor=ADMIN),
                 queries.patient_side_effects(session, actor=ADMIN, patient_id=patient))
    for tidy in reads:
        assert tidy.to_dict("records") == [{"session_id": kept["id"], "code": "bruising", "severity": "mild"}]


@pytest.mark.parametrize(("start", "end", "words"), [
    (date(2025, 9, 1), date(2026, 2, 28), "first session 2025-09-01 to 2026-02-28"),
    (date(2025, 9, 1), date(2025, 9, 1), "first session on 2025-09-01"),
    (date(2025, 9, 1), None, "first session on or after 2025-09-01"),
    (None, date(2026, 2, 28), "first session on or before 2026-02-28"),
    (None, None, ""),
])
def test_a_filter_s_dates_read_as_the_range_its_query_applies(start, end, words):
    assert OutcomeFilter(start=start, end=end).dates_in_words() == words
