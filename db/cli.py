"""`python -m db COMMAND`: init, seed, import, export, summary, backup, restore, users, audit, app-role.

The command line acts as an admin (`Actor.command_line()`): whoever can run it can read the database file anyway.
Every change it makes is audited under `cli:<login name>`.

Every failure ends with one line on standard error, `error: <reason>`, and exit status 1 (130 when interrupted),
never a traceback: `db.reasons` says what each kind of failure means. A failure of a kind nobody foresaw says so on
that line; `python -m db --debug COMMAND` then prints its traceback after it. Commands other than `init` and `seed`
refuse a database that does not exist rather than create an empty one (a mistyped SQLite path).

Each command imports what it needs when it runs (issue #15: most of `summary`'s time went to importing libraries):
`--help` loads no database or analysis library, and `summary` neither password hashing nor the migrations; its
default table (db.fast_summary) loads neither pandas nor SQLModel and the table models, and URLs are checked by
db.urls, which needs SQLAlchemy alone.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from db.access import Actor
from db.reasons import CommandFailed, Interrupted, reason
from db.seeding import DEMO_ACCOUNTS  # noqa: F401 (the tests and README screenshots log in with them)

if TYPE_CHECKING:
    from sqlalchemy import Engine


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    from db.engine import make_engine

    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def cmd_init(args) -> str:
    from db.engine import migrate

    migrate(args.url)
    return "database is at the current schema"


def cmd_seed(args) -> str:
    from db import seeding

    return seeding.seed(args.url, args.actor, if_empty=args.if_empty)


def cmd_import(args) -> str:
    """Import each file in its own transaction, in the order given: a network's history split into files of at most
    db.csv_format.MAX_ROWS sessions is imported by one command, which loads the libraries and checks the schema once.
    A missing file refuses them all; a refused file, or Ctrl-C, stops the command: the files before it stay
    imported, it and the files after it add nothing, and the error line says so."""
    from db import memory
    from db.engine import migrate

    missing = [file for file in args.files if not Path(file).is_file()]
    if missing:
        raise CommandFailed(f"{missing[0]}: no such file" + ("; nothing imported" if len(args.files) > 1 else ""))
    migrate(args.url)
    lines = []
    for file in args.files:
        try:
            lines.append(_import_file(args, file))
        except (Exception, KeyboardInterrupt) as error:  # Ctrl-C too: the files before it stay imported
            if len(args.files) == 1:
                raise
            why, later = reason(error, args.url), len(args.files) - len(lines) - 1
            stopped = Interrupted if isinstance(error, KeyboardInterrupt) else CommandFailed
            raise stopped((why if why.startswith((f"{file}:", f"{Path(file)}:")) else f"{file}: {why}")
                          + (f"; the {len(lines)} file(s) before it were imported" if lines
                             else "; no file was imported")
                          + (f", the {later} after it were not" if lines and later else "")) from error
        if len(lines) < len(args.files):
            print(lines[-1], file=sys.stderr, flush=True)  # a long import says how far it has come
            memory.give_back()  # what this file let go, before the next file's peak goes past it
    return lines[-1]


def _import_file(args, file: str) -> str:
    """Import one file, all rows or none; return the line saying what it did."""
    from db import file_problems, report_files

    try:  # sessions, with an .xlsx workbook's patient-reported sheets, or (--what) one such table: all or none
        result, reports = report_files.import_file(args.url, Path(file), actor=args.actor, what=args.what,
                                                   take_file_values=args.take_file_values)
    except file_problems.ImportRefused as refused:
        table = refused.table().to_string(index=False)
        print(f"{file}: nothing imported; {len(refused.problems)} problem(s):\n{table}", file=sys.stderr)
        raise CommandFailed(f"{file}: {refused}") from None
    reported = f"; {reports.summary()}" if reports else ""
    if result is None:
        return f"{file}: {reports.summary()}"
    for line in result.report():  # every value the file changed, and the corrections it left alone
        print(line, file=sys.stderr)
    created = f"; new clinician accounts: {', '.join(result.new_clinicians)}" if result.new_clinicians else ""
    kept = "; run again with --take-file-values to take the file's values" if result.conflicts else ""
    return f"{file}: {result.summary()}{reported}{created}{kept}"


def cmd_export(args) -> str:
    from db import exporting, fhir, spreadsheets
    from db.engine import write_session

    path = Path(args.file)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx", ".json"):
        raise CommandFailed(f"{path.name}: export to .csv or .xlsx (interchange format) or .json (FHIR R4 Bundle)")
    with _engine(args.url) as engine, write_session(engine) as session:  # a write: the export is audited
        from db import report_files  # an .xlsx workbook, or a .csv of what patients report (--what)

        done = report_files.export_file(session, actor=args.actor, path=path, what=args.what)
        if done:
            return done
        if suffix == ".json":
            bundle = fhir.export_bundle(session, actor=args.actor)
            fhir.write_bundle(bundle, path)
            kinds = {}
            for entry in bundle["entry"]:
                kinds[entry["resource"]["resourceType"]] = kinds.get(entry["resource"]["resourceType"], 0) + 1
            counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
            return f"{path}: FHIR R4 Bundle of {kinds.get('Procedure', 0)} sessions exported ({counts})"
        table = exporting.export_table(session, actor=args.actor)
        spreadsheets.write_table(table, path)
    return f"{path}: {len(table)} sessions exported"


def cmd_remind(args) -> str:
    from db import reminders

    return reminders.run(args.url, actor=args.actor, dry_run=args.dry_run)


def cmd_backup(args) -> str:
    from db import backup
    from db.access import AccessDenied
    from db.engine import DatabaseBusy

    path = Path(args.file)
    try:
        version = backup.backup(args.url, path, actor=args.actor)
    except (backup.BackupRefused, DatabaseBusy, AccessDenied):
        raise  # their reasons say already what was kept
    except Exception as error:  # whatever failed, the backup removed its partial file: say so
        raise CommandFailed(f"{reason(error, args.url)}; nothing was saved") from error
    return f"{path}: backup written (schema {version})"


def cmd_restore(args) -> str:
    from db import backup

    return backup.restore(args.url, Path(args.file), actor=args.actor)


def cmd_summary(args) -> str:
    rule = _responder_rule(args)
    if not any(getattr(args, kind) for kind in args.summary_kinds):
        # The per-technique table (analytics.outcomes.summary_table of the roll-up's sums) without pandas or
        # SQLModel: their imports were nearly all of this command's time (issue #15); tests hold the two equal.
        from db import fast_summary

        sys.stdout.write(fast_summary.technique_summary(args.url, actor=args.actor))
        return ""
    from sqlmodel import Session

    from analytics import outcomes
    from db import queries

    with _engine(args.url) as engine, Session(engine) as session:
        if args.responders:
            last = outcomes.last_from_pain(queries.episode_last_pain(session, actor=args.actor))
            table = outcomes.responder_table(outcomes.count_responders(last, rule=rule)).round(4)
        elif args.safety:
            from analytics import safety

            table = safety.summary_table(queries.safety_events(session, actor=args.actor))
        elif args.reached:
            from analytics import survival

            sessions = queries.outcome_sessions(session, actor=args.actor)
            table = survival.reached_summary(outcomes.cumulative_improvement(sessions), rule)
        elif args.calibration:
            from analytics import recovery_calibration

            sessions = queries.outcome_sessions(session, actor=args.actor)
            table = recovery_calibration.calibration_table(outcomes.cumulative_improvement(sessions))
        elif args.stricta:
            from analytics import stricta
            from db import stricta_queries

            table = stricta.table_from_counts(*stricta_queries.stricta_counts(session, actor=args.actor))
        elif args.soreness:
            from analytics import patient_reported
            from db import report_queries

            table = patient_reported.soreness_table(report_queries.diary_soreness(session, actor=args.actor))
    sys.stdout.write(table.to_csv(index=False, lineterminator="\n"))
    return ""


def _responder_rule(args):
    """Return the responder rule of `--mcid-points` and `--min-baseline` (the defaults of docs/DESIGN.md §3)."""
    from clinic.outcomes import DEFAULT_RULE, ResponderRule

    given = {name: value for name, value in (("--mcid-points", args.mcid_points),
                                             ("--min-baseline", args.min_baseline)) if value is not None}
    if given and not (args.responders or args.reached):
        raise CommandFailed(f"{', '.join(given)}: the responder rule applies to --responders and --reached")
    for name, value in given.items():
        if not 0 <= value <= 100:  # NaN too
            raise CommandFailed(f"{name}: {value:g} is not a number of points from 0 to 100")
    return ResponderRule(
        mcid_points=DEFAULT_RULE.mcid_points if args.mcid_points is None else args.mcid_points,
        min_baseline_points=DEFAULT_RULE.min_baseline_points if args.min_baseline is None else args.min_baseline)


def cmd_audit(args) -> str:
    from sqlmodel import Session

    from db import audit_chain

    with _engine(args.url) as engine, Session(engine) as session:
        check = audit_chain.verify_chain(session, actor=args.actor)
    if check.broken_at is not None:
        raise CommandFailed(f"audit trail broken at row {check.broken_at} ({check.rows} rows checked): {check.reason}")
    print(f"audit trail intact: {check.rows} rows checked; chain head {check.head}")
    return ""


def cmd_app_role(args) -> str:
    from db import roles

    with _engine(args.url) as engine, engine.begin() as connection:
        roles.grant_app_role(connection, args.role)
    return (f"role {args.role} may run the app: it reads and writes clinical data, may only append to the audit "
            "trail, and cannot alter it")


def _new_password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(f"Password for {args.username}: ")


def cmd_users(args) -> str:
    from sqlmodel import Session

    from db import accounts
    from db.engine import write_session

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
            if args.action == "background" and args.training is None and args.years is None:
                raise CommandFailed("background: give --training, --years or both (one not given is cleared)")
            if args.action == "background" or (args.action == "add" and (args.training or args.years is not None)):
                accounts.set_needling_background(session, actor=args.actor, username=args.username,
                                                 training=args.training, years=args.years)
            if args.action in ("add", "background"):
                return f"{'added' if args.action == 'add' else 'recorded the needling background of'} " \
                       f"{args.username}"
            if args.action in ("disable", "enable"):
                accounts.set_active(session, actor=args.actor, username=args.username, active=args.action == "enable")
                return f"{args.action}d {args.username}"
            accounts.reset_password(session, actor=args.actor, username=args.username, password=_new_password(args))
            return f"password of {args.username} reset"


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of `python -m db`."""
    p = argparse.ArgumentParser(prog="python -m db", description="Needle Outcomes database commands.")
    p.add_argument("--url", default=None, help="database URL (default: DATABASE_URL or the SQLite file in data/)")
    p.add_argument("--debug", action="store_true", help="after a failure's one-line reason, print its traceback")
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
        if name == "import":
            command.add_argument("files", nargs="+", metavar="file", help="one or more, each imported whole or not "
                                                                          "at all, in this order")
        else:
            command.add_argument("file")
        command.set_defaults(run=run)
    for name in ("import", "export"):
        sub.choices[name].add_argument(
            "--what", choices=["sessions", "diary", "pgic", "psfs"], default="sessions",
            help="with a .csv file: which table (default sessions; diary, pgic, psfs: what patients report)")
    sub.choices["import"].add_argument(
        "--take-file-values", action="store_true",
        help="overwrite sessions corrected in the app since their import with the file's values (default: keep)")
    remind = sub.add_parser("remind", help="e-mail patients the diary entries due now (needs SMTP settings)")
    remind.add_argument("--dry-run", action="store_true", help="list whom reminders would go to; send nothing")
    remind.set_defaults(run=cmd_remind)
    summary = sub.add_parser("summary", help="print the per-technique outcome table as CSV")
    kind = summary.add_mutually_exclusive_group()
    kind.add_argument("--responders", action="store_true", help="print responder shares at the last session")
    kind.add_argument("--safety", action="store_true",
                      help="print side effects per 100 sessions with exact Poisson intervals")
    kind.add_argument("--reached", action="store_true",
                      help="print the Kaplan–Meier share of episodes reaching 15, 30, 50 %% by each session")
    kind.add_argument("--calibration", action="store_true",
                      help="print the held-out coverage of the expected-recovery bands (50 %% and 80 %%)")
    kind.add_argument("--stricta", action="store_true",
                      help="print how completely each STRICTA needling item is recorded, and its distribution")
    kind.add_argument("--soreness", action="store_true",
                      help="print patient-reported soreness at 24, 48 and 72 h by technique and adjunct")
    summary.add_argument("--mcid-points", type=float, metavar="POINTS",
                         help="responder rule: the minimal important difference on 0–100 (default 20)")
    summary.add_argument("--min-baseline", type=float, metavar="POINTS",
                         help="responder rule: below this first pain (0–100, default 40) the points must be reached "
                              "too")
    summary.set_defaults(run=cmd_summary, summary_kinds=[action.dest for action in kind._group_actions])
    users = sub.add_parser("users", help="manage accounts: add, list, disable, enable, reset-password, background")
    users.add_argument("action", choices=["add", "list", "disable", "enable", "reset-password", "background"])
    users.add_argument("username", nargs="?")
    users.add_argument("--role", choices=["clinician", "manager", "patient", "admin"], default="clinician")
    users.add_argument("--email", help="e-mail that maps an organisation (OpenID Connect) login to this account")
    users.add_argument("--patient", help="the patient id a patient account is linked to")
    users.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users.add_argument("--no-password", action="store_true", help="no password: organisation login only")
    users.add_argument("--training", help="add, background: a clinician's needling training (STRICTA item 5)")
    users.add_argument("--years", type=float, help="add, background: years of needling practice (background sets "
                                                   "both: one not given is cleared)")
    users.set_defaults(run=cmd_users)
    trail = sub.add_parser("audit", help="verify: check the audit trail's hash chain, row by row")
    trail.add_argument("action", choices=["verify"])
    trail.set_defaults(run=cmd_audit)
    app_role = sub.add_parser("app-role", help="PostgreSQL: let ROLE run the app, appending to the audit trail only")
    app_role.add_argument("role", help="an existing login role that does not own the tables")
    app_role.set_defaults(run=cmd_app_role)
    return p


# Commands that may create the database; every other one refuses a database that is not there.
CREATES_DATABASE = ("init", "seed")


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit status (0 on success, non-zero with a one-line reason on standard error)."""
    p = parser()
    args = p.parse_args(argv)
    if args.command == "users" and args.action != "list" and not args.username:
        p.error("users: a username is needed")
    from db.urls import database_url, engine_url, require_database  # not db.engine: no SQLModel for a URL

    args.url = args.url or database_url()
    args.actor = Actor.command_line()
    try:
        args.url = engine_url(args.url)
        if args.command not in CREATES_DATABASE:
            require_database(args.url)
        message = args.run(args)
    except (Exception, KeyboardInterrupt) as error:
        print(f"error: {reason(error, args.url)}", file=sys.stderr)
        if args.debug:
            traceback.print_exception(error, file=sys.stderr)
        return 130 if isinstance(error, KeyboardInterrupt) else 1
    if message:
        print(message, file=sys.stderr)
    return 0
