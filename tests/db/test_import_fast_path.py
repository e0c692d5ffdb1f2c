"""The import's fast path gives exactly what SessionInput gives, row for row, and its bulk writes store what it means.

`validate_rows` types the plainly valid rows column by column and sends every other row through SessionInput; these
tests run generated files, nasty cells included, both ways and require the same sessions or the same problems.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session

from clinic.vocabulary import CONDITIONS, SEVERITIES, SIDE_EFFECTS, TECHNIQUES
from db import audit, file_validation, importing, interchange
from db.engine import write_session
from db.file_problems import ImportRefused
from db.file_validation import ValidRows
from db.models import AuditEvent
from db.validation import SessionInput
from tests.db.factories import ADMIN

TODAY = date(2025, 6, 30)
COLUMNS = interchange.COLUMNS + interchange.EXTRA_COLUMNS
# Whitespace that Python strips and pydantic may not, and the reverse; invisible and line-breaking characters.
SPACES = [" ", "\t", "\n", "\u00a0", "\u2028", "\u3000", "\x1c", "\u200b", "\ufeff"]


def cells(*good: str, bad: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """Return cells that are mostly plain, sometimes padded or cased oddly, sometimes simply wrong."""
    plain = st.sampled_from(good)
    padded = st.builds(lambda pad, text, end: pad + text + end, st.sampled_from(SPACES), plain,
                       st.sampled_from(SPACES))
    return st.one_of(plain, plain, padded, plain.map(str.upper), st.sampled_from(bad or ("?",)), st.text(max_size=6))


NUMBERS = ("0", "5", "10", "45.5", "62", "100", "100.0", "0.25", "7")
ODD_NUMBERS = ("", "-0", "-0.0", "1e1", "05", "40.", ".5", "nan", "inf", "1_0", "101", "10.5", "1,5", "0x10",
               "12.345678901234567", "+3")
DATES = ("2025-01-31", "2024-02-29", "2025-06-30", "2023-12-01")
ODD_DATES = ("", "2025-07-01", "2025-02-29", "31/01/2025", "2025-1-31", "2025-01-31T00:00", "20250131",
             "\u0662\u0660\u0662\u0665-01-31", "0000-01-01", "9999-12-31")
GOOD = {
    "patient_id": ("P-1", "p_2", "A" * 64),
    "session_date": DATES,
    "technique": TECHNIQUES,
    "pain_scale": ("", "vas_100", "nrs_10"),
    "pain_before": NUMBERS,
    "pain_after": ("", *NUMBERS),
    "side_effects": ("", "bruising:mild", "soreness:mild;syncope:significant", " bleeding : serious ; "),
    "condition": ("", *CONDITIONS[:3]),
    "clinician": ("", "clin_a"),
    "twitch_response": ("", "yes", "no", "Yes", "NO"),
    "notes": ("", "better", 'said "so"', "é\nline"),
    "body_region": ("", "neck", "lower_back"),
    "muscles": ("", "trapezius", "a;b", " a ; ;b "),
}
BAD = {
    "patient_id": ("", "P 1", "A" * 65, "é"),
    "session_date": ODD_DATES,
    "technique": ("", "Deep", "dry"),
    "pain_scale": ("VAS", "nrs"),
    "pain_before": ODD_NUMBERS,
    "pain_after": ODD_NUMBERS,
    "side_effects": ("bruising", "bruising:mild;bruising:serious", "x:mild", "bruising:bad", ";;", ":mild"),
    "condition": ("Neck", "neck pain"),
    "clinician": ("Clin", "a-b"),
    "twitch_response": ("y", "true", "1"),
    "notes": ("\u00a0x\x1c", " \u2028 ", "\t"),
    "body_region": ("Neck",),
    "muscles": (";", "a;;"),
}
# Most rows plain (a typical file: then the whole file is valid), some with any cell odd or wrong.
plain_rows = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in GOOD.items()})
odd_rows = st.fixed_dictionaries({name: cells(*GOOD[name], bad=BAD[name]) for name in GOOD})
rows = st.one_of(plain_rows, plain_rows, plain_rows, odd_rows)
files = st.lists(rows, min_size=1, max_size=6).map(lambda r: pd.DataFrame(r, columns=COLUMNS))


def without_fast_path(monkeypatch) -> None:
    """Make every row go through SessionInput, as before the fast path existed."""
    columns = file_validation._FastPath.columns
    monkeypatch.setattr(file_validation._FastPath, "columns",
                        lambda self, start, stop: (columns(self, start, stop)[0], list(range(start, stop))))


def outcome(table: pd.DataFrame):
    """Return the validated sessions as (values, field order, fields given), or the problems."""
    try:
        entries = file_validation.validate_rows(table, today=TODAY)
    except ImportRefused as refused:
        return "refused", refused.problems
    return "valid", [(vars(e), list(vars(e)), e.model_fields_set) for e in entries]


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(table=files)
@example(table=pd.DataFrame([{"patient_id": "P", "session_date": "2025-01-31", "technique": "deep",
                              "pain_before": "-0", "pain_after": "0", "notes": "\u00a0x\x1c"}]))
def test_the_fast_path_gives_the_same_sessions_or_problems_as_sessionInput_for_any_file(table):
    fast = outcome(table)
    with pytest.MonkeyPatch.context() as monkeypatch:
        without_fast_path(monkeypatch)
        slow = outcome(table)
    assert fast == slow


def test_a_file_without_the_optional_columns_validates_alike_both_ways(monkeypatch):
    table = pd.DataFrame([{"patient_id": "P1", "session_date": "2025-01-31", "technique": "deep",
                           "pain_before": "40"}])
    fast = outcome(table)
    without_fast_path(monkeypatch)
    assert fast == outcome(table)
    assert fast[0] == "valid"


def test_valid_rows_read_as_a_list_of_sessionInputs():
    table = pd.DataFrame([
        {"patient_id": "P1", "session_date": "2025-01-31", "technique": "deep", "pain_before": "40",
         "side_effects": "bruising:mild", "muscles": "a;b"},
        {"patient_id": "P1", "session_date": "2025-02-07", "technique": "deep", "pain_before": " 4 ",
         "pain_scale": "NRS_10".lower(), "twitch_response": "YES"},
    ])
    entries = file_validation.validate_rows(table, today=TODAY)
    assert isinstance(entries, ValidRows)
    assert len(entries) == 2 and all(isinstance(e, SessionInput) for e in entries)
    assert entries[-1] == entries[1] and entries[0:1] == [entries[0]]
    assert entries[0].side_effects == [("bruising", "mild")] and entries[0].muscles == ["a", "b"]
    entries[0].side_effects.append(("soreness", "mild"))  # an item is a model of its own, not a view
    assert entries[0].side_effects == [("bruising", "mild")]
    assert entries == [SessionInput(patient_id="P1", session_date="2025-01-31", technique="deep", pain_before=40,
                                    side_effects=[("bruising", "mild")], muscles=["a", "b"], today=TODAY),
                       SessionInput(patient_id="P1", session_date="2025-02-07", technique="deep", pain_before=4,
                                    pain_scale="nrs_10", twitch_response=True, today=TODAY)]
    with pytest.raises(IndexError):
        entries[2]


def test_bulk_audit_json_is_what_a_single_audit_row_writes():
    columns = {
        "pain_before": [0.0, -0.0, 45.5, 0.1 + 0.2, None, 1e16],
        "mixed": [1, True, 1.0, None, "1", 0],
        "session_date": [date(2025, 1, 31), None, date(2025, 1, 31), date(2024, 2, 29), None, None],
        "notes": ['said "better"', "é\u2028\n", "", None, "\\", "'"],
        "twitch_response": [True, False, None, True, True, False],
    }
    rows = [{name: values[i] for name, values in columns.items()} for i in range(6)]
    assert audit._json_rows(columns) == [audit._json(row) for row in rows]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.none(), st.floats(), st.sampled_from([0.0, -0.0, 1.0, 45.5])), min_size=1, max_size=8))
def test_bulk_audit_json_of_floats_is_what_a_single_audit_row_writes(values):
    columns = {"pain_after": values, "pain_before": [1.0] * len(values)}
    rows = [{name: column[i] for name, column in columns.items()} for i in range(len(values))]
    assert audit._json_rows(columns) == [audit._json(row) for row in rows]


def test_an_import_stores_a_quoted_file_name_and_every_created_sessions_values_in_its_audit_rows(engine):
    table = pd.DataFrame([
        {"patient_id": "P1", "session_date": "2025-01-31", "technique": "deep", "pain_before": "40",
         "notes": "it's 'quoted'", "side_effects": "bruising:mild;soreness:mild"},
        {"patient_id": "P2", "session_date": "2025-02-07", "technique": "superficial", "pain_before": "45.25",
         "pain_after": "0", "twitch_response": "no", "muscles": "a;b"},
    ])
    entries = file_validation.validate_rows(table, today=TODAY)
    with write_session(engine) as session:
        importing.import_sessions(session, actor=ADMIN, entries=entries, source="O'Brien's clinic.csv")
    with Session(engine) as session:
        created = session.scalars(select(AuditEvent).where(AuditEvent.action == "create")
                                  .order_by(AuditEvent.id)).all()
    assert [e.detail for e in created] == ["import O'Brien's clinic.csv"] * 2
    assert [(e.actor, e.entity, e.before) for e in created] == [(ADMIN.username, "session", None)] * 2
    assert [json.loads(e.after) for e in created] == [
        {"clinician_id": None, "episode": 1, "muscles": "", "notes": "it's 'quoted'", "pain_after": None,
         "pain_before": 40.0,
         "pain_scale": "vas_100", "session_date": "2025-01-31", "side_effects": "bruising:mild;soreness:mild",
         "technique": "deep", "twitch_response": None, **dict.fromkeys(interchange.STRICTA_COLUMNS)},
        {"clinician_id": None, "episode": 1, "muscles": "a;b", "notes": "", "pain_after": 0.0,
         "pain_before": 45.25,
         "pain_scale": "vas_100", "session_date": "2025-02-07", "side_effects": "", "technique": "superficial",
         "twitch_response": False, **dict.fromkeys(interchange.STRICTA_COLUMNS)},
    ]
    assert created[0].at == created[1].at


def test_stored_columns_are_what_session_values_stores():
    from db.fields import session_values, stored_columns

    entries = file_validation.validate_rows(pd.DataFrame([
        {"patient_id": "P1", "session_date": "2025-01-31", "technique": "deep", "pain_before": "40",
         "muscles": " a ; b;", "twitch_response": "yes", "notes": "n"},
        {"patient_id": "P1", "session_date": "2025-02-07", "technique": "deep", "pain_before": "4",
         "pain_scale": "nrs_10"},
    ]), today=TODAY)
    stored = stored_columns(entries.columns)
    assert [{name: values[i] for name, values in stored.items()} for i in range(2)] == [
        session_values(entry) for entry in entries]
    assert list(stored) == list(session_values(entries[0]))


@pytest.mark.parametrize("severity", SEVERITIES)
def test_side_effect_codes_of_every_severity_pass_the_fast_path(severity, monkeypatch):
    text = ";".join(f"{code}:{severity}" for code in SIDE_EFFECTS)
    table = pd.DataFrame([{"patient_id": "P1", "session_date": "2025-01-31", "technique": "deep",
                           "pain_before": "40", "side_effects": text}])
    fast = file_validation._FastPath({name: table[name].tolist() for name in table}, 1, TODAY)
    assert fast.columns(0, 1)[1] == []  # no row left for SessionInput
