"""Tests that every read and write in db/ lets each role do exactly what it may, on every backend.

The permissions are written out below by hand, from docs/DESIGN.md section 1 and issue 4, not copied from
db.access: a change to the code's role constants that widens access makes these tests fail.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from db import (
    accounts,
    audit,
    audit_chain,
    corrections,
    episodes,
    exporting,
    import_plan,
    importing,
    numbering,
    patient_search,
    queries,
    recovery_queries,
    stricta_queries,
    writes,
)
from db.access import AccessDenied, Actor
from db.engine import write_session
from db.models import Episode, Patient, SideEffect, User
from tests.db.factories import another_database, engine_on, session_input

# -- the permission table -------------------------------------------------------------------------------------------

CLINICIAN, MANAGER, PATIENT, ADMIN, OTHER_PATIENT = "clinician", "manager", "patient", "admin", "other_patient"
ROLES = (CLINICIAN, MANAGER, PATIENT, ADMIN, OTHER_PATIENT)
AGGREGATES = {CLINICIAN, MANAGER, ADMIN}  # clinic-wide figures and pseudonymous ids
IDENTIFIED = {CLINICIAN, ADMIN}  # names and notes of any patient
OWN_RECORD = {CLINICIAN, ADMIN, PATIENT}  # PATIENT is linked to the record asked for; OTHER_PATIENT is not

# Who may call what. Every call below asks about patient A, whose account is PATIENT.
EXPECTED: dict[str, set[str]] = {
    "queries.technique_moments": AGGREGATES,
    "queries.episode_last_pain": AGGREGATES,
    "queries.episode_last_pain_parts": AGGREGATES,
    "queries.safety_events": AGGREGATES,
    "queries.excluded_episodes": AGGREGATES,
    "queries.serious_events": AGGREGATES,
    "queries.outcome_sessions": AGGREGATES,
    "queries.outcome_side_effects": AGGREGATES,
    "queries.filter_choices": AGGREGATES,
    "queries.conditions": AGGREGATES,
    "patient_search.patients": AGGREGATES,
    "patient_search.find_patients": AGGREGATES,
    "queries.clinicians": AGGREGATES,
    "queries.count_sessions": AGGREGATES,
    "queries.count_episodes": AGGREGATES,
    "queries.episodes": OWN_RECORD,
    "queries.patient_sessions": OWN_RECORD,
    "queries.patient_side_effects": OWN_RECORD,
    "queries.all_sessions": IDENTIFIED,
    "queries.all_side_effects": IDENTIFIED,
    "queries.last_session_defaults": IDENTIFIED,
    "writes.record_session": IDENTIFIED,
    "writes.mark_reviewed": {MANAGER, ADMIN},
    "episodes.patient_episodes": OWN_RECORD,
    "episodes.discharge_statuses": AGGREGATES,
    "episodes.all_episodes": IDENTIFIED,
    "episodes.start_episode": IDENTIFIED,
    "episodes.discharge_episode": IDENTIFIED,
    "episodes.plan_course": IDENTIFIED,
    "stricta_queries.stricta_sessions": AGGREGATES,
    "stricta_queries.completeness_counts": AGGREGATES,
    "stricta_queries.covered_dates": AGGREGATES,
    "stricta_queries.item_values": AGGREGATES,
    "stricta_queries.stricta_counts": AGGREGATES,
    "stricta_queries.sample_needling": AGGREGATES,
    "stricta_queries.needling_record": IDENTIFIED,
    "stricta_queries.last_needling_defaults": IDENTIFIED,
    "stricta_queries.patient_needling": OWN_RECORD,
    "stricta_queries.session_needling": IDENTIFIED,
    "recovery_queries.recovery_sessions": AGGREGATES,
    "recovery_queries.recovery_session_parts": AGGREGATES,
    "recovery_queries.first_session_pain": AGGREGATES,
    "recovery_queries.filtered_episode_ids": AGGREGATES,
    "recovery_queries.open_episodes": IDENTIFIED,
    "corrections.correct_session": IDENTIFIED,
    "corrections.delete_session": IDENTIFIED,
    "corrections.restore_session": {ADMIN},
    "corrections.deleted_sessions": {ADMIN},
    "corrections.session_history": IDENTIFIED,
    "importing.plan_import": IDENTIFIED,
    "importing.import_sessions": IDENTIFIED,
    "exporting.export_table": IDENTIFIED,
    "accounts.add_user": {ADMIN},
    "accounts.set_active": {ADMIN},
    "accounts.reset_password": {ADMIN},
    "accounts.users": {ADMIN},
    "audit.events": {ADMIN},
    "audit.export_csv": {ADMIN},
    "audit_chain.verify_chain": {ADMIN},
    "accounts.set_role": {ADMIN},
    # An admin for anyone's account; a clinician for their own, which the call asks about ("clin").
    "accounts.set_needling_background": {CLINICIAN, ADMIN},
    # About the actor's own account and sessions:
    "accounts.session_ended": {CLINICIAN, MANAGER, PATIENT, ADMIN, OTHER_PATIENT},
    "accounts.log_out": {CLINICIAN, MANAGER, PATIENT, ADMIN, OTHER_PATIENT},
}

# Public functions of db/ that take a Session but no acting user to check (audit.record's actor is the one
# recorded): building blocks of the checked functions above, never called by page code for data. A new one must be
# added here on purpose, after deciding it needs no check.
UNCHECKED_HELPERS = {
    "writes.get_or_create_patient", "writes.get_or_create_clinician", "episodes.latest_episode", "episodes.course",
    "episodes.new_episode", "episodes.episode_for_session",
    "numbering.renumber", "numbering.renumbering", "import_plan.plan", "corrections.snapshot", "audit.record",
    "audit.record_many", "audit_chain.chain_head", "patient_search.add_patient",
    # A stored id in other capitals, for writes that have checked the role (record_session, the import's plan).
    "patient_search.in_any_capitals",
    "accounts.actor_by_email",  # the OpenID Connect login itself: it establishes who acts
    # The data version (an audit id): it tells only that something changed; clinic_wide checks the role before
    # it serves anything kept on that version.
    "audit.newest_id", "audit.newest_change_after",
    "recovery_queries.one_snapshot",  # sets how the session reads, reads nothing
}
MODULES = {"queries": queries, "patient_search": patient_search, "writes": writes, "numbering": numbering,
           "corrections": corrections, "import_plan": import_plan, "importing": importing, "exporting": exporting,
           "accounts": accounts, "audit": audit, "audit_chain": audit_chain, "episodes": episodes,
           "stricta_queries": stricta_queries, "recovery_queries": recovery_queries}

NAME_A, NAME_B = "Alice Secretname", "Bob Hiddenname"
NOTE_A, NOTE_B = "note-secret-A1", "note-secret-B1"


# -- one small clinic per backend, shared by the module ---------------------------------------------------------------


@dataclass
class Clinic:
    """The module's database and the ids the calls ask about."""

    engine: Engine
    actors: dict[str, Actor]
    patient_a: int
    patient_b: int
    sessions_a: list[int]
    sessions_b: list[int]
    deleted_b: int
    serious_effect_a: int


