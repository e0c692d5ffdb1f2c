"""Tests that what patients report leaves and comes back through the interchange files (docs/DESIGN.md section 5,
"Patient-reported data in files"): the `diary`, `pgic` and `psfs` tables as .csv files or .xlsx sheets export and
import back identically, re-importing changes nothing, and a bad row refuses the whole file in one line naming its
row and column, with nothing written."""

from __future__ import annotations

from datetime import timedelta

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import select
from sqlmodel import Session

from db import corrections, patient_reports, report_exchange, report_files, report_import, spreadsheets
from db.access import AccessDenied, Actor
from db.cli import main
from db.engine import write_session
from db.file_problems import ImportRefused
from db.models import AuditEvent, Episode, TreatmentSession
from db.report_models import PgicResponse
from tests.conftest import BACKENDS
from tests.db.factories import ADMIN, SAMPLE_FILE, another_database, engine_on, import_file, table_counts

REPORT_TABLES = ("diary_entries", "patient_side_effects", "pgic_responses", "psfs_activities", "psfs_ratings")
DIARY_HOURS = {6: 7, 24: 25.5, 48: 47, 72: 70}  # hours after the session (noon of an imported session's date)


def add_reports(engine, sessions: int = 12) -> None:
    """Record diary entries (some windows missing), PGIC answers and PSFS activities and ratings for the first
    sessions of the sample data, through the app's own writes, as an admin at chosen real times."""
    with write_session(engine) as session:
        rows = session.execute(select(TreatmentSession).order_by(TreatmentSession.id).limit(sessions)).scalars().all()
        for number, row in enumerate(rows):
            noon = patient_reports.session_moment(row.session_date, None)
            for window, hours in DIARY_HOURS.items():
                if (number + window) % 5 == 0:
                    continue  # a missing entry
                effects = [("bruising", "mild")] if window == 24 and number % 2 else []
                if window == 48 and number % 3 == 0:
                    effects = [("headache", "significant"), ("other", "mild")]
                patient_reports.record_diary_entry(
                    session, actor=ADMIN, session_id=row.id, soreness=(7 - window // 12 + number) % 11,
                    note="a note, = not a formula" if effects else "", effects=effects,
                    now=noon + timedelta(hours=hours, microseconds=number * 1000))
            if number % 2 == 0:
                patient_reports.record_pgic(session, actor=ADMIN, episode_id=row.episode_id, score=1 + number % 7,
                                            before_session_id=row.id if number % 4 == 0 else None,
                                            now=noon - timedelta(hours=2))
        episodes = session.execute(select(Episode).order_by(Episode.id).limit(3)).scalars().all()
        for episode in episodes:
            started = patient_reports.session_moment(episode.started_on, None)
            for position in (1, 2):
                activity = patient_reports.name_psfs_activity(
                    session, actor=ADMIN, episode_id=episode.id, position=position,
                    name=["Climbing stairs", "Lifting a child, \"carefully\""][position - 1], now=started)
                if episode.id != episodes[-1].id:  # the last episode's activities are named, not rated yet
                    for days, score in ((0, 3), (14, 5)):
                        patient_reports.rate_psfs_activity(session, actor=ADMIN, activity_id=activity.id,
                                                           score=score + position, now=started + timedelta(days=days))


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request, tmp_path_factory):
    """Return the URL of a database holding the sample data as `python -m db seed` loads it, patients' reports
    included (sample_data/diary.csv, pgic.csv, psfs.csv); built once per backend. Tests here leave it as it was,
    but for export audit rows."""
    with another_database(request, request.param, tmp_path_factory.mktemp("seeded")) as url:
        assert main(["--url", url, "seed"]) == 0
        yield url


def tables_of(engine) -> dict[str, pd.DataFrame]:
    with Session(engine) as session:
        return report_exchange.report_tables(session, actor=ADMIN)


def test_the_seeded_reports_export_exactly_as_the_sample_files_hold_them(seeded, tmp_path):
    for kind in report_exchange.KINDS:
        path = tmp_path / f"{kind}.csv"
        assert main(["--url", seeded, "export", "--what", kind, str(path)]) == 0
        assert path.read_bytes() == (SAMPLE_FILE.parent / f"{kind}.csv").read_bytes()


