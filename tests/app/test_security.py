"""Tests that the app shows each role only its pages, logs in and out safely, and shows untrusted text as text.

Run in-process with AppTest against a copy of the seeded sample database (tests/app/conftest.py).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text
from sqlmodel import Session
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from dashboard import auth
from dashboard.text import literal
from db import accounts, corrections, episodes, passwords, patient_search, queries
from db.access import Actor
from db.engine import make_engine, write_session
from db.writes import record_session
from tests.app.conftest import APP, log_in, save_button
from tests.db.factories import ADMIN, session_input

# Every page of the app: title as listed in the navigation, and its file under dashboard/views.
PAGE_FILES = {
    "Log in": "login.py",
    "Record session": "record_session.py",
    "Patient progress": "patient_progress.py",
    "Off track": "off_track.py",
    "Import": "import_data.py",
    "My diary": "my_diary.py",
    "My progress": "patient_progress.py",
    "Technique outcomes": "technique_outcomes.py",
    "Patient-reported": "patient_reported.py",
    "Needling record": "needling_record.py",
    "Methods": "methods.py",
    "Accounts": "users.py",
    "Audit trail": "audit_log.py",
    "Deleted sessions": "deleted_sessions.py",
    "Log out": "logout.py",
}
# What each role may open, written out by hand (docs/DESIGN.md section 1, issue 4); None is a visitor not logged in.
EXPECTED_PAGES: dict[str | None, list[str]] = {
    None: ["Log in"],
    "patient": ["My diary", "My progress", "Log out"],
    "manager": ["Technique outcomes", "Patient-reported", "Needling record", "Methods", "Log out"],
    "clinician": ["Record session", "Patient progress", "Off track", "Import", "Methods", "Log out"],
    "admin": ["Record session", "Patient progress", "Off track", "Import", "Technique outcomes", "Patient-reported",
              "Needling record", "Methods", "Accounts", "Audit trail", "Deleted sessions", "Log out"],
}
# The title each page draws (the login page shows the app's name).
# Methods draws its document's own first heading.
HEADINGS = {"Log in": "Needle Outcomes", "Methods": None, "Import": "Import sessions"}
LANDING = {None: "Needle Outcomes", "patient": "My progress", "manager": "Technique outcomes",
           "clinician": "Record session", "admin": "Record session"}
USERNAMES = {"patient": "patient", "manager": "manager", "clinician": "clin_ahmed", "admin": "admin"}
ALL_VIEWS = sorted(set(PAGE_FILES.values()))


def dates(values) -> list[str]:
    """Return dates as YYYY-MM-DD text, however a table cell or a query returned them."""
    return [str(pd.Timestamp(v).date()) for v in values]


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    """Return the first dataframe on the page that has `column`."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a {column!r} column on the page")


