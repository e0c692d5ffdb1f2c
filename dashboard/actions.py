"""Every write a page makes, each one transaction through `db`, then the cached reads forgotten where data changed.

With `dashboard.resources` (every read) this is the page-data layer: views and widgets open no database session
and call no `db` function themselves. Authorisation stays in `db`: each function passes the acting user on.
Exports write too: each file handed over is audited when it is built, so they are here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date
from typing import BinaryIO

import pandas as pd
from sqlmodel import Session

from dashboard import report, resources
from db import (
    accounts,
    audit,
    corrections,
    episodes,
    exporting,
    fhir,
    file_validation,
    importing,
    report_exchange,
    report_files,
    spreadsheets,
    validation,
    writes,
)
from db.access import Actor
from db.audit import AuditFilter
from db.engine import write_session
from db.import_result import ImportResult
from db.models import Episode
from db.validation import SessionInput

# Sign-in -------------------------------------------------------------------------------------------------------------


def log_in(username: str, password: str) -> Actor:
    """Return the actor for a correct username and password, or raise LoginRefused; every attempt is audited."""
    return accounts.login(resources.engine(), username, password)


def log_in_by_email(email: str) -> Actor | None:
    """Return the actor of the active account with this provider-verified e-mail (audited), or None."""
    with write_session(resources.engine()) as session:
        return accounts.actor_by_email(session, email, email_verified=True)


def log_out(actor: Actor) -> None:
    """End every session of the actor's account, in this browser and any other; audited."""
    with write_session(resources.engine()) as session:
        accounts.log_out(session, actor=actor)


def record_logout(actor: Actor, reason: str) -> None:
    """Audit that the app logged the actor out itself (an idle timeout, a disabled account), saying why."""
    with write_session(resources.engine()) as session:
        audit.record(session, actor, "logout", "user", actor.id, detail=reason)


# Sessions ------------------------------------------------------------------------------------------------------------


def check_session(data: dict) -> SessionInput:
    """Return a session form's values as a checked entry, or raise InvalidInput naming every problem."""
    return validation.validate_session(data)


def record_session(actor: Actor, entry: SessionInput, patient_name: str | None,
                   answer: episodes.Answer | None = None, *, new_patient: bool = False) -> tuple[int, int]:
    """Store a checked session (for a `new_patient`, with `patient_name`); return its episode's number and its own.
    Raises EpisodeUndecided, saving nothing, when it may start a new episode of care and `answer` does not say
    whether it does; InvalidInput when a new patient's id is a stored patient's."""
    with write_session(resources.engine()) as session:
        row = writes.record_session(session, actor=actor, entry=entry, patient_name=patient_name, answer=answer,
                                    gap_days=resources.episode_gap_days(), new_patient=new_patient)
        number, episode = row.session_number, session.get(Episode, row.episode_id).number
    resources.clear_after_write()
    return episode, number


def start_episode(actor: Actor, patient_id: int, **fields) -> int:
    """Start a patient's next episode of care (condition, body_region, goal, started_on); return its number.

    Raises InvalidInput naming each field refused."""
    with write_session(resources.engine()) as session:
        number = episodes.start_episode(session, actor=actor, patient_id=patient_id, **fields).number
    resources.clear_after_write()
    return number


def discharge_episode(actor: Actor, episode_id: int, status: str, discharged_on: date) -> None:
    """Discharge an open episode of care with a status and a date; InvalidInput naming what is refused."""
    with write_session(resources.engine()) as session:
        episodes.discharge_episode(session, actor=actor, episode_id=episode_id, status=status,
                                   discharged_on=discharged_on)
    resources.clear_after_write()


def correct_session(actor: Actor, session_id: int, entry: SessionInput,
                    answer: episodes.Answer | None = None) -> tuple[int, bool]:
    """Replace a session's values with a checked entry (audited); return its number, which a new date can change,
    and whether any audited value changed (none: nothing was audited either). A date before the episode's first
    session raises EpisodeUndecided until `answer` says it is right."""
    with write_session(resources.engine()) as session:
        corrected, changed = corrections.correct_session(session, actor=actor, session_id=session_id, entry=entry,
                                                         answer=answer)
        session.flush()
        session.refresh(corrected)  # renumbered by date in the same transaction
        number = corrected.session_number
    resources.clear_after_write()
    return number, changed


def delete_session(actor: Actor, session_id: int, reason: str) -> None:
    """Delete a session with a reason (ValueError without one): it leaves every figure until an admin restores it."""
    with write_session(resources.engine()) as session:
        corrections.delete_session(session, actor=actor, session_id=session_id, reason=reason)
    resources.clear_after_write()


def restore_session(actor: Actor, session_id: int) -> None:
    """Bring a deleted session back to every chart and figure (admins)."""
    with write_session(resources.engine()) as session:
        corrections.restore_session(session, actor=actor, session_id=session_id)
    resources.clear_after_write()


def mark_reviewed(actor: Actor, side_effect_id: int) -> None:
    """Mark a significant or serious side effect as reviewed, so it leaves the alerts (managers, admins)."""
    with write_session(resources.engine()) as session:
        writes.mark_reviewed(session, actor=actor, side_effect_id=side_effect_id)
    resources.clear_after_write()


# Accounts (admins; each raises ValueError naming what it refuses) ----------------------------------------------------


def _change_account(change: Callable[..., object], **values) -> None:
    with write_session(resources.engine()) as session:
        change(session, **values)
    resources.clear_after_write()


