"""`python -m db seed`: the sample data (sample_data/) and the demo accounts, loaded into an empty database.

Imports what it needs when it runs, as db/cli.py does: the command line's `--help` loads no database library.
"""

from __future__ import annotations

from pathlib import Path

from db.access import Actor
from db.reasons import CommandFailed

SAMPLE_FILE = Path(__file__).resolve().parent.parent / "sample_data" / "sessions.csv"
# What the sample's patients report (issue #17), in the files of docs/DESIGN.md section 5; `seed` loads them too.
SAMPLE_REPORTS = {kind: SAMPLE_FILE.with_name(f"{kind}.csv") for kind in ("diary", "pgic", "psfs")}
# Demo accounts made by `seed` for the sample data only; the README lists them as demo-only.
DEMO_ACCOUNTS = (
    ("admin", "admin", "demo-admin-password", None),
    ("manager", "manager", "demo-manager-password", None),
    ("clin_ahmed", "clinician", "demo-clinician-password", None),
    ("patient", "patient", "demo-patient-password", "P0002"),
)


def seed(url: str, actor: Actor, *, if_empty: bool = False) -> str:
    """Load the sample sessions, their patient reports and the demo accounts into an empty database, in one
    transaction (`if_empty`: a database with sessions is left alone, else refused); return the line to print."""
    from sqlmodel import Session

    from db import accounts, file_validation, importing, queries, spreadsheets
    from db.engine import make_engine, migrate, write_session

    migrate(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            existing = queries.count_sessions(session, actor=actor)
        if existing:
            if if_empty:
                return f"database already holds {existing} sessions; sample data not loaded"
            raise CommandFailed(f"database already holds {existing} sessions; seed loads only into an empty database")
        entries = file_validation.validate_rows(spreadsheets.read_table(SAMPLE_FILE))
        with write_session(engine) as session:
            result = importing.import_sessions(session, actor=actor, entries=entries, source=SAMPLE_FILE.name)
            for username, role, password, patient in DEMO_ACCOUNTS:
                if role == "clinician":  # the sample's clinician account exists already, without a password
                    accounts.reset_password(session, actor=actor, username=username, password=password)
                else:
                    accounts.add_user(session, actor=actor, username=username, role=role, password=password,
                                      patient_pseudonym=patient)
            reports = _seed_reports(session, actor)
    finally:
        engine.dispose()
    return (f"loaded {result.inserted} sample sessions, {reports.summary()} and {len(DEMO_ACCOUNTS)} demo accounts "
            "(see README)")


def _seed_reports(session, actor: Actor):
    """Import the sample patient reports (sample_data/diary.csv, pgic.csv, psfs.csv: sample_data/diaries.py) in the
    caller's transaction, through the patient-report import (db.report_import); return its result."""
    from db import report_exchange, report_import, spreadsheets

    rows = {kind: report_exchange.validate(kind, spreadsheets.read_table(SAMPLE_REPORTS[kind]))
            for kind in report_exchange.KINDS}
    return report_import.import_reports(session, actor=actor, rows=rows, source="sample data")