def _record(session: Session, actor: Actor, name: str | None = None, **fields) -> int:
    return writes.record_session(session, actor=actor, entry=session_input(**fields), patient_name=name).id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def clinic(request, tmp_path_factory) -> Clinic:
    """Yield a clinic of three patients and accounts for every role, built once per backend through db/ itself."""
    with another_database(request, request.param, tmp_path_factory.mktemp("access")) as url, engine_on(url) as engine:
        setup = Actor(id=None, username="setup", role="admin")
        with write_session(engine) as session:
            for username, role in (("adm", "admin"), ("clin", "clinician"), ("mgr", "manager")):
                accounts.add_user(session, actor=setup, username=username, role=role, password=None)
        clinician = _actor(engine, "clin")
        with write_session(engine) as session:
            sessions_a = [
                _record(session, clinician, NAME_A, patient_id="PA", session_date="2025-01-06", pain_before=80,
                        notes=NOTE_A, condition="neck_pain", clinician="clin",
                        side_effects=[("syncope", "significant")]),
                _record(session, clinician, patient_id="PA", session_date="2025-01-13", pain_before=60,
                        notes="note-secret-A2", condition="neck_pain", clinician="clin"),
                _record(session, clinician, patient_id="PA", session_date="2025-01-20", pain_before=40,
                        condition="neck_pain", clinician="clin"),
            ]
            sessions_b = [
                _record(session, clinician, NAME_B, patient_id="PB", session_date="2025-02-03", pain_before=70,
                        notes=NOTE_B, technique="superficial", clinician="clin"),
                _record(session, clinician, patient_id="PB", session_date="2025-02-10", pain_before=50,
                        technique="superficial", clinician="clin"),
            ]
            # A third patient, without an account, whose baseline of 0 leaves the episode out of percentages; its
            # session records a needling item, for the reads of the needling record's counts.
            _record(session, clinician, patient_id="PC", session_date="2025-03-03", pain_before=0,
                    technique="electrical", insertions=6)
            deleted_b = _record(session, clinician, patient_id="PB", session_date="2025-02-17", pain_before=45,
                                technique="superficial", clinician="clin")
            corrections.delete_session(session, actor=clinician, session_id=deleted_b, reason="entered twice")
        with write_session(engine) as session:
            accounts.add_user(session, actor=setup, username="pat_a", role="patient", password=None,
                              patient_pseudonym="PA")
            accounts.add_user(session, actor=setup, username="pat_b", role="patient", password=None,
                              patient_pseudonym="PB")
        with Session(engine) as session:
            effect = session.scalars(select(SideEffect.id).where(SideEffect.session_id == sessions_a[0])).one()
        usernames = {CLINICIAN: "clin", MANAGER: "mgr", PATIENT: "pat_a", ADMIN: "adm", OTHER_PATIENT: "pat_b"}
        actors = {role: _actor(engine, username) for role, username in usernames.items()}
        yield Clinic(engine, actors, actors[PATIENT].patient_id, actors[OTHER_PATIENT].patient_id, sessions_a,
                     sessions_b, deleted_b, effect)


