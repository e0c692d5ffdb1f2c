"""The patient-reported tables in an .xlsx workbook: each on a sheet of its name (`diary`, `pgic`, `psfs`) after the
sessions' first sheet (docs/DESIGN.md section 5), read cell for cell as `db.xlsx_format` reads the first sheet, and
written with every cell kept as text."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pandas as pd
from sqlmodel import Session

from db import file_validation, report_exchange, spreadsheets, xlsx_format
from db.access import Actor
from db.file_problems import ImportRefused, RowProblem, column_letter, file_refused
from db.file_validation import ValidRows
from db.reasons import CommandFailed
from db.report_exchange import COLUMNS, KINDS
from db.spreadsheets import write_atomically


def read_sheets(data: bytes, shown: str) -> dict[str, pd.DataFrame]:
    """Return the `diary`, `pgic` and `psfs` sheets an .xlsx workbook holds (none: an empty dict), cells as text,
    each row's line in `attrs["rows"]`. A cell holding a formula is refused: these sheets hold values."""
    import openpyxl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        except Exception:  # noqa: BLE001 - the session sheet's reading has refused a damaged file already
            raise file_refused(shown, "the file is not a readable Excel workbook (.xlsx)") from None
        tables = {}
        for kind in KINDS:
            if kind in book.sheetnames:
                tables[kind] = _sheet_table(book[kind], kind, shown)
        book.close()
    return tables


def _sheet_table(sheet, kind: str, shown: str) -> pd.DataFrame:
    header, rows, lines, problems = None, [], [], []
    for line, cells in enumerate(sheet.iter_rows(max_col=len(COLUMNS[kind]) + 8), start=1):
        texts = []
        for position, one in enumerate(cells):
            if getattr(one, "data_type", None) == "f":
                problems.append(RowProblem(line, f"{column_letter(position)} (sheet {kind})", "",
                                           "a formula: type the value itself"))
                texts.append("?")
            else:
                texts.append(xlsx_format.cell_text(one, line, position, problems, set()))
        if not any(text.strip() for text in texts):
            continue
        if header is None:
            header = [text.strip() for text in texts]
            continue
        rows.append(texts[:len(header)])
        lines.append(line)
    if problems:
        raise ImportRefused(problems)
    if header is None:
        raise file_refused(shown, f"the sheet {kind} is empty; it needs a header row")
    table = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header, dtype=object)
    table = table.loc[:, [name for name in header if name]]
    table.attrs["rows"] = tuple(lines)
    return table


def export_sheets(session: Session, *, actor: Actor, purpose: str = "XLSX") -> dict[str, pd.DataFrame]:
    """Return the sheets of an .xlsx export: the sessions first (`db.exporting`), then `diary`, `pgic`, `psfs`; each
    part's export audited."""
    from db import exporting  # not loaded by an import, which never exports (issue #15: its start-up time)

    return {"sessions": exporting.export_table(session, actor=actor, purpose=purpose),
            **report_exchange.export_tables(session, actor=actor, purpose=purpose)}


def workbook_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    """Return the sheets as the bytes of an .xlsx file (for a download)."""
    buffer = io.BytesIO()
    xlsx_format.write_sheets(sheets, buffer)
    return buffer.getvalue()


def save_workbook(sheets: dict[str, pd.DataFrame], path: Path) -> None:
    """Write the sheets to an .xlsx file atomically: the whole file appears, or the one there before stays."""
    write_atomically(Path(path), lambda file: xlsx_format.write_sheets(sheets, file))


def counts(sheets: dict[str, pd.DataFrame]) -> str:
    """Return the rows of each patient-reported sheet in words: '12 diary entries, 3 PGIC answers, …'."""
    return ", ".join(f"{len(sheets[kind])} {report_exchange.WHAT[kind]}" for kind in report_exchange.KINDS
                     if kind in sheets)


def read_import(path: Path, what: str = "sessions") -> tuple[ValidRows | None, dict[str, list]]:
    """Return what a file to import holds, every row checked (ImportRefused names the first bad cell): with `what`
    'sessions' its sessions, and from an .xlsx its `diary`, `pgic` and `psfs` sheets; with a table's name, that
    table from a .csv file (no sessions: None)."""
    if what != "sessions":
        if path.suffix.lower() != ".csv":
            raise file_refused(path.name, f"a {what} table is imported from a .csv file; an .xlsx workbook's {what} "
                                          "sheet is imported with its sessions")
        return None, {what: report_exchange.validate(what, spreadsheets.read_table(path))}
    entries = file_validation.validate_rows(spreadsheets.read_table(path))
    sheets = read_sheets(path.read_bytes(), path.name) if path.suffix.lower() == ".xlsx" else {}
    return entries, {kind: report_exchange.validate(kind, table, sheet=kind) for kind, table in sheets.items()}


def export_file(session: Session, *, actor: Actor, path: Path, what: str = "sessions") -> str | None:
    """Export to an .xlsx workbook (sessions and every patient-reported sheet) or, with `what`, one patient-reported
    table to a .csv; return the line saying what was written, or None for the exports `db.cli` writes itself."""
    suffix = path.suffix.lower()
    if what != "sessions" and suffix != ".csv":
        raise CommandFailed(f"--what {what}: a .csv file holds one table; an .xlsx export holds every table as a "
                            "sheet, and a .json Bundle every resource")
    if suffix == ".xlsx":
        sheets = export_sheets(session, actor=actor)
        save_workbook(sheets, path)
        return f"{path}: {len(sheets['sessions'])} sessions exported, with {counts(sheets)}"
    if what == "sessions":
        return None
    table = report_exchange.export_tables(session, actor=actor, purpose="CSV")[what]
    spreadsheets.write_table(table, path)
    return f"{path}: {len(table)} {report_exchange.WHAT[what]} exported"


def import_file(url: str, path: Path, *, actor: Actor, what: str = "sessions", take_file_values: bool = False):
    """Import a file in one transaction, all rows or none (`read_import` says what it holds); return (the sessions'
    ImportResult or None, the patient reports' ReportImportResult or None)."""
    from db import importing, report_import
    from db.engine import make_engine, write_session

    if not path.is_file():
        raise CommandFailed(f"{path}: no such file")
    entries, rows = read_import(path, what)
    engine = make_engine(url)
    try:
        with write_session(engine) as session:
            result = None if entries is None else importing.import_sessions(
                session, actor=actor, entries=entries, source=path.name, take_file_values=take_file_values)
            reports = report_import.import_reports(session, actor=actor, rows=rows, source=path.name,
                                                   sheets=entries is not None) if rows else None
        return result, reports
    finally:
        engine.dispose()
