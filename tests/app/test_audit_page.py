"""The audit trail page: filters by patient, user, action and dates in SQL, readable changes, an audited CSV."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from db import corrections
from db.engine import make_engine, write_session
from db.writes import record_session
from tests.app.conftest import download_content
from tests.db.factories import ADMIN, session_input

PATIENT = "P9041"


@pytest.fixture
def admin(as_role):
    at = as_role("admin")
    at.switch_page("views/audit_log.py").run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Audit trail"]
    return at


def audit_rows(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    engine.dispose()
    return count


@pytest.fixture
def journey(seeded_url) -> int:
    """Record a session of P9041 (pain 80), correct it to 60, delete and restore it; return its id."""
    engine = make_engine(seeded_url)
    with write_session(engine) as session:
        session_id = record_session(session, actor=ADMIN, entry=session_input(patient_id=PATIENT, pain_before=80)).id
    with write_session(engine) as session:
        corrections.correct_session(session, actor=ADMIN, session_id=session_id,
                                    entry=session_input(patient_id=PATIENT, pain_before=60))
    with write_session(engine) as session:
        corrections.delete_session(session, actor=ADMIN, session_id=session_id, reason="=HYPERLINK(\"x\")")
    with write_session(engine) as session:
        corrections.restore_session(session, actor=ADMIN, session_id=session_id)
    engine.dispose()
    return session_id


def shown(at) -> pd.DataFrame:
    return at.dataframe(key="audit_table").value


def filter_by(at, **values):
    """Set the page's filters (patient, user, action, since, until) and rerun."""
    for name, value in values.items():
        if name == "action":
            at.selectbox(key="audit_action").select(value)
        elif name in ("since", "until"):
            at.date_input(key=f"audit_{name}").set_value(value)
        else:
            at.text_input(key=f"audit_{name}").input(value)
    at.run()
    assert not at.exception, at.exception
    return at


def tables(at) -> list[str]:
    return [frame.key for frame in at.dataframe]


def test_filtering_by_patient_finds_every_clinical_row_of_that_patient_in_readable_words(admin, journey):
    filter_by(admin, patient=PATIENT)
    table = shown(admin)
    assert list(table["action"]) == ["restore", "delete", "update", "create"]  # newest first, none missing
    assert set(table["patient"]) == {PATIENT} and set(table["entity_id"]) == {journey}
    assert table["changes"].tolist()[2] == "pain before: 80 → 60"
    assert "{" not in "".join(table["changes"]), "no raw JSON on the page"


def test_the_chosen_row_is_spelled_out_one_line_per_field(admin, journey):
    filter_by(admin, patient=PATIENT, action="delete")
    assert list(shown(admin)["action"]) == ["delete"]
    lines = [t.value for t in admin.text]
    for line in ("date: 2025-01-10", "muscles: (blank)", "notes: (blank)", "pain after: (blank)", "pain before: 60",
                 "depth mm: (blank)"):  # a field per line, the needling record's too
        assert line in lines[1].splitlines()
    assert 'Detail: =HYPERLINK("x")' in lines


def test_filtering_by_user_action_and_dates_narrows_the_rows(admin, journey):
    filter_by(admin, user=ADMIN.username)
    assert set(shown(admin)["actor"]) == {ADMIN.username} and len(shown(admin)) == 4
    filter_by(admin, user="", action="delete")
    assert set(shown(admin)["action"]) == {"delete"} and journey in set(shown(admin)["entity_id"])
    filter_by(admin, action="", patient=PATIENT, since=date.today() - timedelta(days=1), until=date.today())
    assert len(shown(admin)) == 4
    filter_by(admin, since=date.today() + timedelta(days=1), until=date.today() + timedelta(days=2))
    assert "audit_table" not in tables(admin)
    assert admin.info[0].value == "No audit row matches these filters."


def test_a_from_date_after_the_to_date_says_so_instead_of_an_empty_table(admin):
    filter_by(admin, since=date.today(), until=date.today() - timedelta(days=3))
    assert "after the To date" in admin.warning[0].value
    assert "audit_table" not in tables(admin)


def test_the_download_is_the_filtered_rows_as_csv_and_is_itself_audited(admin, journey, seeded_url):
    filter_by(admin, patient=PATIENT)
    before = audit_rows(seeded_url)
    admin.run()
    assert audit_rows(seeded_url) == before, "viewing the page exports nothing"
    csv = pd.read_csv(io.StringIO(download_content(admin, "audit_download")), dtype=str, keep_default_na=False)
    assert list(csv.columns) == ["id", "at", "actor", "action", "entity", "entity_id", "patient", "changes", "detail"]
    assert list(csv["id"]) == [str(i) for i in shown(admin)["id"]]
    assert list(csv["action"]) == ["restore", "delete", "update", "create"] and set(csv["patient"]) == {PATIENT}
    assert csv["changes"][2] == "pain before: 80 → 60"
    assert csv["detail"][1] == "'=HYPERLINK(\"x\")", "a cell a spreadsheet would run is kept as text"
    assert audit_rows(seeded_url) == before + 1
    engine = make_engine(seeded_url)
    with engine.connect() as connection:
        action, entity, detail = connection.execute(text(
            "SELECT action, entity, detail FROM audit_log ORDER BY id DESC LIMIT 1")).one()
    engine.dispose()
    assert (action, entity, detail) == ("export", "audit_log", f"audit trail CSV: 4 rows; patient {PATIENT}")


def test_typed_filters_are_shown_as_typed_never_as_markdown(admin):
    filter_by(admin, user="**bold** [x](http://e.example)")
    assert admin.info[0].value == "No audit row matches these filters."
    line = next(m.value for m in admin.markdown if "filtered by" in m.value)
    assert r"user \*\*bold\*\* \[x\]\(http\:" in line, "escaped: shown as typed, not bold, not a link"
    filter_by(admin, user="clin_ahmed")
    line = next(m.value for m in admin.markdown if "filtered by" in m.value)
    assert r"filtered by user clin\_ahmed\." in line, "the username as it is, not clin ahmed"