def test_the_export_of_added_reports_holds_every_record_with_missing_entries_left_out(engine):
    import_file(engine, SAMPLE_FILE)
    add_reports(engine)
    tables = tables_of(engine)
    counts = table_counts(engine, REPORT_TABLES)
    assert len(tables["diary"]) == counts["diary_entries"] > 0
    assert len(tables["pgic"]) == counts["pgic_responses"] > 0
    assert len(tables["psfs"]) == counts["psfs_ratings"] + 2  # the two activities not rated yet: a row each
    assert list(tables["diary"].columns) == report_exchange.COLUMNS["diary"]
    assert set(tables["diary"]["window_h"]) == {"6", "24", "48", "72"}
    assert "headache:significant;other:mild" in set(tables["diary"]["side_effects"])
    assert tables["diary"]["recorded_at"].str.endswith("Z").all()
    assert set(tables["pgic"]["technique"]) > {""}  # some answers name the session they preceded


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_an_export_imports_back_identically_and_twice_changes_nothing(request, seeded, tmp_path, suffix):
    database_url = seeded
    with engine_on(seeded) as engine:
        before, counts = tables_of(engine), table_counts(engine, REPORT_TABLES)
    assert all(len(table) > 100 for table in before.values())
    with another_database(request, backend_of(seeded), tmp_path) as fresh:
        if suffix == ".xlsx":
            assert main(["--url", database_url, "export", str(tmp_path / "all.xlsx")]) == 0
            files = [(tmp_path / "all.xlsx", [])]
        else:
            assert main(["--url", database_url, "export", str(tmp_path / "sessions.csv")]) == 0
            files = [(tmp_path / "sessions.csv", [])]
            for kind in report_exchange.KINDS:
                assert main(["--url", database_url, "export", "--what", kind, str(tmp_path / f"{kind}.csv")]) == 0
                files.append((tmp_path / f"{kind}.csv", ["--what", kind]))
        for _ in range(2):  # the second time changes nothing
            for path, what in files:
                assert main(["--url", fresh, "import", *what, str(path)]) == 0
            with engine_on(fresh) as engine:
                after = tables_of(engine)
                assert table_counts(engine, REPORT_TABLES) == counts
            for kind in report_exchange.KINDS:
                pd.testing.assert_frame_equal(after[kind], before[kind])


def test_a_workbook_export_has_the_sessions_first_and_a_sheet_per_table(seeded, tmp_path):
    database_url = seeded
    path = tmp_path / "all.xlsx"
    assert main(["--url", database_url, "export", str(path)]) == 0
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["sessions", "diary", "pgic", "psfs"]
    header = next(book["diary"].iter_rows(max_row=1, values_only=True))
    assert list(header) == report_exchange.COLUMNS["diary"]


