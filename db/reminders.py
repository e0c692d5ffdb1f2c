"""Optional e-mail reminders of diary entries that are due (issue #17): `python -m db remind [--dry-run]`.

Never required: without SMTP settings the command says so and does nothing, and the patient's page shows what is
due whatever happens here. Settings (docs/DEPLOYMENT.md, "E-mail reminders"): the environment's SMTP_HOST,
SMTP_PORT, SMTP_SECURITY (starttls, ssl or none), SMTP_USERNAME, SMTP_PASSWORD, SMTP_FROM and APP_URL; or, when
SMTP_HOST is not set, the `[smtp]` section of `.streamlit/secrets.toml` (host, port, security, username, password,
from, app_url), as the app reads its other secrets.

Who gets one: an active patient account with an e-mail address, for each diary window of theirs that is open now
and not filled (`db.report_queries.due_entries`), once per session and window: each reminder sent is recorded in
the audit trail (action `export`, entity `reminder`: something sent out, which changes no figure), in the same
transaction that sends it, under the write lock, so running the
command again, or twice at once, sends nothing twice. The e-mail says only that a diary entry is open, for how long
(in hours from its sending, never a clock time: the app has no clinic time zone) and where to fill it in: no scores,
technique, condition or clinician.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from clinic.patient_reports import WINDOW_LABELS, hours_in_words
from db import audit, report_queries
from db.access import Actor, require_role
from db.models import AuditEvent, Patient, User
from db.reasons import CommandFailed

SECRETS_FILE = Path(".streamlit/secrets.toml")
SECURITY = {"starttls": 587, "ssl": 465, "none": 25}  # how the connection is protected -> its usual port
TIMEOUT_S = 20
# Recorded as an export (the clinic sends something out), so that no analysis counts it as a change of data.
ACTION, ENTITY = "export", "reminder"
SUBJECT = "A diary entry is due"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    sender: str
    username: str = ""
    password: str = ""
    app_url: str = ""


@dataclass(frozen=True)
class Reminder:
    """One e-mail: an account, its address and the (session id, window) entries it reminds of."""

    username: str
    email: str
    patient: str
    due: tuple[tuple[int, int, datetime], ...]  # session id, window (h), closes at


def smtp_settings(environ: Mapping[str, str] | None = None, secrets_file: Path | None = None) -> SmtpSettings | None:
    """Return the SMTP settings of the environment (SMTP_HOST set) or of the secrets file's [smtp] section, or
    None when neither gives a host. Raise ValueError naming the setting that is wrong."""
    environ = os.environ if environ is None else environ
    if environ.get("SMTP_HOST", "").strip():
        given = {name: environ.get(f"SMTP_{name.upper()}", "") for name in
                 ("host", "port", "security", "username", "password", "from")}
        given["app_url"], where = environ.get("APP_URL", ""), "SMTP_"
    else:
        path = SECRETS_FILE if secrets_file is None else secrets_file
        try:
            section = tomllib.loads(path.read_text(encoding="utf-8")).get("smtp") if path.is_file() else None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: cannot be read ({error})") from None
        if not section or not str(section.get("host", "")).strip():
            return None
        given, where = {k: str(v) for k, v in section.items()}, "[smtp] "
    security = given.get("security", "").strip().lower() or "starttls"
    if security not in SECURITY:
        raise ValueError(f"{where}security: '{security}' is not one of starttls, ssl, none")
    port = given.get("port", "").strip() or str(SECURITY[security])
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{where}port: '{port}' is not a port number")
    sender = given.get("from", "").strip()
    if "@" not in sender:
        raise ValueError(f"{where}from: the sender's address is needed (e.g. reminders@clinic.example)")
    return SmtpSettings(host=given["host"].strip(), port=int(port), security=security, sender=sender,
                        username=given.get("username", ""), password=given.get("password", ""),
                        app_url=given.get("app_url", "").strip())


def sent_keys(session: Session) -> set[tuple[int, int]]:
    """Return the (session id, window) of every reminder sent, from the audit trail."""
    rows = session.execute(select(AuditEvent.entity_id, AuditEvent.after)
                           .where(AuditEvent.action == ACTION, AuditEvent.entity == ENTITY))
    return {(entity_id, json.loads(after)["window_h"]) for entity_id, after in rows if after}


def due_reminders(session: Session, *, actor: Actor, now: datetime | None = None) -> list[Reminder]:
    """Return the reminders to send now: per active patient account with an e-mail, its diary windows open now and
    not filled, less those reminded of already."""
    require_role(actor, ("admin",), "send reminders")
    now = now or datetime.now(UTC)
    sent = sent_keys(session)
    accounts = session.execute(
        select(User.username, User.email, User.patient_id, Patient.pseudonym)
        .join(Patient, Patient.id == User.patient_id)
        .where(User.role == "patient", User.is_active, User.email.is_not(None)).order_by(User.username)).all()
    out = []
    for username, email, patient_id, pseudonym in accounts:
        due = report_queries.due_entries(session, actor=actor, patient_id=patient_id, now=now)
        due = due[(due["kind"] == "diary") & (due["status"] == "due")]
        keys = tuple((int(s), int(w), c) for s, w, c in zip(due["session_id"], due["window_h"], due["closes_at"],
                                                             strict=True) if (int(s), int(w)) not in sent)
        if keys and email.strip():
            out.append(Reminder(username, email.strip(), pseudonym, keys))
    return out


def message(reminder: Reminder, settings: SmtpSettings, now: datetime | None = None) -> EmailMessage:
    """Return the e-mail of a reminder, sent `now`: that an entry is open and for how long, and where to fill it in,
    nothing about the patient's health.

    How long is said from the sending time (clinic.patient_reports.hours_in_words), as the diary page says when an
    entry opens: the app has no clinic time zone, and a clock time in UTC is another day's to some patients. The Date
    header carries the sending time, which the patient's mail app shows in their own zone."""
    now = now or datetime.now(UTC)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = settings.sender, reminder.email, SUBJECT
    mail["Date"] = format_datetime(now)
    windows = "\n".join(f"- {WINDOW_LABELS[window]}, after your session: open now, and for "
                        f"{hours_in_words((closes - now).total_seconds() / 3600)} after this e-mail was sent"
                        for _, window, closes in reminder.due)
    where = f"Open {settings.app_url} and log in" if settings.app_url else "Log in to the clinic's app"
    mail.set_content(f"Hello,\n\nYour diary has an entry due:\n{windows}\n\n{where} to fill it in; it takes a "
                     "minute.\n\nYou get this e-mail because your clinic sends diary reminders. Ask your clinic to "
                     "stop them at any time.\n")
    return mail


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=TIMEOUT_S,
                                  context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_S)
        if settings.security == "starttls":
            client.starttls(context=ssl.create_default_context())
    if settings.username:
        client.login(settings.username, settings.password)
    return client