def _actor(engine: Engine, username: str) -> Actor:
    with Session(engine) as session:
        return accounts.actor_for(session.scalars(select(User).where(User.username == username)).one())


# -- the calls: one per public function, each about patient A ---------------------------------------------------------

Call = Callable[[Session, Actor, Clinic], object]


def _episode_of(session: Session, pseudonym: str) -> int:
    return session.scalars(select(Episode.id).join(Patient, Patient.id == Episode.patient_id)
                           .where(Patient.pseudonym == pseudonym)).first()


def _correction() -> object:
    return session_input(patient_id="PA", session_date="2025-01-13", pain_before=55, condition="neck_pain")


CALLS: dict[str, Call] = {
    "queries.technique_moments": lambda s, a, c: queries.technique_moments(s, actor=a),
    "queries.episode_last_pain": lambda s, a, c: queries.episode_last_pain(s, actor=a),
    "queries.episode_last_pain_parts": lambda s, a, c: list(queries.episode_last_pain_parts(s, actor=a)),
    "queries.safety_events": lambda s, a, c: queries.safety_events(s, actor=a),
    "queries.excluded_episodes": lambda s, a, c: queries.excluded_episodes(s, actor=a),
    "queries.serious_events": lambda s, a, c: queries.serious_events(s, actor=a),
    "queries.outcome_sessions": lambda s, a, c: queries.outcome_sessions(s, actor=a),
    "queries.outcome_side_effects": lambda s, a, c: queries.outcome_side_effects(s, actor=a),
    "queries.filter_choices": lambda s, a, c: queries.filter_choices(s, actor=a),
    "queries.conditions": lambda s, a, c: queries.conditions(s, actor=a),
    "patient_search.patients": lambda s, a, c: patient_search.patients(s, actor=a),
    "patient_search.find_patients": lambda s, a, c: patient_search.find_patients(s, actor=a),
    "queries.clinicians": lambda s, a, c: queries.clinicians(s, actor=a),
    "queries.count_sessions": lambda s, a, c: queries.count_sessions(s, actor=a),
    "queries.count_episodes": lambda s, a, c: queries.count_episodes(s, actor=a),
    "queries.episodes": lambda s, a, c: queries.episodes(s, actor=a, patient_id=c.patient_a),
    "queries.patient_sessions": lambda s, a, c: queries.patient_sessions(s, actor=a, patient_id=c.patient_a),
    "queries.all_sessions": lambda s, a, c: queries.all_sessions(s, actor=a),
    "queries.patient_side_effects": lambda s, a, c: queries.patient_side_effects(s, actor=a, patient_id=c.patient_a),
    "queries.all_side_effects": lambda s, a, c: queries.all_side_effects(s, actor=a),
    "queries.last_session_defaults": lambda s, a, c: queries.last_session_defaults(s, actor=a, patient_id=c.patient_a),
    "writes.record_session": lambda s, a, c: writes.record_session(
        s, actor=a, entry=session_input(patient_id="PA", session_date="2025-01-27", pain_before=30)),
    "writes.mark_reviewed": lambda s, a, c: writes.mark_reviewed(s, actor=a, side_effect_id=c.serious_effect_a),
    "episodes.patient_episodes": lambda s, a, c: episodes.patient_episodes(s, actor=a, patient_id=c.patient_a),
    "episodes.discharge_statuses": lambda s, a, c: episodes.discharge_statuses(s, actor=a),
    "episodes.all_episodes": lambda s, a, c: episodes.all_episodes(s, actor=a),
    "episodes.start_episode": lambda s, a, c: episodes.start_episode(
        s, actor=a, patient_id=c.patient_a, condition="neck_pain", goal="sleep through", started_on=datetime(
            2025, 3, 1).date()),
    "episodes.discharge_episode": lambda s, a, c: episodes.discharge_episode(
        s, actor=a, episode_id=_episode_of(s, "PA"), status="goal_met", discharged_on=datetime(2025, 2, 1).date()),
    "episodes.plan_course": lambda s, a, c: episodes.plan_course(
        s, actor=a, episode_id=_episode_of(s, "PA"), planned_sessions=6, planned_per_week=1),
    "stricta_queries.stricta_sessions": lambda s, a, c: stricta_queries.stricta_sessions(s, actor=a),
    "stricta_queries.completeness_counts": lambda s, a, c: stricta_queries.completeness_counts(s, actor=a),
    "stricta_queries.covered_dates": lambda s, a, c: stricta_queries.covered_dates(s, actor=a),
    "stricta_queries.item_values": lambda s, a, c: stricta_queries.item_values(s, actor=a),
    "stricta_queries.stricta_counts": lambda s, a, c: stricta_queries.stricta_counts(s, actor=a),
    "stricta_queries.sample_needling": lambda s, a, c: stricta_queries.sample_needling(s, actor=a, episodes=1),
    "stricta_queries.needling_record": lambda s, a, c: stricta_queries.needling_record(s, actor=a),
    "stricta_queries.last_needling_defaults": lambda s, a, c: stricta_queries.last_needling_defaults(
        s, actor=a, patient_id=c.patient_a),
    "stricta_queries.patient_needling": lambda s, a, c: stricta_queries.patient_needling(
        s, actor=a, patient_id=c.patient_a),
    "stricta_queries.session_needling": lambda s, a, c: stricta_queries.session_needling(
        s, actor=a, session_id=c.sessions_a[0]),
    "recovery_queries.recovery_sessions": lambda s, a, c: recovery_queries.recovery_sessions(s, actor=a),
    "recovery_queries.recovery_session_parts": lambda s, a, c: list(
        recovery_queries.recovery_session_parts(s, actor=a)),
    "recovery_queries.first_session_pain": lambda s, a, c: recovery_queries.first_session_pain(s, actor=a),
    "recovery_queries.filtered_episode_ids": lambda s, a, c: recovery_queries.filtered_episode_ids(
        s, actor=a, where=queries.OutcomeFilter()),
    "recovery_queries.open_episodes": lambda s, a, c: recovery_queries.open_episodes(s, actor=a),
    "corrections.correct_session": lambda s, a, c: corrections.correct_session(
        s, actor=a, session_id=c.sessions_a[1], entry=_correction()),
    "corrections.delete_session": lambda s, a, c: corrections.delete_session(
        s, actor=a, session_id=c.sessions_a[1], reason="wrong patient"),
    "corrections.restore_session": lambda s, a, c: corrections.restore_session(s, actor=a, session_id=c.deleted_b),
    "corrections.deleted_sessions": lambda s, a, c: corrections.deleted_sessions(s, actor=a),
    "corrections.session_history": lambda s, a, c: corrections.session_history(
        s, actor=a, session_id=c.sessions_a[0]),
    "importing.plan_import": lambda s, a, c: importing.plan_import(
        s, actor=a, entries=[session_input(patient_id="PA", session_date="2025-01-27", pain_before=30)]),
    "importing.import_sessions": lambda s, a, c: importing.import_sessions(
        s, actor=a, entries=[session_input(patient_id="PA", session_date="2025-01-27", pain_before=30)]),
    "exporting.export_table": lambda s, a, c: exporting.export_table(s, actor=a),
    "accounts.add_user": lambda s, a, c: accounts.add_user(
        s, actor=a, username="newcomer", role="clinician", password=None),
    "accounts.set_active": lambda s, a, c: accounts.set_active(s, actor=a, username="clin", active=False),
    "accounts.reset_password": lambda s, a, c: accounts.reset_password(
        s, actor=a, username="clin", password="a new long password"),
    "accounts.users": lambda s, a, c: accounts.users(s, actor=a),
    "audit.events": lambda s, a, c: audit.events(s, actor=a),
    "audit.export_csv": lambda s, a, c: audit.export_csv(s, actor=a, where=audit.AuditFilter(), limit=100),
    "audit_chain.verify_chain": lambda s, a, c: audit_chain.verify_chain(s, actor=a),
    "accounts.set_role": lambda s, a, c: accounts.set_role(s, actor=a, username="clin", role="manager"),
    "accounts.session_ended": lambda s, a, c: accounts.session_ended(
        s, actor=a, logged_in_at=datetime.now(UTC)) or "the session goes on",
    "accounts.log_out": lambda s, a, c: accounts.log_out(s, actor=a),
    "accounts.set_needling_background": lambda s, a, c: accounts.set_needling_background(
        s, actor=a, username="clin", training="level 2 course", years=5),
}
WRITES = {"writes.record_session", "writes.mark_reviewed", "episodes.start_episode", "episodes.discharge_episode",
          "corrections.correct_session", "corrections.delete_session", "corrections.restore_session",
          "importing.import_sessions",
          "exporting.export_table", "audit.export_csv", "accounts.add_user", "accounts.set_active",
          "accounts.reset_password", "accounts.set_role", "accounts.log_out", "episodes.plan_course",
          "accounts.set_needling_background"}


