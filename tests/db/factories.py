"""Test data built through the production write path: validate_session, record_session, import_sessions."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, create_engine, func, inspect, select, table, text
from sqlmodel import Session

from db import file_validation, import_result, importing, interchange, spreadsheets
from db.access import Actor
from db.engine import make_engine, write_session
from db.episodes import Answer
from db.models import Episode, Patient, SideEffect, TreatmentSession
from db.validation import SessionInput, validate_session
from db.writes import record_session

ADMIN = Actor(id=None, username="test-admin", role="admin")  # acts for tests that are not about access

SAMPLE_FILE = Path(__file__).resolve().parents[2] / "sample_data" / "sessions.csv"
TODAY = date(2025, 12, 31)  # injected "today" so the not-in-the-future rule never depends on the clock
CLINICAL_TABLES = ("patients", "episodes", "users", "sessions", "side_effects")
# The clinician's answer to a session dated before the first of episode 1: the date is right, it is the new first.
DATE_IS_RIGHT = Answer(1, start_new=False)


def session_input(**fields) -> SessionInput:
    """Return a validated session: a deep-needling VAS session of patient P1, with `fields` overriding."""
    data = {"patient_id": "P1", "session_date": "2025-01-10", "technique": "deep", "pain_before": 60,
            "today": TODAY} | fields
    return validate_session(data)


def record(engine: Engine, answer: Answer | None = None, **fields) -> dict:
    """Record one session through validate_session and record_session in its own unit of work; return its columns.
    `answer` answers the question the session may raise (DATE_IS_RIGHT: one dated before its episode's first)."""
    entry = session_input(**fields)
    with write_session(engine) as session:
        row = record_session(session, actor=ADMIN, entry=entry, answer=answer)
        return row.model_dump()


def import_frame(engine: Engine, table: pd.DataFrame) -> import_result.ImportResult:
    """Import interchange rows (text cells) the way the CLI does: validate every row, then write them all."""
    entries = file_validation.validate_rows(table)
    with write_session(engine) as session:
        return importing.import_sessions(session, actor=ADMIN, entries=entries)


def import_file(engine: Engine, path: Path) -> import_result.ImportResult:
    """Import an interchange file (.csv or .xlsx) the way the CLI does."""
    return import_frame(engine, spreadsheets.read_table(path))


def interchange_rows(*rows: dict) -> pd.DataFrame:
    """Return interchange rows as read from a file: every contract column present, every cell text."""
    frame = pd.DataFrame([{k: str(v) for k, v in row.items()} for row in rows])
    for column in interchange.COLUMNS:
        if column not in frame:
            frame[column] = ""
    return frame[interchange.COLUMNS + [c for c in frame.columns if c not in interchange.COLUMNS]].fillna("")


def table_counts(engine: Engine, tables: tuple[str, ...] | None = None) -> dict[str, int]:
    """Return the number of rows in each of `tables`, by default every table of the schema."""
    names = tables or tuple(sorted(set(inspect(engine).get_table_names()) - {"alembic_version"}))
    with engine.connect() as connection:
        return {name: connection.execute(select(func.count()).select_from(table(name))).scalar_one() for name in names}


def clinical_counts(engine: Engine) -> dict[str, int]:
    """Return the number of rows in the tables that hold clinical data and the accounts an import creates."""
    return table_counts(engine, CLINICAL_TABLES)


def tables_with_rows(engine: Engine) -> dict[str, int]:
    """Return the tables that hold any row, with their counts (empty for a database holding nothing)."""
    return {name: n for name, n in table_counts(engine).items() if n}


def stored_sessions(engine: Engine) -> pd.DataFrame:
    """Return every stored session with its patient id and side effects, read straight from the tables."""
    stmt = (
        select(Patient.pseudonym.label("patient_id"), Episode.condition, TreatmentSession)
        .join(Episode, Episode.patient_id == Patient.id)
        .join(TreatmentSession, TreatmentSession.episode_id == Episode.id)
        .order_by(Patient.pseudonym, Episode.id, TreatmentSession.session_number)
    )
    with Session(engine) as session:
        rows = [
            {"patient_id": r.patient_id, "condition": r.condition, **r.TreatmentSession.model_dump()}
            for r in session.execute(stmt)
        ]
        effects = session.execute(select(SideEffect.session_id, SideEffect.code, SideEffect.severity)).all()
    frame = pd.DataFrame(rows)
    by_session: dict[int, set] = {}
    for session_id, code, severity in effects:
        by_session.setdefault(session_id, set()).add((code, severity))
    if not frame.empty:
        frame["side_effects"] = frame["id"].map(lambda i: by_session.get(i, set()))
    return frame


def _copy_sqlite_template(template: Path, directory: Path) -> str:
    path = directory / f"{uuid.uuid4().hex[:8]}.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


def new_postgres_database(server, name: str) -> str:
    """Create database `name` on the test server, empty (dropping one of that name first); return its URL."""
    admin = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server.url(name)


@contextmanager
def postgres_copy(server, template: str) -> Iterator[str]:
    """Yield the URL of a new database on the test server copied from database `template`, dropped afterwards.

    Dropped WITH (FORCE): an engine the test left open (the app's cached one) may still hold connections.
    """
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    try:
        yield server.url(name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def another_database(request, backend: str, directory: Path) -> Iterator[str]:
    """Yield the URL of one more fresh, migrated database on `backend`, built like conftest's `database_url`.

    For tests that need two databases at once (an export imported into a fresh one), or one database shared by a
    module's read-only tests.
    """
    if backend == "sqlite":
        yield _copy_sqlite_template(request.getfixturevalue("sqlite_template"), directory)
        return
    server = request.getfixturevalue("postgres_server")
    with postgres_copy(server, request.getfixturevalue("postgres_template")) as url:
        yield url


@contextmanager
def engine_on(url: str) -> Iterator[Engine]:
    """Yield an engine on `url`, disposed afterwards."""
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
