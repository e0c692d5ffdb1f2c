"""Migration 0012 numbers the existing episodes of care and dates their start, on both backends, and goes back."""

from __future__ import annotations

from datetime import date

from alembic import command
from sqlalchemy import text

from db.engine import alembic_config, make_engine

# (episode id, patient id, condition): patient 1 has two neck-pain episodes and two without a condition.
EPISODES = [(1, 1, "neck_pain"), (2, 1, None), (3, 1, "neck_pain"), (4, 1, None), (5, 2, "neck_pain"),
            (6, 2, "headache")]
SESSIONS = [  # (id, episode, number, date, deleted)
    (1, 1, 1, "2025-03-01", False),
    (2, 1, 2, "2025-02-20", True),  # deleted: the start is that of the live sessions
    (3, 2, 1, "2025-04-02", False),
    (4, 3, 1, "2025-09-15", False),
    (5, 4, 1, "2025-05-05", True),  # only a deleted session: its date
    (6, 5, 1, "2025-06-01", False),
]  # episode 6 has no session at all: the day the row was made


def _at(url: str, revision: str, down: bool = False) -> None:
    engine = make_engine(url, foreign_keys=False)
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
    engine.dispose()


def test_existing_episodes_are_numbered_per_patient_and_condition_in_id_order_and_dated_by_their_first_session(
        database_url):
    _at(database_url, "0011", down=True)
    engine = make_engine(database_url, foreign_keys=False)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO patients (id, pseudonym, created_at) VALUES "
                                "(1, 'P1', '2025-01-01 10:00:00'), (2, 'P2', '2025-01-01 10:00:00')"))
        for episode, patient, condition in EPISODES:
            connection.execute(text("INSERT INTO episodes (id, patient_id, condition, created_at) VALUES "
                                    "(:e, :p, :c, '2025-07-08 10:00:00')"),
                               {"e": episode, "p": patient, "c": condition})
        for session_id, episode, number, day, deleted in SESSIONS:
            connection.execute(text(
                "INSERT INTO sessions (id, episode_id, session_number, session_date, technique, muscles, pain_scale,"
                " pain_before, notes, created_at, deleted_at) VALUES (:i, :e, :n, :d, 'deep', '', 'vas_100', 50, '',"
                " '2025-01-01 10:00:00', :x)"),
                {"i": session_id, "e": episode, "n": number, "d": day, "x": "2025-12-01 10:00:00" if deleted else None})
    engine.dispose()

    _at(database_url, "head")

    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT id, number, started_on, discharged_on, status, goal FROM episodes ORDER BY id")).all()
    engine.dispose()
    as_dates = [(i, n, s if isinstance(s, date) else date.fromisoformat(s), d, st, g) for i, n, s, d, st, g in rows]
    assert as_dates == [
        (1, 1, date(2025, 3, 1), None, None, None),
        (2, 1, date(2025, 4, 2), None, None, None),
        (3, 2, date(2025, 9, 15), None, None, None),
        (4, 2, date(2025, 5, 5), None, None, None),
        (5, 1, date(2025, 6, 1), None, None, None),
        (6, 1, date(2025, 7, 8), None, None, None),
    ]

    _at(database_url, "0011", down=True)  # and back: every episode kept, without the new columns
    engine = make_engine(database_url, foreign_keys=False)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM episodes")).scalar_one() == len(EPISODES)
        assert connection.execute(text("SELECT count(*) FROM sessions")).scalar_one() == len(SESSIONS)
    engine.dispose()
    _at(database_url, "head")
