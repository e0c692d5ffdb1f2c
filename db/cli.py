"""`python -m db COMMAND`: init, seed, import, export, summary, backup, restore, users (DESIGN.md section 5).

The command line acts as an admin (`Actor.command_line()`): whoever can run it can read the database file anyway.
Every change it makes is audited under `cli:<login name>`.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from analytics import outcomes
from db import accounts, backup, fhir, interchange, queries
from db.access import Actor
from db.engine import database_url, make_engine, migrate, write_session

SAMPLE_FILE = Path(__file__).resolve().parent.parent / "sample_data" / "sessions.csv"
# Demo accounts made by `seed` for the sample data only; the README lists them as demo-only.
DEMO_ACCOUNTS = (
    ("admin", "admin", "demo-admin-password", None),
    ("manager", "manager", "demo-manager-password", None),
    ("clin_ahmed", "clinician", "demo-clinician-password", None),
    ("patient", "patient", "demo-patient-password", "P0002"),
)


class CommandFailed(Exception):
    """A command could not do its work; the message is the one-line reason printed on standard error."""


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def cmd_init(args) -> str:
    migrate(args.url)
    return "database is at the current schema"


def _import_file(url: str, path: Path, actor: Actor, take_file_values: bool = False) -> interchange.ImportResult:
    if not path.is_file():
        raise CommandFailed(f"{path}: no such file")
    entries = interchange.validate_rows(interchange.read_table(path))
    with _engine(url) as engine, write_session(engine) as session:
        return interchange.import_sessions(session, actor=actor, entries=entries, source=path.name,
                                           take_file_values=take_file_values)


def cmd_seed(args) -> str:
    migrate(args.url)
    with _engine(args.url) as engine, Session(engine) as session:
        existing = queries.count_sessions(session, actor=args.actor)
    if existing:
        if args.if_empty:
            return f"database already holds {existing} sessions; sample data not loaded"
        raise CommandFailed(f"database already holds {existing} sessions; seed loads only into an empty database")
    result = _import_file(args.url, SAMPLE_FILE, args.actor)
    with _engine(args.url) as engine, write_session(engine) as session:
        for username, role, password, patient in DEMO_ACCOUNTS:
            if role == "clinician":  # the sample's clinician account exists already, without a password
                accounts.reset_password(session, actor=args.actor, username=username, password=password)
            else:
                accounts.add_user(session, actor=args.actor, username=username, role=role, password=password,
                                  patient_pseudonym=patient)
    return f"loaded {result.inserted} sample sessions and {len(DEMO_ACCOUNTS)} demo accounts (see README)"


def cmd_import(args) -> str:
    migrate(args.url)
    try:
        result = _import_file(args.url, Path(args.file), args.actor, args.take_file_values)
    except interchange.ImportRefused as refused:
        table = refused.table().to_string(index=False)
        print(f"{args.file}: nothing imported; {len(refused.problems)} problem(s):\n{table}", file=sys.stderr)
        raise CommandFailed(f"{args.file}: {refused}") from None
    for line in result.report():  # every value the file changed, and the corrections it left alone
        print(line, file=sys.stderr)
    created = f"; new clinician accounts: {', '.join(result.new_clinicians)}" if result.new_clinicians else ""
    kept = "; run again with --take-file-values to take the file's values" if result.conflicts else ""
    return f"{args.file}: {result.summary()}{created}{kept}"


def cmd_export(args) -> str:
    path = Path(args.file)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx", ".json"):
        raise CommandFailed(f"{path.name}: export to .csv or .xlsx (interchange format) or .json (FHIR R4 Bundle)")
    with _engine(args.url) as engine, write_session(engine) as session:  # a write: the export is audited
        if suffix == ".json":
            bundle = fhir.export_bundle(session, actor=args.actor)
            fhir.write_bundle(bundle, path)
            kinds = {}
            for entry in bundle["entry"]:
                kinds[entry["resource"]["resourceType"]] = kinds.get(entry["resource"]["resourceType"], 0) + 1
            counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
            return f"{path}: FHIR R4 Bundle of {kinds.get('Procedure', 0)} sessions exported ({counts})"
        table = interchange.export_table(session, actor=args.actor)
        interchange.write_table(table, path)
    return f"{path}: {len(table)} sessions exported"


def cmd_backup(args) -> str:
    path = Path(args.file)
    version = backup.backup(args.url, path, actor=args.actor)
    return f"{path}: backup written (schema {version})"


def cmd_restore(args) -> str:
    return backup.restore(args.url, Path(args.file), actor=args.actor)


def cmd_summary(args) -> str:
    with _engine(args.url) as engine, Session(engine) as session:
        if args.responders:
            table = outcomes.responder_table(queries.responder_counts(session, actor=args.actor)).round(4)
        else:
            moments = queries.technique_moments(session, actor=args.actor)
            table = outcomes.summary_table(outcomes.technique_curve(moments))
    sys.stdout.write(table.to_csv(index=False, lineterminator="\n"))
    return ""


def _new_password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(f"Password for {args.username}: ")


def cmd_users(args) -> str:
    with _engine(args.url) as engine:
        if args.action == "list":
            with Session(engine) as session:
                table = accounts.users(session, actor=args.actor)
            sys.stdout.write(table.to_csv(index=False, lineterminator="\n"))
            return ""
        with write_session(engine) as session:
            if args.action == "add":
                password = None if args.no_password else _new_password(args)
                accounts.add_user(session, actor=args.actor, username=args.username, role=args.role,
                                  password=password, email=args.email, patient_pseudonym=args.patient)
                return f"added {args.role} account {args.username}"
            if args.action in ("disable", "enable"):
                accounts.set_active(session, actor=args.actor, username=args.username, active=args.action == "enable")
                return f"{args.action}d {args.username}"
            accounts.reset_password(session, actor=args.actor, username=args.username, password=_new_password(args))
            return f"password of {args.username} reset"


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of `python -m db`."""
    p = argparse.ArgumentParser(prog="python -m db", description="Needle Outcomes database commands.")
    p.add_argument("--url", default=None, help="database URL (default: DATABASE_URL or the SQLite file in data/)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("init", help="create or migrate the database to the current schema").set_defaults(run=cmd_init)
    seed = sub.add_parser("seed", help="load sample_data/ and demo accounts into an empty database")
    seed.add_argument("--if-empty", action="store_true", help="do nothing (and succeed) if data is already there")
    seed.set_defaults(run=cmd_seed)
    for name, run, text in (
        ("import", cmd_import, "import sessions from CSV or XLSX; all rows or none"),
        ("export", cmd_export, "export sessions; format from the suffix (.csv, .xlsx, .json: FHIR R4)"),
        ("backup", cmd_backup, "write a consistent copy of the whole database while the app runs"),
        ("restore", cmd_restore, "replace the database with a backup (its schema version checked first)"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("file")
        command.set_defaults(run=run)
    sub.choices["import"].add_argument(
        "--take-file-values", action="store_true",
        help="overwrite sessions corrected in the app since their import with the file's values (default: keep)")
    summary = sub.add_parser("summary", help="print the per-technique outcome table as CSV")
    summary.add_argument("--responders", action="store_true", help="print responder shares at the last session")
    summary.set_defaults(run=cmd_summary)
    users = sub.add_parser("users", help="manage accounts: add, list, disable, enable, reset-password")
    users.add_argument("action", choices=["add", "list", "disable", "enable", "reset-password"])
    users.add_argument("username", nargs="?")
    users.add_argument("--role", choices=["clinician", "manager", "patient", "admin"], default="clinician")
    users.add_argument("--email", help="e-mail that maps an organisation (OpenID Connect) login to this account")
    users.add_argument("--patient", help="the patient id a patient account is linked to")
    users.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users.add_argument("--no-password", action="store_true", help="no password: organisation login only")
    users.set_defaults(run=cmd_users)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit status (0 on success, 1 with a one-line reason on standard error)."""
    p = parser()
    args = p.parse_args(argv)
    if args.command == "users" and args.action != "list" and not args.username:
        p.error("users: a username is needed")
    args.url = args.url or database_url()
    args.actor = Actor.command_line()
    try:
        message = args.run(args)
    except (CommandFailed, interchange.ImportRefused, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if message:
        print(message, file=sys.stderr)
    return 0