def fingerprint(engine: Engine) -> dict[str, list]:
    """Return every row of the tables a call could change, to show a refused call changed nothing."""
    tables = ("users", "patients", "episodes", "sessions", "side_effects", "audit_log")
    with engine.connect() as connection:
        return {t: sorted(map(tuple, connection.execute(text(f"SELECT * FROM {t}")).all()), key=repr) for t in tables}


def audit_rows(session: Session) -> int:
    return session.execute(text("SELECT count(*) FROM audit_log")).scalar_one()


def has_data(result) -> bool:
    """Return whether a read gave something back (a write's result is not looked at)."""
    if isinstance(result, (pd.DataFrame, pd.Series)):
        return not result.empty
    if isinstance(result, tuple):
        return all(has_data(part) for part in result)
    if isinstance(result, (list, dict)):
        return bool(result)
    return bool(result)


def flat_text(result) -> str:
    """Return everything a read returned as one string, to look for names and notes in it."""
    if isinstance(result, pd.DataFrame):
        return result.to_csv()
    if isinstance(result, (tuple, list)):
        return "\n".join(flat_text(part) for part in result)
    if isinstance(result, dict):
        return "\n".join(f"{k}={flat_text(v)}" for k, v in result.items())
    return str(result)


# -- the matrix -------------------------------------------------------------------------------------------------------


