"""`python -m db COMMAND`: init, seed, import, export, summary (DESIGN.md section 5)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlmodel import Session

from analytics import outcomes
from db import interchange, queries
from db.engine import database_url, make_engine, migrate, write_session

SAMPLE_FILE = Path(__file__).resolve().parent.parent / "sample_data" / "sessions.csv"


class CommandFailed(Exception):
    """A command could not do its work; the message is the one-line reason printed on standard error."""


def cmd_init(args) -> str:
    migrate(args.url)
    return "database is at the current schema"


def _import_file(url: str, path: Path) -> interchange.ImportResult:
    if not path.is_file():
        raise CommandFailed(f"{path}: no such file")
    entries = interchange.validate_rows(interchange.read_table(path))
    engine = make_engine(url)
    try:
        with write_session(engine) as session:
            return interchange.import_sessions(session, entries)
    finally:
        engine.dispose()


def cmd_seed(args) -> str:
    migrate(args.url)
    engine = make_engine(args.url)
    try:
        with Session(engine) as session:
            existing = queries.count_sessions(session)
    finally:
        engine.dispose()
    if existing:
        if args.if_empty:
            return f"database already holds {existing} sessions; sample data not loaded"
        raise CommandFailed(f"database already holds {existing} sessions; seed loads only into an empty database")
    result = _import_file(args.url, SAMPLE_FILE)
    return f"loaded {result.inserted} sample sessions"


def cmd_import(args) -> str:
    migrate(args.url)
    try:
        result = _import_file(args.url, Path(args.file))
    except interchange.ImportRefused as refused:
        table = refused.table().to_string(index=False)
        print(f"{args.file}: nothing imported; {len(refused.problems)} problem(s):\n{table}", file=sys.stderr)
        raise CommandFailed(f"{args.file}: {refused}") from None
    created = f"; new clinician accounts: {', '.join(result.new_clinicians)}" if result.new_clinicians else ""
    return f"{args.file}: {result.inserted} added, {result.updated} updated, {result.unchanged} unchanged{created}"


def cmd_export(args) -> str:
    path = Path(args.file)
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise CommandFailed(f"{path.name}: export to .csv or .xlsx (FHIR .json is not available yet)")
    engine = make_engine(args.url)
    try:
        with Session(engine) as session:
            table = interchange.export_table(session)
    finally:
        engine.dispose()
    interchange.write_table(table, path)
    return f"{path}: {len(table)} sessions exported"


def cmd_summary(args) -> str:
    engine = make_engine(args.url)
    try:
        with Session(engine) as session:
            if args.responders:
                table = outcomes.responder_table(queries.responder_counts(session)).round(4)
            else:
                table = outcomes.summary_table(outcomes.technique_curve(queries.technique_moments(session)))
    finally:
        engine.dispose()
    sys.stdout.write(table.to_csv(index=False, lineterminator="\n"))
    return ""


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of `python -m db`."""
    p = argparse.ArgumentParser(prog="python -m db", description="Needle Outcomes database commands.")
    p.add_argument("--url", default=None, help="database URL (default: DATABASE_URL or the SQLite file in data/)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("init", help="create or migrate the database to the current schema").set_defaults(run=cmd_init)
    seed = sub.add_parser("seed", help="load sample_data/ into an empty database")
    seed.add_argument("--if-empty", action="store_true", help="do nothing (and succeed) if data is already there")
    seed.set_defaults(run=cmd_seed)
    imp = sub.add_parser("import", help="import sessions from CSV or XLSX; all rows or none")
    imp.add_argument("file")
    imp.set_defaults(run=cmd_import)
    exp = sub.add_parser("export", help="export sessions; format from the suffix (.csv, .xlsx)")
    exp.add_argument("file")
    exp.set_defaults(run=cmd_export)
    summary = sub.add_parser("summary", help="print the per-technique outcome table as CSV")
    summary.add_argument("--responders", action="store_true", help="print responder shares at the last session")
    summary.set_defaults(run=cmd_summary)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit status (0 on success, 1 with a one-line reason on standard error)."""
    args = parser().parse_args(argv)
    args.url = args.url or database_url()
    try:
        message = args.run(args)
    except (CommandFailed, interchange.ImportRefused, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if message:
        print(message, file=sys.stderr)
    return 0
