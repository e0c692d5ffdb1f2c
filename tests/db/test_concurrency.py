"""Concurrent clinicians (issue 6): eight writers saving at once lose nothing, on SQLite and on PostgreSQL.

Streamlit runs each browser session in a thread of one process, so the writers here are threads sharing one
engine, each saving through the production path (validate_session, record_session, write_session).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

import db.engine
from db.engine import WRITE_LOCK_KEY, DatabaseBusy, make_engine, write_session
from db.models import LIVE_SESSIONS, Episode, TreatmentSession
from db.writes import record_session
from tests.db.factories import ADMIN, DATE_IS_RIGHT, session_input

WRITERS = 8
DURATION_S = 10.0
SHARED_PATIENTS = 3  # every writer also saves for these, so writers collide on one episode and its numbering
FIRST_DAY = date(2025, 1, 1)


def live_sessions(engine) -> list[tuple[int, int, str]]:
    """Return (episode, session number, notes) of every live session."""
    with Session(engine) as session:
        return [tuple(row) for row in session.execute(
            select(TreatmentSession.episode_id, TreatmentSession.session_number, TreatmentSession.notes)
            .join(Episode, Episode.id == TreatmentSession.episode_id)
            .where(LIVE_SESSIONS)
        )]


def test_eight_clinicians_saving_at_once_for_ten_seconds_lose_no_committed_session(engine):
    committed: list[list[str]] = [[] for _ in range(WRITERS)]  # the note of every save whose commit returned
    retryable: Counter = Counter()
    failures: list[str] = []
    start = threading.Barrier(WRITERS)
    deadline = time.monotonic() + DURATION_S

    def clinician(writer: int) -> None:
        start.wait()
        save = 0
        while time.monotonic() < deadline:
            note = f"writer {writer} save {save}"
            # Every other save is for a patient all writers share; dates jump about, so some saves are back-dated
            # and renumber the episode while other writers append to it.
            patient = f"SHARED{save % SHARED_PATIENTS}" if save % 2 else f"W{writer}P{save % 5}"
            day = FIRST_DAY + timedelta(days=(save * 37 + writer * 11) % 330)
            entry = session_input(patient_id=patient, session_date=day.isoformat(), condition="neck_pain",
                                  notes=note, side_effects=[("soreness", "mild")] if save % 3 == 0 else [])
            try:
                with write_session(engine) as session:
                    # Dates span 330 days: each patient's saves are one course of care, never a new one; a save
                    # dated before the course's first is meant so.
                    record_session(session, actor=ADMIN, entry=entry, gap_days=330, answer=DATE_IS_RIGHT)
            except DatabaseBusy:  # the one error a save may report: nothing written, try again
                retryable[writer] += 1
            except Exception as error:  # noqa: BLE001  (any other error fails the test, with its message)
                failures.append(f"writer {writer}, {note}: {type(error).__name__}: {error}")
                return
            else:
                committed[writer].append(note)
            save += 1

    threads = [threading.Thread(target=clinician, args=(w,), name=f"clinician-{w}") for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION_S + 120)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"

    assert failures == [], "\n".join(failures[:5])
    assert not any("database is locked" in f for f in failures)
    saved = sorted(note for notes in committed for note in notes)
    assert len(saved) >= WRITERS * 5, f"only {len(saved)} saves committed in {DURATION_S} s ({dict(retryable)} busy)"
    stored = live_sessions(engine)
    assert len(stored) == len(saved)
    assert sorted(notes for _, _, notes in stored) == saved  # not one committed session lost, none made up
    numbers: dict[int, list[int]] = {}
    for episode, number, _ in stored:
        numbers.setdefault(episode, []).append(number)
    assert all(sorted(n) == list(range(1, len(n) + 1)) for n in numbers.values())  # 1, 2, 3… in every episode


def test_a_save_that_waits_too_long_for_another_writer_reports_busy_and_writes_nothing(
    database_url, backend, monkeypatch
):
    monkeypatch.setattr(db.engine, "SQLITE_BUSY_TIMEOUT_MS", 300)
    engine = make_engine(database_url)
    try:
        with holding_the_write_lock(database_url, backend):
            started = time.monotonic()
            with pytest.raises(DatabaseBusy, match="nothing was saved"), write_session(engine) as session:
                record_session(session, actor=ADMIN, entry=session_input(notes="waited"))
            assert time.monotonic() - started < 10
        assert live_sessions(engine) == []
        with write_session(engine) as session:  # once the other writer is done, trying again succeeds
            record_session(session, actor=ADMIN, entry=session_input(notes="again"))
        assert [notes for _, _, notes in live_sessions(engine)] == ["again"]
    finally:
        engine.dispose()


@contextmanager
def holding_the_write_lock(url: str, backend: str) -> Iterator[None]:
    """Hold the database's write lock from another connection while the block runs, as a long import would."""
    if backend == "sqlite":
        connection = sqlite3.connect(make_url(url).database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    other = create_engine(url)
    try:
        with other.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": WRITE_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": WRITE_LOCK_KEY})
    finally:
        other.dispose()