def test_the_permission_table_covers_every_checked_function_of_db():
    checked, unchecked = set(), set()
    for module_name, module in MODULES.items():
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or function.__module__ != module.__name__:
                continue
            parameters = inspect.signature(function).parameters
            if "actor" in parameters and parameters["actor"].kind is inspect.Parameter.KEYWORD_ONLY:
                checked.add(f"{module_name}.{name}")
            elif "session" in parameters:
                unchecked.add(f"{module_name}.{name}")
    assert checked == set(EXPECTED) == set(CALLS)
    assert unchecked == UNCHECKED_HELPERS


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_call_exactly_the_functions_its_permissions_allow(clinic, role, name):
    actor, call = clinic.actors[role], CALLS[name]
    if role in EXPECTED[name]:
        with Session(clinic.engine) as session:  # closed without commit: allowed writes are rolled back
            audited = audit_rows(session)
            result = call(session, actor, clinic)
            if name in WRITES:
                assert audit_rows(session) > audited, f"{name} wrote no audit row"
            else:
                assert has_data(result), f"{name} gave {role} nothing"
        return
    before = fingerprint(clinic.engine)
    with Session(clinic.engine) as session:
        with pytest.raises(AccessDenied):
            call(session, actor, clinic)
        # The refusal comes before any change: even committing the unit of work afterwards stores nothing.
        assert not (session.new or session.dirty or session.deleted)
        session.commit()
    assert fingerprint(clinic.engine) == before


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("actor", [None, Actor(id=None, username="someone", role="nobody")], ids=["none", "nobody"])
def test_no_actor_and_an_actor_without_a_known_role_are_refused_everywhere(clinic, actor, name):
    with Session(clinic.engine) as session, pytest.raises(AccessDenied):
        CALLS[name](session, actor, clinic)