def _smtp_failure(settings: SmtpSettings, error: Exception, done: int, total: int) -> CommandFailed:
    what = getattr(error, "strerror", None) or (str(error).splitlines() or [type(error).__name__])[0]
    if isinstance(error, smtplib.SMTPAuthenticationError):
        what = "the SMTP server refused the username or password"
    sent = f"{done} of {total} sent and recorded; the rest are sent next time" if done else "nothing was sent"
    return CommandFailed(f"SMTP {settings.host}:{settings.port}: {what}; {sent}")


def run(url: str, *, actor: Actor, dry_run: bool = False, environ: Mapping[str, str] | None = None,
        secrets_file: Path | None = None, now: datetime | None = None) -> str:
    """Send the reminders due now (or, with `dry_run`, print whom they would go to); return one line saying what
    was done. Without SMTP settings nothing is sent (a dry run still lists them)."""
    from db.engine import make_engine, write_session

    try:
        settings = smtp_settings(environ, secrets_file)
    except ValueError as error:
        raise CommandFailed(f"e-mail reminders: {error}") from None
    if settings is None and not dry_run:
        return ("no SMTP settings (SMTP_HOST, or [smtp] in .streamlit/secrets.toml; see docs/DEPLOYMENT.md): "
                "no reminders sent")
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            reminders = due_reminders(session, actor=actor, now=now)
        if dry_run:
            for reminder in reminders:
                print(f"{reminder.username} <{reminder.email}>: " + ", ".join(
                    f"{window} h entry of session {session_id}" for session_id, window, _ in reminder.due))
            return f"dry run: {len(reminders)} reminder(s) due; none sent"
        if not reminders:
            return "no reminders due"
        sent = 0
        try:
            client = _connect(settings)
        except (OSError, smtplib.SMTPException) as error:
            raise _smtp_failure(settings, error, 0, len(reminders)) from None
        with client:
            for reminder in reminders:
                try:
                    with write_session(engine) as session:  # one at a time: recorded with the sending, or neither
                        fresh = sent_keys(session)
                        due = [d for d in reminder.due if (d[0], d[1]) not in fresh]
                        if not due:
                            continue
                        for session_id, window, _ in due:  # recorded first: a refused row sends nothing
                            audit.record(session, actor, ACTION, ENTITY, session_id, patient=reminder.patient,
                                         after={"window_h": window, "to": reminder.username},
                                         detail="e-mail reminder of a diary entry")
                        client.send_message(message(Reminder(reminder.username, reminder.email, reminder.patient,
                                                             tuple(due)), settings, now))
                    sent += 1
                except (OSError, smtplib.SMTPException) as error:
                    raise _smtp_failure(settings, error, sent, len(reminders)) from None
        return f"{sent} reminder(s) sent"
    finally:
        engine.dispose()