def backend_of(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def _bad_diary(database_url, tmp_path, row: int, column: str, value: str):
    path = tmp_path / "diary.csv"
    assert main(["--url", database_url, "export", "--what", "diary", str(path)]) == 0
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[row, column] = value
    table.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("column", "value", "says"), [
    ("soreness", "11", "not a whole number from 0 to 10"),
    ("window_h", "12", "is not one of 6, 24, 48, 72"),
    ("recorded_at", "02/03/2026 18:30", "is not a time"),
    ("side_effects", "pneumothorax:serious", "is not on the patient's checklist"),
    ("technique", "acupuncture", "is not one of superficial, deep, electrical"),
    ("session_date", "2020-01-01", "no session of"),
    ("soreness", "9", "never changes a patient's entry"),
])
def test_a_bad_row_refuses_the_file_in_one_line_naming_row_and_column(capsys, seeded, tmp_path, column, value,
                                                                      says):
    database_url = seeded
    path = _bad_diary(database_url, tmp_path, 2, column, value)
    if column == "soreness" and value == "9":  # a value the stored entry does not have
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        table.loc[2, "soreness"] = "10" if table.loc[2, "soreness"] == "9" else "9"
        table.to_csv(path, index=False)
    with engine_on(database_url) as engine:
        counts = table_counts(engine, REPORT_TABLES)
    capsys.readouterr()
    assert main(["--url", database_url, "import", "--what", "diary", str(path)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: {path}: row 4, column {column}: ") and says in last
    with engine_on(database_url) as engine:
        assert table_counts(engine, REPORT_TABLES) == counts


@pytest.fixture
def small(engine, database_url, tmp_path):
    """Return the URL of a database with the sample's first 60 sessions and reports added to a dozen of them."""
    path = tmp_path / "few.csv"
    path.write_text("".join(SAMPLE_FILE.read_text(encoding="utf-8").splitlines(keepends=True)[:61]), encoding="utf-8")
    import_file(engine, path)
    add_reports(engine)
    return database_url


def test_a_bad_sheet_row_in_a_workbook_names_the_sheet_and_writes_no_session(request, small, tmp_path, capsys):
    seeded = small
    path = tmp_path / "all.xlsx"
    assert main(["--url", small, "export", str(path)]) == 0
    book = openpyxl.load_workbook(path)
    book["pgic"]["E3"] = "8"  # score, row 3
    book.save(path)
    with another_database(request, backend_of(seeded), tmp_path) as fresh:
        capsys.readouterr()
        assert main(["--url", fresh, "import", str(path)]) == 1
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
            f"error: {path}: row 3, column score (sheet pgic): '8' is not a whole number from 1 to 7")
        with engine_on(fresh) as engine:
            assert table_counts(engine, ("sessions", *REPORT_TABLES)) == dict.fromkeys(("sessions", *REPORT_TABLES), 0)


def test_a_diary_row_for_a_session_the_file_does_not_name_refuses_everything(request, small, tmp_path, capsys):
    """All rows or none: a workbook whose diary names a session missing from its sessions sheet writes nothing."""
    seeded = small
    path = tmp_path / "all.xlsx"
    assert main(["--url", seeded, "export", str(path)]) == 0
    book = openpyxl.load_workbook(path)
    book["diary"]["B2"] = "2019-05-05"
    book.save(path)
    with another_database(request, backend_of(seeded), tmp_path) as fresh:
        assert main(["--url", fresh, "import", str(path)]) == 1
        assert "row 2, column session_date (sheet diary): no session of" in capsys.readouterr().err
        with engine_on(fresh) as engine:
            assert table_counts(engine, ("sessions", "diary_entries")) == {"sessions": 0, "diary_entries": 0}


def test_exporting_reports_is_audited_once(seeded, tmp_path):
    database_url = seeded
    path = tmp_path / "pgic.csv"
    with engine_on(database_url) as engine, Session(engine) as session:
        exports_before = len(session.scalars(select(AuditEvent.id).where(AuditEvent.action == "export")).all())
    assert main(["--url", database_url, "export", "--what", "pgic", str(path)]) == 0
    with engine_on(database_url) as engine, Session(engine) as session:
        details = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "export")
                                   .order_by(AuditEvent.id)).all()
    assert len(details) == exports_before + 1 and "patient reports" in details[-1]


BASE = {
    "diary": dict(patient_id="P1", session_date="2025-03-01", technique="deep", window_h="24",
                  recorded_at="2025-03-02T12:00:00Z", soreness="3"),
    "pgic": dict(patient_id="P1", condition="neck_pain", episode="1", answered_at="2025-03-01T12:00:00Z", score="2",
                 entered_by="patient"),
    "psfs": dict(patient_id="P1", condition="neck_pain", episode="1", position="1", activity="Stairs",
                 named_at="2025-03-01T12:00:00Z", named_by="patient", rated_at="2025-03-01T12:00:00Z", score="4",
                 rated_by="patient"),
}


def rows_of(kind: str, *changes: dict) -> tuple[str, str]:
    """Return (kind, CSV text) of one row per change: the table's base row with the change's cells."""
    return kind, pd.DataFrame([BASE[kind] | change for change in changes]).to_csv(index=False)