@pytest.mark.parametrize("name", sorted(n for n, roles in EXPECTED.items() if MANAGER in roles and n not in WRITES))
def test_a_manager_never_reads_a_name_or_a_note(clinic, name):
    with Session(clinic.engine) as session:
        returned = flat_text(CALLS[name](session, clinic.actors[MANAGER], clinic))
    for secret in (NAME_A, NAME_B, NOTE_A, NOTE_B, "note-secret"):
        assert secret not in returned, f"{name} showed a manager {secret!r}"


def test_clinicians_see_names_in_the_patient_list_and_managers_see_pseudonymous_ids(clinic):
    with Session(clinic.engine) as session:
        seen_by_clinician = patient_search.patients(session, actor=clinic.actors[CLINICIAN])
        seen_by_manager = patient_search.patients(session, actor=clinic.actors[MANAGER])
    assert list(seen_by_clinician["label"][:2]) == [f"PA — {NAME_A}", f"PB — {NAME_B}"]
    assert list(seen_by_manager["label"]) == ["PA", "PB", "PC"]
    assert seen_by_manager["name"].isna().all()


def test_a_patient_without_a_name_is_labelled_by_their_id_alone_beside_named_ones(clinic):
    with Session(clinic.engine) as session:
        labels = patient_search.patients(session, actor=clinic.actors[CLINICIAN]).set_index("patient_id")["label"]
    assert labels["PC"] == "PC"


def test_a_patient_reads_their_own_sessions_without_notes_and_nothing_of_anyone_else(clinic):
    with Session(clinic.engine) as session:
        own = queries.patient_sessions(session, actor=clinic.actors[PATIENT], patient_id=clinic.patient_a)
        episodes = queries.episodes(session, actor=clinic.actors[PATIENT], patient_id=clinic.patient_a)
        other = queries.patient_sessions(session, actor=clinic.actors[OTHER_PATIENT], patient_id=clinic.patient_b)
    assert sorted(own["session_id"]) == sorted(clinic.sessions_a)
    assert set(own["patient_id"]) == {"PA"}
    assert set(own["notes"]) == {""}
    assert list(episodes["sessions"]) == [3]
    assert sorted(other["session_id"]) == sorted(clinic.sessions_b)  # the deleted one is in no one's record
    assert NOTE_B not in flat_text(other)


# -- a patient asking for someone else's record through every parameter ---------------------------------------------

MISSING = 10**9


def _by_patient_id(function):
    return lambda target: lambda s, a, c: function(s, actor=a, patient_id=target(c))


def _by_session_id(call):
    return lambda target: lambda s, a, c: call(s, a, target(c))