def rendered_text(at: AppTest) -> list[str]:
    """Return the value of every element that renders markdown: what untrusted text must never reach unescaped."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "success", "warning", "error")
    values = [str(element.value) for kind in kinds for element in at.get(kind)]
    return values + [str(m.label) for m in at.metric] + [str(m.value) for m in at.metric]


def request_page_by_url(at: AppTest, view: str) -> AppTest:
    """Ask for a page the way a browser does when its URL is typed (by the page's URL name), not via the menu."""
    at._page_hash = calc_hash(view.removesuffix(".py"))  # what AppTest.switch_page sends for a registered page
    at.run()
    at._page_hash = ""
    return at


def audit_actions(url: str, actor: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT action FROM audit_log WHERE actor = :a ORDER BY id"), {"a": actor})
        actions = [r.action for r in rows]
    engine.dispose()
    return actions


# -- navigation: each role sees exactly its pages ----------------------------------------------------------------


def _navigation_script(role: str | None) -> None:
    import json

    import streamlit as st

    from dashboard.navigation import pages_for
    from db.access import Actor

    actor = Actor(id=1, username="someone", role=role, patient_id=1) if role else None
    st.text(json.dumps([page.title for pages in pages_for(actor).values() for page in pages]))


@pytest.mark.parametrize("role", list(EXPECTED_PAGES), ids=lambda r: r or "visitor")
def test_the_navigation_lists_exactly_the_pages_of_the_role(role):
    at = AppTest.from_function(_navigation_script, kwargs={"role": role}).run()
    assert not at.exception, at.exception
    assert json.loads(at.text[0].value) == EXPECTED_PAGES[role]


@pytest.mark.parametrize("role", ["patient", "manager", "clinician", "admin"])
def test_each_role_opens_every_page_it_has_and_no_other(anonymous, role):
    at = log_in(anonymous, USERNAMES[role])
    assert titles(at) == [LANDING[role]]
    forbidden = sorted(set(ALL_VIEWS) - {PAGE_FILES[p] for p in EXPECTED_PAGES[role]})
    forbidden_titles = {t for t, view in PAGE_FILES.items() if view in forbidden} - {LANDING[role]}
    for view in forbidden:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"views/{view}")
        # Typed into the address bar instead: the role's first page opens, never the one asked for.
        request_page_by_url(at, view)
        assert not at.exception, f"{view}: {at.exception}"
        assert titles(at) == [LANDING[role]], view
        assert not set(titles(at)) & forbidden_titles
    for page in EXPECTED_PAGES[role]:
        if page == "Log out":  # tested below
            continue
        at.switch_page(f"views/{PAGE_FILES[page]}").run()
        assert not at.exception, f"{page}: {at.exception}"
        heading = HEADINGS.get(page, page)
        if heading:
            assert titles(at) == [heading], page
        assert at.main.children, f"{page} drew nothing"


def test_a_clinician_can_go_back_to_the_session_form_after_another_page(as_role):
    at = as_role("clinician")
    at.switch_page("views/patient_progress.py").run()
    at.switch_page("views/record_session.py").run()
    assert not at.exception, at.exception
    assert titles(at) == ["Record session"]


def test_a_visitor_who_is_not_logged_in_sees_only_the_login_page(anonymous):
    assert titles(anonymous) == ["Needle Outcomes"]
    assert anonymous.text_input(key="login_username") and anonymous.button(key="login_submit")
    for view in ALL_VIEWS:
        if view != "login.py":
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                anonymous.switch_page(f"views/{view}")
            request_page_by_url(anonymous, view)
            assert titles(anonymous) == ["Needle Outcomes"], view
            assert not anonymous.dataframe and not anonymous.exception, view


def sessions_of(url: str, pseudonym: str) -> pd.DataFrame:
    engine = make_engine(url)
    with Session(engine) as session:
        patients = patient_search.patients(session, actor=ADMIN).set_index("patient_id")
        sessions = queries.patient_sessions(session, actor=ADMIN, patient_id=int(patients.loc[pseudonym, "id"]))
    engine.dispose()
    return sessions


def test_a_patient_sees_only_their_own_record_whatever_the_session_state_or_url_says(as_role, seeded_url):
    own, other = sessions_of(seeded_url, "P0002"), sessions_of(seeded_url, "P0003")
    at = as_role("patient")
    at.session_state["progress_patient"] = "P0003"
    at.session_state["record_patient"] = "P0003"
    at.session_state["progress_episode"] = int(other["episode_id"].iloc[0])
    at.session_state["correct_number"] = 1
    at.query_params["patient_id"] = "P0003"
    at.query_params["patient"] = "P0003"
    at.run()
    assert not at.exception, at.exception
    assert titles(at) == ["My progress"]
    shown = table_with(at, "Session")
    assert sorted(dates(shown["Date"])) == sorted(dates(own["session_date"]))  # a patient's latest first
    assert sorted(dates(shown["Date"])) != sorted(dates(other["session_date"]))
    assert at.metric[0].value == str(len(own))
    assert "Notes" not in shown.columns and "Clinician" not in shown.columns
    assert "progress_patient" not in [w.key for w in at.selectbox]
    assert not at.text_area and not at.button  # no correction or delete form


# -- logging in and out ----------------------------------------------------------------------------------------------


def submit_login(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    at.button(key="login_submit").click().run()
    assert not at.exception, at.exception
    return at


def test_a_wrong_password_and_an_unknown_user_get_the_same_generic_refusal(anonymous):
    wrong = [e.value for e in submit_login(anonymous, "clin_ahmed", "not the password").error]
    unknown = [e.value for e in submit_login(anonymous, "no_such_user", "not the password").error]
    assert wrong == unknown == ["Wrong username or password."]
    assert titles(anonymous) == ["Needle Outcomes"]
    assert "actor" not in anonymous.session_state


@pytest.fixture
def waits(monkeypatch) -> dict[str, list[int]]:
    """Record the waits of slowed logins, the account's and the browser session's, instead of sleeping."""
    seen: dict[str, list[int]] = {"account": [], "browser session": []}
    monkeypatch.setattr(accounts, "_sleep", lambda seconds: seen["account"].append(round(seconds)))
    monkeypatch.setattr(auth, "_sleep", lambda seconds: seen["browser session"].append(round(seconds)))
    monkeypatch.setattr(accounts, "_unknown_names", accounts._UnknownNames())
    return seen


def test_many_failures_never_lock_an_account_and_a_real_and_an_unknown_username_get_the_same_answer(
    anonymous, seeded_url, waits
):
    answers = set()
    for _ in range(7):
        answers.add(tuple(e.value for e in submit_login(anonymous, "admin", "not the password").error))
    intruder = AppTest.from_file(APP, default_timeout=30).run()  # another browser, guessing names
    for _ in range(7):
        answers.add(tuple(e.value for e in submit_login(intruder, "no_such_admin", "not the password").error))
    assert answers == {("Wrong username or password.",)}
    assert titles(anonymous) == titles(intruder) == ["Needle Outcomes"]

    at = AppTest.from_file(APP, default_timeout=30).run()  # the real admin, from their own browser
    log_in(at, "admin")
    assert titles(at) == ["Record session"]  # let in, after the account's wait
    assert audit_actions(seeded_url, "admin")[-1] == "login"


def test_a_browser_session_that_keeps_guessing_is_slowed_whichever_account_it_tries(anonymous, waits):
    for username in ("admin", "manager", "patient", "clin_ahmed", "someone", "admin"):
        submit_login(anonymous, username, "not the password")
    assert waits["browser session"] == [1, 2, 4]  # three tries at once, then 1, 2, 4 s before each check
    other = AppTest.from_file(APP, default_timeout=30).run()
    log_in(other, "manager")  # another browser is not slowed by this one
    assert titles(other) == ["Technique outcomes"] and waits["browser session"] == [1, 2, 4]


def test_a_disabled_account_cannot_log_in(anonymous, seeded_url):
    engine = make_engine(seeded_url)
    with write_session(engine) as session:
        accounts.set_active(session, actor=ADMIN, username="clin_ahmed", active=False)
    engine.dispose()
    submit_login(anonymous, "clin_ahmed", "demo-clinician-password")
    assert [e.value for e in anonymous.error] == ["This account is disabled. Ask an administrator."]
    assert titles(anonymous) == ["Needle Outcomes"]


def test_disabling_an_account_ends_its_open_session_at_the_next_click(as_role, seeded_url):
    at = as_role("clinician")
    assert titles(at) == ["Record session"]
    engine = make_engine(seeded_url)
    with write_session(engine) as session:
        accounts.set_active(session, actor=ADMIN, username="clin_ahmed", active=False)
    engine.dispose()
    at.run()
    assert not at.exception, at.exception
    assert titles(at) == ["Needle Outcomes"]
    assert [i.value for i in at.info] == ["This account is disabled. Ask an administrator."]
    assert audit_actions(seeded_url, "clin_ahmed")[-1] == "logout"


def test_the_password_typed_is_not_kept_in_the_session_after_logging_in(as_role):
    at = as_role("clinician")
    assert "login_password" not in at.session_state
    assert "demo-clinician-password" not in repr(at.session_state)


def test_after_30_idle_minutes_the_next_click_shows_the_login_page_with_a_notice(as_role, seeded_url):
    at = as_role("admin")
    at.switch_page("views/audit_log.py").run()
    at.session_state["last_seen"] = datetime.now(UTC) - timedelta(minutes=29)
    at.run()
    assert titles(at) == ["Audit trail"]  # 29 minutes: still logged in

    at.session_state["last_seen"] = datetime.now(UTC) - timedelta(minutes=31)
    at.run()
    assert not at.exception, at.exception
    assert titles(at) == ["Needle Outcomes"]
    assert [i.value for i in at.info] == ["You were logged out after 30 idle minutes."]
    assert not at.dataframe and "actor" not in at.session_state
    assert audit_actions(seeded_url, "admin")[-1] == "logout"  # the timeout is in the audit trail
    request_page_by_url(at, "audit_log.py")
    assert titles(at) == ["Needle Outcomes"] and not at.dataframe


def test_logging_out_ends_the_session_and_is_audited(as_role, seeded_url):
    at = as_role("clinician")
    assert audit_actions(seeded_url, "clin_ahmed") == ["login"]
    at.switch_page("views/logout.py").run()
    assert not at.exception, at.exception
    assert titles(at) == ["Needle Outcomes"]
    assert [i.value for i in at.info] == ["You are logged out, in every browser and tab."]
    assert "actor" not in at.session_state
    assert audit_actions(seeded_url, "clin_ahmed") == ["login", "logout"]
    request_page_by_url(at, "patient_progress.py")  # the browser's back button
    assert titles(at) == ["Needle Outcomes"] and not at.dataframe


ENDED = ("This session has ended: the account was logged out in another browser, or its password or role changed. "
         "Please log in again.")


def test_logging_out_in_one_browser_ends_the_accounts_sessions_in_every_other(anonymous, seeded_url):
    phone = log_in(anonymous, "clin_ahmed")
    desk = log_in(AppTest.from_file(APP, default_timeout=30).run(), "clin_ahmed")
    colleague = log_in(AppTest.from_file(APP, default_timeout=30).run(), "admin")
    phone.switch_page("views/logout.py").run()

    desk.run()  # the next click at the desk
    assert not desk.exception, desk.exception
    assert titles(desk) == ["Needle Outcomes"] and "actor" not in desk.session_state
    assert [i.value for i in desk.info] == [ENDED]
    assert audit_actions(seeded_url, "clin_ahmed") == ["login", "login", "logout", "logout"]
    colleague.run()
    assert titles(colleague) == ["Record session"]  # another account's session goes on

    log_in(desk, "clin_ahmed")  # logging in again after the logout works
    desk.run()
    assert titles(desk) == ["Record session"]


def test_an_admins_password_reset_ends_the_accounts_open_session_at_its_next_click(as_role, seeded_url):
    at = as_role("clinician")
    engine = make_engine(seeded_url)
    with write_session(engine) as session:
        accounts.reset_password(session, actor=ADMIN, username="clin_ahmed", password="a brand new password")
    engine.dispose()
    at.run()
    assert titles(at) == ["Needle Outcomes"] and [i.value for i in at.info] == [ENDED]


# -- soft delete and restore in the app ------------------------------------------------------------------------------


def delete_reason(at: AppTest):
    """Return the field for the reason of deleting the chosen session (keyed by that session)."""
    return next(t for t in at.text_input if t.label == "Reason for deleting this session")


def correction_picker(at: AppTest):
    """Return the picker of the session to correct or delete (keyed by patient and course of treatment)."""
    return next(s for s in at.segmented_control if s.key and s.key.startswith("correct_number_"))


def progress_of(at: AppTest, pseudonym: str) -> pd.DataFrame:
    at.switch_page("views/patient_progress.py").run()
    at.selectbox(key="progress_patient").select(pseudonym).run()
    assert not at.exception, at.exception
    return table_with(at, "Session")


def test_a_session_deleted_by_a_clinician_leaves_the_chart_and_an_admin_brings_it_back(as_role, seeded_url):
    at = as_role("clinician")
    before = progress_of(at, "P0002")
    deleted_date = before.loc[before["Session"] == 3, "Date"].iloc[0]
    correction_picker(at).set_value(3).run()
    delete_reason(at).input("recorded for the wrong patient")
    at.button(key="delete_session").click().run()
    at.button(key="delete_session_yes").click().run()
    assert not at.exception and not at.error, at.error
    after = table_with(at, "Session")
    assert list(after["Session"]) == list(range(1, len(before)))
    assert list(after["Date"]) == [d for d in before["Date"] if d != deleted_date]
    assert at.metric[0].value == str(len(before) - 1)

    at.switch_page("views/logout.py").run()
    at = log_in(at, "admin")
    at.switch_page("views/deleted_sessions.py").run()
    deleted = table_with(at, "deleted_reason")
    assert list(deleted["deleted_reason"]) == ["recorded for the wrong patient"]
    assert list(deleted["deleted_by"]) == ["clin_ahmed"]
    at.button(key="restore_session").click().run()
    at.button(key="restore_session_yes").click().run()
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == ["No deleted sessions. A clinician's deletion appears here with its reason."]

    restored = progress_of(at, "P0002")
    assert restored.equals(before)
    assert audit_actions(seeded_url, "clin_ahmed") == ["login", "delete", "logout"]
    assert audit_actions(seeded_url, "admin") == ["login", "restore"]


def test_a_deleted_session_dated_after_its_episodes_later_discharge_is_not_restored(as_role, seeded_url):
    engine = make_engine(seeded_url)
    clinician = Actor(id=None, username="clin_ahmed", role="clinician")
    with write_session(engine) as session:
        first = record_session(session, actor=clinician, entry=session_input(
            patient_id="P9200", session_date="2025-03-03", pain_before=70))
        second = record_session(session, actor=clinician, entry=session_input(
            patient_id="P9200", session_date="2025-03-17", pain_before=50)).id
        corrections.delete_session(session, actor=clinician, session_id=second, reason="wrong patient")
        episodes.discharge_episode(session, actor=clinician, episode_id=first.episode_id, status="goal_met",
                                   discharged_on=date(2025, 3, 10))
    engine.dispose()
    at = as_role("admin")
    at.switch_page("views/deleted_sessions.py").run()
    at.button(key="restore_session").click().run()
    at.button(key="restore_session_yes").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["Not restored. " + literal(
        "Session date: 2025-03-17 is after episode 1 (no condition recorded) was discharged on 2025-03-10; a session "
        "after a discharge belongs to a new episode of care: record it as a new session")]
    assert list(table_with(at, "deleted_reason")["session_id"]) == [second]  # still deleted, still listed


# -- untrusted text stays text ---------------------------------------------------------------------------------------

SCRIPT_NOTE = "<script>alert(1)</script>"
MARKDOWN_NOTE = "[click](http://evil.example) and **bold**"
MARKDOWN_NAME = "**Bob**"
MARKDOWN_REASON = "[see](http://evil.example) _why_"
RAW = (SCRIPT_NOTE, "<script>", "[click](http://evil.example)", "**bold**", MARKDOWN_NAME, "[see](http://evil.example)")


@pytest.fixture
def hostile_patient(seeded_url) -> dict[str, int]:
    """Add patient P9100 named **Bob**: a note with a script, one corrected to markdown, one deleted with a link."""
    engine = make_engine(seeded_url)
    clinician = Actor(id=None, username="clin_ahmed", role="clinician")
    with write_session(engine) as session:
        first = record_session(session, actor=clinician, patient_name=MARKDOWN_NAME, entry=session_input(
            patient_id="P9100", session_date="2025-03-03", pain_before=70, notes=SCRIPT_NOTE)).id
        second = record_session(session, actor=clinician, entry=session_input(
            patient_id="P9100", session_date="2025-03-10", pain_before=60, notes=SCRIPT_NOTE)).id
        third = record_session(session, actor=clinician, entry=session_input(
            patient_id="P9100", session_date="2025-03-17", pain_before=50)).id
    with write_session(engine) as session:
        corrections.correct_session(session, actor=clinician, session_id=second, entry=session_input(
            patient_id="P9100", session_date="2025-03-10", pain_before=60, notes=MARKDOWN_NOTE))
        corrections.delete_session(session, actor=clinician, session_id=third, reason=MARKDOWN_REASON)
    engine.dispose()
    return {"first": first, "second": second, "third": third}


def assert_nothing_raw_is_rendered(at: AppTest, page: str) -> None:
    for value in rendered_text(at):
        for raw in RAW:
            assert raw not in value, f"{page}: {raw!r} rendered as markdown in {value!r}"


def test_notes_and_names_show_literally_on_the_clinicians_progress_page(as_role, hostile_patient):
    at = as_role("clinician")
    at.switch_page("views/patient_progress.py").run()
    assert "P9100 — **Bob**" in at.selectbox(key="progress_patient").options
    at.selectbox(key="progress_patient").select("P9100").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="progress_patient").value == "P9100"
    table = table_with(at, "Notes")
    assert list(table["Notes"]) == [SCRIPT_NOTE, MARKDOWN_NOTE]
    correction_picker(at).set_value(2).run()  # the corrected session: its note and history as typed
    assert [a.value for a in at.text_area if a.label == "Notes"] == [MARKDOWN_NOTE]
    history = [c.value for c in at.caption if c.value.startswith("corrected")]
    assert len(history) == 1 and literal(SCRIPT_NOTE) in history[0] and literal(MARKDOWN_NOTE) in history[0]
    assert_nothing_raw_is_rendered(at, "patient progress, session 2")

    correction_picker(at).set_value(1).run()
    assert [a.value for a in at.text_area if a.label == "Notes"] == [SCRIPT_NOTE]
    assert_nothing_raw_is_rendered(at, "patient progress, session 1")


def test_notes_and_reasons_show_literally_in_the_audit_trail_and_deleted_sessions(as_role, hostile_patient):
    at = as_role("admin")
    at.switch_page("views/audit_log.py").run()
    assert not at.exception, at.exception
    events = table_with(at, "action")
    mine = events[events["entity_id"].isin(hostile_patient.values()) & (events["entity"] == "session")]
    by_action = {action: rows for action, rows in mine.groupby("action")}
    created = by_action["create"].set_index("entity_id")["changes"]
    assert f"notes: {SCRIPT_NOTE}; " in created[hostile_patient["first"]]
    [update] = by_action["update"].to_dict("records")
    assert update["changes"] == f"notes: {SCRIPT_NOTE} → {MARKDOWN_NOTE}"
    assert by_action["delete"]["detail"].tolist() == [MARKDOWN_REASON]
    assert_nothing_raw_is_rendered(at, "audit trail")

    at.switch_page("views/deleted_sessions.py").run()
    assert not at.exception, at.exception
    deleted = table_with(at, "deleted_reason")
    assert deleted.loc[deleted["patient_id"] == "P9100", "deleted_reason"].tolist() == [MARKDOWN_REASON]
    assert_nothing_raw_is_rendered(at, "deleted sessions")


MARKDOWN_REGION = "[click](http://evil.example) **neck**"


def test_a_body_region_typed_with_markdown_shows_literally_in_the_refusal_that_quotes_it(as_role):
    at = as_role("clinician")
    at.text_input(key="body_region").input(MARKDOWN_REGION)
    at.number_input(key="pain_before").set_value(50)
    save_button(at).click().run()
    assert not at.exception, at.exception
    [error] = at.error
    assert literal(f"'{MARKDOWN_REGION}'") in error.value  # quoted as typed, every markdown character escaped
    assert_nothing_raw_is_rendered(at, "record session")
    assert MARKDOWN_REGION not in error.value and "**neck**" not in error.value


def test_a_guessable_password_is_refused_on_the_accounts_page_in_one_line_with_zxcvbns_advice(as_role):
    at = as_role("admin")
    at.switch_page("views/users.py").run()
    at.text_input(key="new_username").input("nina")
    at.text_input(key="new_password").input("Password2024!")
    at.button(key="add_user_submit").click().run()
    assert not at.exception, at.exception
    with pytest.raises(ValueError) as refused:
        passwords.check_password_strength("Password2024!", username="nina")
    assert "similar to a commonly used password" in str(refused.value)
    assert [e.value for e in at.error] == [f"Not changed. {literal(refused.value)}"]
    assert "nina" not in table_with(at, "username")["username"].tolist()


def test_an_account_name_with_markdown_characters_shows_literally_on_the_accounts_page(as_role):
    at = as_role("admin")
    at.switch_page("views/users.py").run()
    at.text_input(key="new_username").input("__ab__")
    at.text_input(key="new_display_name").input("**Eve**")
    at.button(key="add_user_submit").click().run()
    assert not at.exception and not at.error, at.error
    assert len(at.success) == 1 and "__ab__" not in at.success[0].value
    at.text_input(key="new_username").input("p_new")
    at.selectbox(key="new_role").select("patient")
    at.text_input(key="new_patient").input("[x](http://evil.example)")
    at.button(key="add_user_submit").click().run()
    assert len(at.error) == 1 and "[x](http://evil.example)" not in at.error[0].value
    at.run()
    accounts_table = table_with(at, "username").set_index("username")
    assert accounts_table.loc["__ab__", "display_name"] == "**Eve**"
    assert_nothing_raw_is_rendered(at, "accounts")
