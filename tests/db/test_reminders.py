"""Tests of the optional e-mail reminders (`python -m db remind`, docs/DEPLOYMENT.md "E-mail reminders") against a
local SMTP server the test starts (aiosmtpd): the due diary entry reaches the right address with no health detail,
a second run sends nothing again, a failing server is one line with nothing recorded, and without SMTP settings the
command says so in one line and exits cleanly."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlmodel import Session

from db import accounts, patient_reports, reminders
from db.cli import main
from db.engine import write_session
from db.models import AuditEvent, TreatmentSession
from tests.db.factories import ADMIN, import_frame, interchange_rows

SMTP_NAMES = ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM", "APP_URL")


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def settings(monkeypatch, tmp_path):
    """Clear every SMTP setting and run where no secrets file is; return a function that sets them."""
    for name in SMTP_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    def given(port: int) -> None:
        for name, value in (("SMTP_HOST", "127.0.0.1"), ("SMTP_PORT", str(port)), ("SMTP_SECURITY", "none"),
                            ("SMTP_FROM", "reminders@clinic.example"), ("APP_URL", "https://outcomes.example")):
            monkeypatch.setenv(name, value)
    return given


@pytest.fixture
def patients(engine):
    """Three patients treated yesterday (their 24 h diary window is open all of today, UTC): P1 has an account with
    an e-mail, P2 an account without one, P3 an e-mail but the entry filled already."""
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    import_frame(engine, interchange_rows(*(
        dict(patient_id=p, session_date=yesterday.isoformat(), technique="electrical", pain_before="87",
             pain_after="83", condition="neck_pain", side_effects="bruising:mild") for p in ("P1", "P2", "P3"))))
    with write_session(engine) as session:
        for username, patient, email in (("pat1", "P1", "pat1@example.org"), ("pat2", "P2", None),
                                         ("pat3", "P3", "pat3@example.org")):
            accounts.add_user(session, actor=ADMIN, username=username, role="patient", password=None, email=email,
                              patient_pseudonym=patient)
        third = session.scalars(select(TreatmentSession.id).order_by(TreatmentSession.id)).all()[2]
        patient_reports.record_diary_entry(session, actor=ADMIN, session_id=third, soreness=4,
                                           now=patient_reports.session_moment(yesterday, None) + timedelta(hours=20))
    return yesterday


def reminder_rows(engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).where(AuditEvent.action == "export",
                                                          AuditEvent.entity == "reminder")).scalar_one()


def test_the_due_entry_is_mailed_once_to_its_patient_with_no_health_detail(engine, database_url, patients, inbox,
                                                                           settings, capsys):
    handler, port = inbox
    settings(port)
    assert main(["--url", database_url, "remind"]) == 0
    assert capsys.readouterr().err.strip() == "1 reminder(s) sent"
    [(recipients, mail)] = handler.messages
    assert recipients == ["pat1@example.org"] and mail["To"] == "pat1@example.org"
    assert mail["From"] == "reminders@clinic.example"
    text = mail.as_string()
    assert "The next day (24 h), after your session: open now" in text and "https://outcomes.example" in text
    assert "UTC" not in text  # no clock time in a zone that is not the patient's
    for detail in ("87", "83", "electrical", "neck", "bruising", "P1", "pain"):
        assert detail not in text  # no score, technique, condition, side effect or patient id
    assert reminder_rows(engine) == 1
    assert main(["--url", database_url, "remind"]) == 0  # again: nothing more is due to be sent
    assert capsys.readouterr().err.strip() == "no reminders due"
    assert len(handler.messages) == 1 and reminder_rows(engine) == 1


def test_a_dry_run_lists_the_reminder_and_sends_nothing(engine, database_url, patients, inbox, settings, capsys):
    handler, port = inbox
    settings(port)
    assert main(["--url", database_url, "remind", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("pat1 <pat1@example.org>: 24 h entry of session ") and len(out.splitlines()) == 1
    assert err.strip() == "dry run: 1 reminder(s) due; none sent"
    assert handler.messages == [] and reminder_rows(engine) == 0


def test_without_smtp_settings_the_command_says_so_in_one_line_and_exits_cleanly(engine, database_url, patients,
                                                                                  settings, capsys):
    assert main(["--url", database_url, "remind"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("no SMTP settings") and "no reminders sent" in err
    assert reminder_rows(engine) == 0


def test_a_server_that_cannot_be_reached_is_one_line_and_nothing_is_recorded(engine, database_url, patients,
                                                                              settings, capsys):
    port = free_port()  # nothing listens there
    settings(port)
    assert main(["--url", database_url, "remind"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: SMTP 127.0.0.1:{port}: ") and err.endswith("; nothing was sent")
    assert reminder_rows(engine) == 0


@pytest.mark.parametrize(("left", "words"), [
    (timedelta(hours=20, minutes=10), "open now, and for about 20 hours after this e-mail was sent"),
    (timedelta(minutes=25), "open now, and for less than an hour after this e-mail was sent")])
def test_the_e_mail_says_how_long_the_entry_stays_open_in_words_true_in_any_time_zone(left, words):
    sent = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)  # a clock time of it would be the next day to some patients
    settings = reminders.SmtpSettings(host="h", port=25, security="none", sender="r@clinic.example")
    reminder = reminders.Reminder("pat1", "pat1@example.org", "P1", ((7, 24, sent + left),))
    mail = reminders.message(reminder, settings, now=sent)
    text = mail.get_content()
    assert "- The next day (24 h), after your session: " + words + "\n" in text
    assert "UTC" not in text and ":" not in text.split("\n- ")[1].split(": ", 1)[1]  # no clock time
    assert mail["Date"].datetime == sent  # the time it was sent, shown by the patient's mail app in their own zone


def test_settings_come_from_the_secrets_file_when_the_environment_has_none(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[smtp]\nhost = "mail.clinic.example"\nfrom = "r@clinic.example"\nusername = "u"\n',
                       encoding="utf-8")
    found = reminders.smtp_settings({}, secrets)
    assert (found.host, found.port, found.security, found.sender, found.username) == (
        "mail.clinic.example", 587, "starttls", "r@clinic.example", "u")
    assert reminders.smtp_settings({"SMTP_HOST": "env.example", "SMTP_FROM": "a@b.c", "SMTP_SECURITY": "ssl"},
                                   secrets).port == 465
    assert reminders.smtp_settings({}, tmp_path / "absent.toml") is None
    secrets.write_text('[smtp]\nhost = "h"\nport = "smtp"\nfrom = "r@c.example"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"^\[smtp\] port: 'smtp' is not a port number$"):
        reminders.smtp_settings({}, secrets)


def test_the_documented_example_section_reads_as_settings_once_uncommented(tmp_path):
    example = (Path(__file__).resolve().parents[2] / ".streamlit" / "secrets.toml.example").read_text(encoding="utf-8")
    section = example[example.index("# [smtp]"):]
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("\n".join(line.removeprefix("# ") for line in section.splitlines()), encoding="utf-8")
    found = reminders.smtp_settings({}, secrets)
    assert (found.host, found.port, found.security, found.username) == (
        "smtp.clinic.example", 587, "starttls", "needle-outcomes")


def test_no_reminder_before_a_window_opens_nor_for_a_disabled_account(engine, patients, settings):
    moment = patient_reports.session_moment(patients, None)
    with Session(engine) as session:
        assert reminders.due_reminders(session, actor=ADMIN, now=moment + timedelta(hours=1)) == []
        early = reminders.due_reminders(session, actor=ADMIN, now=moment + timedelta(hours=4))
        assert [(r.username, [window for _, window, _ in r.due]) for r in early] == [("pat1", [6]), ("pat3", [6])]
    with write_session(engine) as session:
        accounts.set_active(session, actor=ADMIN, username="pat1", active=False)
    with Session(engine) as session:
        assert reminders.due_reminders(session, actor=ADMIN) == []