# Each takes a way of choosing the id asked for and returns the call.
BY_ID: dict[str, Callable] = {
    "queries.episodes(patient_id)": _by_patient_id(queries.episodes),
    "queries.patient_sessions(patient_id)": _by_patient_id(queries.patient_sessions),
    "queries.patient_side_effects(patient_id)": _by_patient_id(queries.patient_side_effects),
    "queries.last_session_defaults(patient_id)": _by_patient_id(queries.last_session_defaults),
    "stricta_queries.session_needling(session_id)": _by_session_id(
        lambda s, a, i: stricta_queries.session_needling(s, actor=a, session_id=i)),
    "corrections.session_history(session_id)": _by_session_id(
        lambda s, a, i: corrections.session_history(s, actor=a, session_id=i)),
    "corrections.correct_session(session_id)": _by_session_id(
        lambda s, a, i: corrections.correct_session(s, actor=a, session_id=i, entry=session_input(patient_id="PB"))),
    "corrections.delete_session(session_id)": _by_session_id(
        lambda s, a, i: corrections.delete_session(s, actor=a, session_id=i, reason="mine")),
    "corrections.restore_session(session_id)": _by_session_id(
        lambda s, a, i: corrections.restore_session(s, actor=a, session_id=i)),
    "audit.events(entity_id)": _by_session_id(
        lambda s, a, i: audit.events(s, actor=a, entity="session", entity_id=i)),
}
TARGETS: dict[str, Callable[[Clinic], object]] = {
    "patient_id of the other patient": lambda c: c.patient_b,
    "a patient_id that does not exist": lambda c: MISSING,
    "no patient_id": lambda c: None,
}
SESSION_TARGETS: dict[str, Callable[[Clinic], object]] = {
    "a session of the other patient": lambda c: c.sessions_b[0],
    "the other patient's deleted session": lambda c: c.deleted_b,
    "a session that does not exist": lambda c: MISSING,
}


ID_CASES = [
    (name, target)
    for name in BY_ID
    for target in (TARGETS if name.endswith("(patient_id)") else SESSION_TARGETS)
]


@pytest.mark.parametrize(("name", "target"), ID_CASES)
def test_a_patient_asking_for_another_patients_data_through_any_parameter_is_refused(clinic, name, target):
    call = BY_ID[name]((TARGETS | SESSION_TARGETS)[target])
    before = fingerprint(clinic.engine)
    with Session(clinic.engine) as session:
        with pytest.raises(AccessDenied):
            call(session, clinic.actors[PATIENT], clinic)
        session.commit()
    assert fingerprint(clinic.engine) == before


@pytest.mark.parametrize(
    "name",
    ["record_session for the other patient", "import_sessions for the other patient",
     "add_user linked to the other patient", "set_active on the other patient", "reset_password of the other patient",
     "mark_reviewed of the other patient's side effect"],
)
def test_a_patient_cannot_write_to_another_patients_record_or_account(clinic, name):
    entry = session_input(patient_id="PB", session_date="2025-02-24", pain_before=10)
    calls = {
        "record_session for the other patient": lambda s, a: writes.record_session(s, actor=a, entry=entry),
        "import_sessions for the other patient": lambda s, a: importing.import_sessions(s, actor=a, entries=[entry]),
        "add_user linked to the other patient": lambda s, a: accounts.add_user(
            s, actor=a, username="pat_b2", role="patient", password="long enough password", patient_pseudonym="PB"),
        "set_active on the other patient": lambda s, a: accounts.set_active(s, actor=a, username="pat_b", active=False),
        "reset_password of the other patient": lambda s, a: accounts.reset_password(
            s, actor=a, username="pat_b", password="long enough password"),
        "mark_reviewed of the other patient's side effect": lambda s, a: writes.mark_reviewed(
            s, actor=a, side_effect_id=clinic.serious_effect_a),
    }
    before = fingerprint(clinic.engine)
    for role in (PATIENT, OTHER_PATIENT):
        with Session(clinic.engine) as session:
            with pytest.raises(AccessDenied):
                calls[name](session, clinic.actors[role])
            session.commit()
    assert fingerprint(clinic.engine) == before


def test_a_patient_account_without_a_linked_record_reads_no_record_at_all(clinic):
    unlinked = Actor(id=None, username="pat_none", role="patient", patient_id=None)
    with Session(clinic.engine) as session:
        for patient_id in (None, clinic.patient_a, clinic.patient_b):
            for read in (queries.episodes, queries.patient_sessions, queries.patient_side_effects):
                with pytest.raises(AccessDenied):
                    read(session, actor=unlinked, patient_id=patient_id)