def add_account(actor: Actor, **fields) -> None:
    """Add an account: username, role, password, display_name, email, patient_pseudonym (see db.accounts)."""
    _change_account(accounts.add_user, actor=actor, **fields)


def set_account_active(actor: Actor, username: str, active: bool) -> None:
    """Disable an account (its sessions end everywhere) or enable it again."""
    _change_account(accounts.set_active, actor=actor, username=username, active=active)


def set_account_role(actor: Actor, username: str, role: str) -> None:
    """Give a staff account another staff role (its sessions end everywhere)."""
    _change_account(accounts.set_role, actor=actor, username=username, role=role)


def reset_account_password(actor: Actor, username: str, password: str) -> None:
    """Set a new password and lift any lock (its sessions end everywhere)."""
    _change_account(accounts.reset_password, actor=actor, username=username, password=password)


# Import --------------------------------------------------------------------------------------------------------------


def read_import_file(upload: BinaryIO, name: str) -> pd.DataFrame:
    """Return an uploaded CSV or Excel file as text cells, or raise ImportRefused naming what is unreadable."""
    return spreadsheets.read_table(upload, name=name)


def report_sheets(upload: BinaryIO, name: str) -> list[str]:
    """Return the patient-report sheets (`diary`, `pgic`, `psfs`) of an uploaded workbook (read already), which
    the Import page leaves to `python -m db import`."""
    if not name.lower().endswith(".xlsx"):
        return []
    import openpyxl

    upload.seek(0)
    sheets = openpyxl.load_workbook(upload, read_only=True).sheetnames
    upload.seek(0)
    return [kind for kind in report_exchange.KINDS if kind in sheets]


def check_import_rows(table: pd.DataFrame, on_progress: Callable[[int, int], None]) -> Sequence[SessionInput]:
    """Return every row checked, or raise ImportRefused listing every bad cell; `on_progress(done, total)`."""
    return file_validation.validate_rows(table, on_progress=on_progress)


def preview_import(actor: Actor, entries: Sequence[SessionInput], take_file_values: Collection[int]) -> ImportResult:
    """Return what importing the checked rows would do, value by value; nothing is written."""
    with Session(resources.engine()) as session:
        return importing.plan_import(session, actor=actor, entries=entries, take_file_values=set(take_file_values),
                                     gap_days=resources.episode_gap_days())


def import_sessions(actor: Actor, entries: Sequence[SessionInput], source: str,
                    take_file_values: Collection[int]) -> ImportResult:
    """Import the checked rows, all or none (ImportRefused when the accounts changed since the preview)."""
    with write_session(resources.engine()) as session:
        result = importing.import_sessions(session, actor=actor, entries=entries, source=source,
                                           take_file_values=set(take_file_values),
                                           gap_days=resources.episode_gap_days())
    resources.clear_after_write()
    return result


def problems_csv(problems: pd.DataFrame) -> bytes:
    """Return a refused file's problem table as CSV, for the user to correct the file by."""
    return spreadsheets.table_bytes(problems, ".csv")


# Exports: each builds its file when its button is clicked, audited then ------------------------------------------


def export_sessions(actor: Actor, suffix: str) -> Callable[[], bytes]:
    """Return a function building every session as `.csv`, `.xlsx` or a FHIR `.json` Bundle (audited)."""

    def build() -> bytes:
        with write_session(resources.engine()) as session:
            if suffix == ".json":
                return fhir.bundle_bytes(fhir.export_bundle(session, actor=actor))
            if suffix == ".xlsx":  # the sessions, then the patient reports' sheets, as `python -m db export` writes
                return report_files.workbook_bytes(report_files.export_sheets(session, actor=actor))
            table = exporting.export_table(session, actor=actor, purpose="CSV")
        return spreadsheets.table_bytes(table, suffix)

    return build


def export_audit_rows(actor: Actor, where: AuditFilter, limit: int) -> Callable[[], bytes]:
    """Return a function building the filtered audit rows as CSV (the export audited itself; admins)."""

    def build() -> bytes:
        with write_session(resources.engine()) as session:
            return audit.export_csv(session, actor=actor, where=where, limit=limit).encode("utf-8")

    return build


def gp_report(kind: str, improvement: pd.DataFrame, side_effects: pd.DataFrame, *, actor: Actor, patient: int,
              patient_id: str, condition: str | None) -> Callable[[], str | bytes]:
    """Return a function building the GP report ("html" or "pdf") of one course, audited as an export first.

    The report leaves the app with a patient's health data, so each one built is an export in the audit trail
    (the patient's record, the format, the course), written before the file is handed over: no file without its
    row. `patient` is the patient's record id, `patient_id` their pseudonymous id.
    """
    if kind not in ("html", "pdf"):
        raise ValueError(f"GP report: kind must be html or pdf, not {kind!r}")

    def build_and_audit() -> str | bytes:
        if kind == "pdf":  # fpdf2 is imported only when a PDF is asked for (dashboard.pdf_report)
            from dashboard.pdf_report import report_pdf as build
        else:
            build = report.report_html
        document = build(improvement, side_effects, patient_id=patient_id, condition=condition)
        course = (condition or "unspecified condition").replace("_", " ")
        with write_session(resources.engine()) as session:
            audit.record(session, actor, "export", "patient", patient,
                         detail=f"GP report ({kind.upper()}): {course}, {len(improvement)} sessions")
        return document

    return build_and_audit