@pytest.mark.parametrize(("file", "where", "says"), [
    (rows_of("diary", {"pain": "5"}), "row 1, column pain", "unknown column"),
    (("diary", "patient_id,session_date,technique,window_h,recorded_at\nP1,2025-03-01,deep,24,2025-03-02T12:00Z\n"),
     "row 1, column soreness", "required column is missing"),
    (rows_of("diary", {}, {}), "row 3, column window_h", "the same record as row 2"),
    (rows_of("diary", {"side_effects": "other:mild", "note": ""}), "row 2, column note",
     "say in the note what the other side effect was"),
    (rows_of("diary", {"side_effects": "bruising:mild;bruising:serious"}), "row 2, column side_effects",
     "each side effect once"),
    (rows_of("diary", {"recorded_at": "2999-03-02T12:00:00Z"}), "row 2, column recorded_at", "is in the future"),
    (rows_of("diary", {"soreness": ""}), "row 2, column soreness", "is required"),
    (rows_of("pgic", {"session_date": "2025-03-01", "technique": ""}), "row 2, column technique",
     "needs its date and technique"),
    (rows_of("pgic", {"entered_by": "nurse"}), "row 2, column entered_by", "is not one of patient, clinician, admin"),
    (rows_of("psfs", {"rated_by": ""}), "row 2, column rated_by", "a rating needs its time, score and who entered it"),
    (rows_of("psfs", {}, {"activity": "Walking", "rated_at": "2025-03-15T12:00:00Z"}), "row 3, column activity",
     "row 2 gives this activity's activity otherwise"),
    (rows_of("psfs", {"position": "4"}), "row 2, column position", "not a whole number from 1 to 3"),
])
def test_a_malformed_table_is_refused_naming_row_and_column_before_anything_is_read(tmp_path, file, where, says):
    kind, text = file
    path = tmp_path / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        report_exchange.validate(kind, spreadsheets.read_table(path))
    assert str(refused.value).startswith(f"{where}: ") and says in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_formula_on_a_report_sheet_is_refused_naming_its_cell(tmp_path):
    path = tmp_path / "book.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "sessions"
    book.create_sheet("diary").append(report_exchange.COLUMNS["diary"])
    book["diary"].append(["P1", "2025-03-01", "deep", "", "24", "2025-03-02T12:00:00Z", "=1+2", "", ""])
    book.save(path)
    with pytest.raises(ImportRefused, match=r"^row 2, column G \(sheet diary\): a formula: type the value itself$"):
        report_files.read_sheets(path.read_bytes(), path.name)


def test_a_table_asked_of_a_workbook_is_refused(tmp_path):
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(ImportRefused, match="is imported from a .csv file"):
        report_files.read_import(path, "diary")


@pytest.mark.parametrize("role", ["manager", "patient"])
def test_only_clinicians_and_admins_export_reports_and_only_admins_import_a_diary(engine, role):
    import_file(engine, SAMPLE_FILE)
    actor = Actor(id=None, username=role, role=role, patient_id=1 if role == "patient" else None)
    clinician = Actor(id=None, username="clin", role="clinician")
    rows = {"diary": report_exchange.validate("diary", pd.DataFrame([BASE["diary"]]))}
    with write_session(engine) as session:
        with pytest.raises(AccessDenied):
            report_exchange.report_tables(session, actor=actor)
        with pytest.raises(AccessDenied):
            report_exchange.export_tables(session, actor=actor)
        for who in (actor, clinician):
            with pytest.raises(AccessDenied):
                report_import.import_reports(session, actor=who, rows=rows)
        assert set(report_exchange.report_tables(session, actor=clinician)) == set(report_exchange.KINDS)


def test_a_pgic_answer_whose_session_was_deleted_re_imports_unchanged(small, tmp_path, capsys):
    with engine_on(small) as engine, write_session(engine) as session:
        answer = session.scalars(select(PgicResponse).where(PgicResponse.before_session_id.is_not(None))).first()
        corrections.delete_session(session, actor=ADMIN, session_id=answer.before_session_id, reason="entered twice")
    path = tmp_path / "pgic.csv"
    assert main(["--url", small, "export", "--what", "pgic", str(path)]) == 0
    capsys.readouterr()
    assert main(["--url", small, "import", "--what", "pgic", str(path)]) == 0
    assert "PGIC answers: 0 new" in capsys.readouterr().err
