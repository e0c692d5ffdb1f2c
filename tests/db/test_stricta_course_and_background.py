"""STRICTA items 3 and 5 (issue #16): an episode's planned course and a clinician's needling background, each
validated naming its field, written by whom may write it, and audited before and after."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlmodel import Session

from db import accounts, episodes
from db.access import AccessDenied, Actor
from db.engine import write_session
from db.models import AuditEvent, Episode, User
from db.validation import InvalidInput
from tests.db.factories import ADMIN, record


def _episode_id(engine) -> int:
    record(engine)
    with Session(engine) as session:
        return session.scalars(select(Episode.id)).one()


def _audited(engine, entity: str, action: str = "update") -> list[tuple[dict, dict, str]]:
    with Session(engine) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.entity == entity, AuditEvent.action == action)
                               .order_by(AuditEvent.id)).all()
        return [(json.loads(row.before), json.loads(row.after), row.detail) for row in rows]


def test_a_planned_course_is_recorded_audited_listed_and_cleared(engine):
    episode_id = _episode_id(engine)
    with write_session(engine) as session:
        episodes.plan_course(session, actor=ADMIN, episode_id=episode_id, planned_sessions=6.0, planned_per_week=1.5)
    with write_session(engine) as session:  # the same again: nothing to audit
        episodes.plan_course(session, actor=ADMIN, episode_id=episode_id, planned_sessions=6, planned_per_week=1.5)
    with Session(engine) as session:
        listed = episodes.patient_episodes(session, actor=ADMIN, patient_id=1)
    assert listed[["planned_sessions", "planned_per_week"]].values.tolist() == [[6, 1.5]]
    with write_session(engine) as session:
        episodes.plan_course(session, actor=ADMIN, episode_id=episode_id, planned_sessions=None,
                             planned_per_week=None)
    assert _audited(engine, "episode") == [
        ({"planned_sessions": None, "planned_per_week": None}, {"planned_sessions": 6, "planned_per_week": 1.5},
         "course planned"),
        ({"planned_sessions": 6, "planned_per_week": 1.5}, {"planned_sessions": None, "planned_per_week": None},
         "course planned")]


@pytest.mark.parametrize(("sessions", "per_week", "words"), [
    (51, 1, "Planned sessions: 51 is outside 1–50"), (2.5, 1, "Planned sessions: 2.5 is not a whole number"),
    (6, 0.2, "Planned frequency: 0.2 is outside 0.25–7"), (6, 8, "Planned frequency: 8 is outside 0.25–7"),
])
def test_a_planned_course_out_of_range_is_refused_naming_the_field_and_nothing_is_written(engine, sessions, per_week,
                                                                                          words):
    episode_id = _episode_id(engine)
    with pytest.raises(InvalidInput) as refused, write_session(engine) as session:
        episodes.plan_course(session, actor=ADMIN, episode_id=episode_id, planned_sessions=sessions,
                             planned_per_week=per_week)
    assert str(refused.value) == words
    assert _audited(engine, "episode") == []


def test_a_manager_may_not_plan_a_course(engine):
    episode_id = _episode_id(engine)
    with pytest.raises(AccessDenied), write_session(engine) as session:
        episodes.plan_course(session, actor=Actor(None, "boss", "manager"), episode_id=episode_id,
                             planned_sessions=6, planned_per_week=1)


def _clinician(engine, name: str = "clin_a") -> Actor:
    record(engine, clinician=name)
    with Session(engine) as session:
        user = session.scalars(select(User).where(User.username == name)).one()
        return Actor(user.id, user.username, "clinician")


def test_a_clinician_records_their_own_needling_background_audited(engine):
    clinician = _clinician(engine)
    with write_session(engine) as session:
        accounts.set_needling_background(session, actor=clinician, username="clin_a",
                                         training="  Dry needling level 2 (2019)  ", years=7)
    with Session(engine) as session:
        user = session.scalars(select(User).where(User.username == "clin_a")).one()
        assert (user.needling_training, user.years_practice) == ("Dry needling level 2 (2019)", 7)
    with Session(engine) as session:  # the accounts page shows it
        listed = accounts.users(session, actor=ADMIN).set_index("username")
    assert listed.loc["clin_a", ["needling_training", "years_practice"]].tolist() == ["Dry needling level 2 (2019)", 7]
    [(before, after, detail)] = [row for row in _audited(engine, "user") if row[2] == "needling background"]
    assert before == {"needling_training": None, "years_practice": None}
    assert after == {"needling_training": "Dry needling level 2 (2019)", "years_practice": 7}


def test_only_an_admin_records_another_account_s_background_and_values_are_checked(engine):
    _clinician(engine, "clin_a")
    other = _clinician(engine, "clin_b")
    with pytest.raises(AccessDenied), write_session(engine) as session:
        accounts.set_needling_background(session, actor=other, username="clin_a", training="x", years=1)
    with write_session(engine) as session:
        accounts.set_needling_background(session, actor=ADMIN, username="clin_a", training="course", years=0)
    for training, years, words in (("x", 61, "Years of needling practice: 61 is outside 0–60"),
                                   ("x" * 501, 3, "Needling training: is 501 characters long; at most 500"),
                                   ("a\x00b", 3, "Needling training: holds a NUL character")):
        with pytest.raises(InvalidInput) as refused, write_session(engine) as session:
            accounts.set_needling_background(session, actor=ADMIN, username="clin_a", training=training,
                                             years=years)
        assert str(refused.value).startswith(words)
