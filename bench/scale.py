"""Scale benchmark of issue 6: page times, summary, saves, import and memory at 10k, 100k and 1M sessions.

    .venv/bin/python -m bench                            # `make bench`: SQLite, 10k, 100k and 1M sessions
    .venv/bin/python -m bench --sizes 10000,100000       # fewer sizes
    .venv/bin/python -m bench --backend postgresql       # the same on a throwaway PostgreSQL server
    .venv/bin/python -m bench --keep /tmp/needle-bench   # keep the built databases and reuse them next time

How each figure is measured (the table printed at the end says it again in short):

- Databases come from the sample-data generator (`sample_data.generate`), cut at a patient boundary just past the
  wanted number of sessions, and are bulk-loaded straight into the tables (executemany on SQLite, COPY on
  PostgreSQL) in the shape an import leaves them: patients, one episode per patient and condition, sessions
  numbered by date, side effects, clinicians and the demo accounts. What is left out is the import's audit row per
  session, which no page reads. The real import is far slower than a bulk load, so it is timed on its own.
- Page times are AppTest run times (`at.run()`, median of `--runs`), measured in a child process
  (`python -m bench.scale pages URL`) logged in once as the demo admin, who has both pages: warm with the
  `st.cache_data` loaders filled, cold right after `st.cache_data.clear()`. The child's peak resident memory
  (`VmHWM`; see `_peak_memory_mb` for why not `ru_maxrss`) is the app's memory. The other sections of the
  technique page, which fit models on every session, are timed cold once each in a child of their own, with a
  time limit.
- Significant and serious side effects more than a week older than the newest session are marked reviewed, as in
  a clinic whose managers review alerts (the technique page lists every unreviewed one).
- `summary` is `python -m db summary` run as a command (so it includes starting Python), median of 3.
- Save latency: `record_session` in `write_session` (validate, write, audit, commit), one follow-up session for a
  random existing patient per save, on a copy of the database.
- Import rate: `python -m db import` of a fresh 10,000-row interchange file into that copy, rows per second of
  the whole command.
- SQL against naive, same process, same data: the technique curve from `queries.technique_moments` and
  `outcomes.technique_curve`, against reading the sessions table into pandas with `pd.read_sql` and computing
  the curve with `cumulative_improvement`, `curve_moments` and `technique_curve`: once the whole table, as naive
  code would, and once only the columns needed, which flatters the naive way.
"""

from __future__ import annotations

import argparse
import ctypes
import io
import json
import math
import os
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, insert, select, text, update
from sqlmodel import Session

from analytics import outcomes
from db import accounts, queries, rollups
from db.access import Actor
from db.cli import DEMO_ACCOUNTS
from db.engine import make_engine, migrate, write_session
from db.models import Episode, Patient, SideEffect, TreatmentSession, User, utcnow
from db.validation import validate_session
from db.writes import record_session
from sample_data.generate import SEED, generate

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
SIZES = (10_000, 100_000, 1_000_000)
SESSIONS_PER_PATIENT = 4.86  # what the generator gives on average (about 205,000 patients for 1M sessions)
CHUNK = 50_000
ADMIN = Actor.command_line()
LOGIN = ("admin", dict((u, p) for u, _, p, _ in DEMO_ACCOUNTS)["admin"])  # the demo admin sees both pages
PAGES = {"patient": "views/patient_progress.py", "technique": "views/technique_outcomes.py"}
IMPORT_ROWS = 10_000
SECTION_TIMEOUT_S = 180
REVIEWED_AFTER_DAYS = 7  # alerts older than this are reviewed in the benchmark's databases
# Targets of issue 6 at 1,000,000 sessions.
TARGETS = {
    "patient_warm_ms": 150, "patient_growth": 1.5, "technique_cold_ms": 1000, "technique_warm_ms": 150,
    "naive_speedup": 10, "save_p95_ms": 25, "memory_mb": 500,
}


# -- building a database -----------------------------------------------------------------------------------------
def data_start(today: date | None = None) -> date:
    """Return the generator's first day, 20 months back, so 18 months of sessions all lie in the past."""
    today = today or date.today()
    month = today.year * 12 + today.month - 1 - 20
    return date(month // 12, month % 12 + 1, 1)


def sample_rows(sessions: int, seed: int = SEED, prefix: str = "P") -> pd.DataFrame:
    """Return generated interchange rows: every session of the patients among the first `sessions` rows."""
    frame = generate(seed=seed, patients=math.ceil(sessions / SESSIONS_PER_PATIENT * 1.05) + 20, start=data_start())
    if len(frame) < sessions:
        raise RuntimeError(f"the generator gave {len(frame)} sessions, fewer than {sessions}")
    wanted = frame["patient_id"].iloc[:sessions].unique()
    frame = frame[frame["patient_id"].isin(wanted)].reset_index(drop=True)
    if prefix != "P":
        frame["patient_id"] = prefix + frame["patient_id"].str[1:]
    return frame


def _records(frame: pd.DataFrame) -> list[dict]:
    """Return a frame's rows as dicts of plain Python values (None for missing), for executemany."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _insert(connection, table, frame: pd.DataFrame) -> None:
    if connection.dialect.name == "postgresql":
        # COPY: executemany through psycopg takes minutes for a million rows.
        columns = ", ".join(frame.columns)
        cursor = connection.connection.dbapi_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
            for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False):
                copy.write_row(row)
        return
    for start in range(0, len(frame), CHUNK):
        connection.execute(insert(table), _records(frame.iloc[start:start + CHUNK]))


def bulk_load(engine: Engine, rows: pd.DataFrame) -> None:
    """Write interchange rows into an empty, migrated database in bulk (no audit row per session)."""
    now = utcnow()
    rows = rows.reset_index(drop=True)
    pseudonyms = pd.unique(rows["patient_id"])
    patient_ids = pd.Series(np.arange(1, len(pseudonyms) + 1), index=pseudonyms)
    condition = rows["condition"].replace("", None)
    episode_keys = pd.DataFrame({"patient": rows["patient_id"], "condition": condition.fillna("\0")})
    episode_of_row = episode_keys.groupby(["patient", "condition"], sort=False).ngroup().to_numpy() + 1
    first = ~pd.Series(episode_of_row).duplicated()
    episodes = pd.DataFrame({
        "id": episode_of_row[first],
        "patient_id": patient_ids[rows["patient_id"][first]].to_numpy(),
        "condition": condition[first].to_numpy(),
        "body_region": rows["body_region"].replace("", None)[first].to_numpy(),
        "created_at": now,
    })
    clinicians = sorted(set(rows["clinician"]) - {""})
    user_ids = {name: i for i, name in enumerate(clinicians, start=1)}
    days = pd.to_datetime(rows["session_date"]).dt.date
    # Session number: date order within the episode, ties kept in entry (file) order, as renumber_episode does.
    order = pd.DataFrame({"episode": episode_of_row, "day": days, "row": np.arange(len(rows))})
    order = order.sort_values(["episode", "day", "row"], kind="stable")
    number = np.empty(len(rows), dtype=np.int64)
    number[order["row"].to_numpy()] = order.groupby("episode", sort=False).cumcount().to_numpy() + 1
    pain_after = pd.to_numeric(rows["pain_after"].astype(object).replace("", None), errors="coerce")
    sessions = pd.DataFrame({
        "id": np.arange(1, len(rows) + 1),
        "episode_id": episode_of_row,
        "session_number": number,
        "session_date": days,
        "technique": rows["technique"],
        "clinician_id": rows["clinician"].map(user_ids),
        "muscles": rows["muscles"],
        "twitch_response": rows["twitch_response"].map({"yes": True, "no": False, "": None}),
        "pain_scale": rows["pain_scale"].replace("", "vas_100"),
        "pain_before": pd.to_numeric(rows["pain_before"]).astype(float),
        "pain_after": pain_after.astype(float),
        "notes": rows["notes"],
        "created_at": now,
    })
    effects = rows["side_effects"].str.split(";").explode()
    effects = effects[effects.fillna("") != ""]
    code_severity = effects.str.split(":", expand=True)
    side_effects = pd.DataFrame({
        "id": np.arange(1, len(effects) + 1), "session_id": effects.index.to_numpy() + 1,
        "code": code_severity[0].to_numpy(), "severity": code_severity[1].to_numpy(),
    })
    with engine.begin() as connection:
        _insert(connection, Patient.__table__,
                pd.DataFrame({"id": patient_ids.to_numpy(), "pseudonym": pseudonyms, "created_at": now}))
        _insert(connection, Episode.__table__, episodes)
        _insert(connection, User.__table__, pd.DataFrame({
            "id": list(user_ids.values()), "username": clinicians, "display_name": clinicians,
            "role": "clinician", "failed_logins": 0, "is_active": True, "created_at": now,
        }))
        _insert(connection, TreatmentSession.__table__, sessions)
        _insert(connection, SideEffect.__table__, side_effects)
        if engine.dialect.name == "postgresql":  # explicit ids leave the sequences behind
            for table in ("patients", "episodes", "users", "sessions", "side_effects"):
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                ))
    with write_session(engine) as session:
        rollups.rebuild(session)  # the bulk load went round the writes that keep them
        for username, role, password, _ in DEMO_ACCOUNTS:
            if role == "clinician":  # the generator's clinician exists already, without a password
                accounts.reset_password(session, actor=ADMIN, username=username, password=password)
            else:
                accounts.add_user(session, actor=ADMIN, username=username, role=role, password=password,
                                  patient_pseudonym=str(pseudonyms[1]) if role == "patient" else None)
        # A clinic whose managers review alerts: significant and serious events older than a week are reviewed.
        # (Left all unreviewed, the generator's 0.17 % of sessions would list 1,660 alerts at 1M sessions.)
        manager = select(User.id).where(User.username == "manager").scalar_subquery()
        older = select(TreatmentSession.id).where(
            TreatmentSession.session_date < max(days) - timedelta(days=REVIEWED_AFTER_DAYS)
        )
        session.execute(
            update(SideEffect)
            .where(SideEffect.severity.in_(("significant", "serious")), SideEffect.session_id.in_(older))
            .values(reviewed_at=now, reviewed_by=manager)
        )


class Backend:
    """Where the benchmark's databases live: SQLite files in a directory, or databases on a PostgreSQL server."""

    def __init__(self, name: str, directory: Path):
        self.name, self.directory = name, directory
        self.server = None
        if name == "postgresql":
            sys.path.insert(0, str(ROOT))
            from tests.support.postgres import PostgresServer  # the test suite's throwaway cluster

            self.server = PostgresServer()
            self.server.start()

    def url(self, name: str) -> str:
        """Return the URL of database `name` (which may not exist yet)."""
        if self.server is None:
            return f"sqlite:///{self.directory / name}.db"
        return self.server.url(name)

    def exists(self, name: str) -> bool:
        """Return whether a complete database `name` exists."""
        if self.server is None:
            return (self.directory / f"{name}.db").exists()
        with self._admin() as connection:
            found = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            return found is not None

    def create_empty(self, name: str) -> str:
        """Create an empty database `name` (dropping any half-built one) and return its URL."""
        if self.server is None:
            for path in self.directory.glob(f"{name}.db*"):
                path.unlink()
            return self.url(name)
        with self._admin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {name}"))
        return self.url(name)

    def rename(self, old: str, new: str) -> None:
        """Rename database `old` to `new` (a build becomes visible only once complete)."""
        if self.server is None:
            (self.directory / f"{old}.db").rename(self.directory / f"{new}.db")
            return
        with self._admin() as connection:
            connection.execute(text(f"ALTER DATABASE {old} RENAME TO {new}"))

    def copy(self, name: str, to: str) -> str:
        """Copy database `name` to a new database `to` and return its URL."""
        if self.server is None:
            shutil.copy(self.directory / f"{name}.db", self.directory / f"{to}.db")
            return self.url(to)
        with self._admin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {to} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {to} TEMPLATE {name}"))
        return self.url(to)

    def drop(self, name: str) -> None:
        """Delete database `name`."""
        if self.server is None:
            for path in self.directory.glob(f"{name}.db*"):
                path.unlink()
            return
        with self._admin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def finish_build(self, url: str) -> None:
        """Make a freshly loaded database ready to read: checkpoint SQLite's log, VACUUM ANALYZE PostgreSQL."""
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                if self.server is None:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                else:  # what autovacuum would do soon after a big import
                    connection.execute(text("VACUUM ANALYZE"))
        finally:
            engine.dispose()

    def version(self) -> str:
        """Return the database's version string."""
        if self.server is None:
            return f"SQLite {sqlite3.sqlite_version}"
        engine = create_engine(self.server.url("postgres"))
        try:
            with engine.connect() as connection:
                return "PostgreSQL " + connection.execute(text("SHOW server_version")).scalar_one().split()[0]
        finally:
            engine.dispose()

    def close(self) -> None:
        """Stop the PostgreSQL server, if one was started."""
        if self.server is not None:
            self.server.stop()

    @contextmanager
    def _admin(self) -> Iterator:
        engine = create_engine(self.server.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()


def build_database(backend: Backend, sessions: int) -> tuple[str, float]:
    """Build (or reuse) the database of about `sessions` sessions; return its URL and the build time (0: reused)."""
    name = f"needle_bench_{sessions}"
    if backend.exists(name):
        return backend.url(name), 0.0
    started = time.perf_counter()
    partial = f"{name}_partial"
    url = backend.create_empty(partial)
    migrate(url)
    engine = make_engine(url)
    try:
        bulk_load(engine, sample_rows(sessions))
    finally:
        engine.dispose()
    backend.finish_build(url)
    backend.rename(partial, name)
    return backend.url(name), time.perf_counter() - started


# -- pages, in a child process ------------------------------------------------------------------------------------
def _login(at) -> None:
    at.text_input(key="login_username").input(LOGIN[0])
    at.text_input(key="login_password").input(LOGIN[1])
    at.button(key="login_submit").click().run()
    _check(at)


def _check(at) -> None:
    if at.exception:
        raise RuntimeError(f"the page raised: {at.exception}")


def _timed_run(at, cold: bool) -> float:
    import streamlit as st

    if cold:
        st.cache_data.clear()
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    _check(at)
    return elapsed


def measure_pages(url: str, runs: int) -> dict:
    """Return cold and warm AppTest run times (seconds) of both pages, and this process's peak memory (MB)."""
    from streamlit.testing.v1 import AppTest

    os.environ["DATABASE_URL"] = url
    at = AppTest.from_file(APP, default_timeout=900)
    at.run()
    _login(at)
    times: dict[str, dict[str, list[float]]] = {}
    memory = {"logged in": _peak_memory_mb()}
    for page, path in PAGES.items():
        at.switch_page(path).run()  # the first visit imports the page's modules: not counted
        _check(at)
        times[page] = {"cold": [], "warm": []}
        for _ in range(runs):
            times[page]["cold"].append(_timed_run(at, cold=True))
            times[page]["warm"].append(_timed_run(at, cold=False))
        memory[page] = _peak_memory_mb()
    return {"times": times, "memory_mb": _peak_memory_mb(), "memory_by_page": memory}


def measure_section(url: str, section: str) -> dict:
    """Return the cold run time (seconds) of one section of the technique page, and the peak memory (MB)."""
    from streamlit.testing.v1 import AppTest

    os.environ["DATABASE_URL"] = url
    at = AppTest.from_file(APP, default_timeout=SECTION_TIMEOUT_S * 2)
    at.run()
    _login(at)
    at.switch_page(PAGES["technique"]).run()
    _check(at)
    at.session_state["section"] = section
    return {"seconds": _timed_run(at, cold=True), "memory_mb": _peak_memory_mb()}


def _peak_memory_mb() -> float:
    """Return this process's peak resident memory in MB.

    Linux's `ru_maxrss` keeps, across the exec that starts a child, the resident size of the parent it was forked
    from: a page-timing child forked by a benchmark that has just built a million-session database would report
    the builder's gigabyte. `VmHWM` (the high-water mark of this process image) does not, so it is read first.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _child(args: list[str], timeout: float | None = None) -> dict | None:
    """Run `python -m bench.scale ARGS` and return the JSON it prints last (None if it ran out of time)."""
    command = [sys.executable, "-m", "bench.scale", *args]
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the other measurements -----------------------------------------------------------------------------------
def _median_time(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def summary_seconds(url: str, runs: int = 3) -> float:
    """Return the median wall time of `python -m db summary` as a command."""
    def run() -> None:
        subprocess.run([sys.executable, "-m", "db", "--url", url, "summary"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return _median_time(run, runs)


def curve_sql(engine: Engine) -> pd.DataFrame:
    """Return the technique curve the way the app computes it: sums in SQL, the rest in pandas."""
    with Session(engine) as session:
        return outcomes.technique_curve(queries.technique_moments(session, actor=ADMIN))


NAIVE_COLUMNS = "episode_id, session_number, technique, pain_scale, pain_before, deleted_at"


def curve_naive(engine: Engine, columns: str = "*") -> pd.DataFrame:
    """Return the technique curve the naive way: the sessions table read into pandas, then grouped."""
    sessions = pd.read_sql(f"SELECT {columns} FROM sessions", engine)
    sessions = sessions[sessions["deleted_at"].isna()]
    improvement = outcomes.cumulative_improvement(sessions)
    return outcomes.technique_curve(outcomes.curve_moments(improvement))


def sql_against_naive(url: str, runs: int = 3) -> dict:
    """Return median seconds of the technique curve in SQL and the naive way (whole table, needed columns)."""
    engine = make_engine(url)
    try:
        sql, naive = curve_sql(engine), curve_naive(engine)
        pd.testing.assert_frame_equal(sql.reset_index(drop=True), naive.reset_index(drop=True), check_dtype=False,
                                      rtol=1e-6)
        return {"sql": _median_time(lambda: curve_sql(engine), runs),
                "naive": _median_time(lambda: curve_naive(engine), runs),
                "naive_columns": _median_time(lambda: curve_naive(engine, NAIVE_COLUMNS), runs)}
    finally:
        engine.dispose()


def save_latencies(url: str, saves: int, seed: int = 6) -> list[float]:
    """Return the seconds each of `saves` single-session saves took (a follow-up for a random existing patient)."""
    engine = make_engine(url)
    rng = np.random.default_rng(seed)
    try:
        with engine.connect() as connection:
            patients = connection.execute(text(
                "SELECT p.pseudonym, e.condition FROM patients p JOIN episodes e ON e.patient_id = p.id"
            )).all()
        today = date.today()
        latencies = []
        for index in rng.choice(len(patients), size=saves, replace=saves > len(patients)):
            pseudonym, condition = patients[index]
            entry = validate_session({
                "patient_id": pseudonym, "session_date": today, "technique": "deep", "pain_before": 40,
                "pain_after": 30, "condition": condition, "clinician": "clin_ahmed", "today": today,
                "side_effects": [("soreness", "mild")], "muscles": ["upper_trapezius"],
            })
            started = time.perf_counter()
            with write_session(engine) as session:
                record_session(session, actor=ADMIN, entry=entry)
            latencies.append(time.perf_counter() - started)
        return latencies
    finally:
        engine.dispose()


def import_rate(url: str, directory: Path, rows: int = IMPORT_ROWS) -> dict:
    """Return rows, seconds and rows per second of `python -m db import` of a fresh interchange file."""
    table = sample_rows(rows, seed=SEED + 1, prefix="I")  # new patients, ids that clash with none
    path = directory / f"import_{rows}.csv"
    table.to_csv(path, index=False, lineterminator="\n")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "db", "--url", url, "import", str(path)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    path.unlink()
    if result.returncode != 0:
        raise RuntimeError(f"import failed: {result.stderr[-2000:]}")
    return {"rows": len(table), "seconds": seconds, "rate": len(table) / seconds}


def count_sessions(url: str) -> int:
    """Return the number of live sessions in the database."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return queries.count_sessions(session, actor=ADMIN)
    finally:
        engine.dispose()


# -- one size, the whole run, the report --------------------------------------------------------------------------
def run_size(backend: Backend, size: int, args) -> dict:
    """Return every measurement at one database size."""
    say = lambda message: print(f"[{size:>9,}] {message}", file=sys.stderr, flush=True)  # noqa: E731
    url, build = build_database(backend, size)
    say(f"database {f'built in {build:.0f} s' if build else 'reused'}: {url}")
    result: dict = {"size": size, "sessions": count_sessions(url), "build_s": build}
    pages = _child(["pages", url, "--runs", str(args.runs)])
    result["pages"], result["memory_mb"] = pages["times"], pages["memory_mb"]
    medians = {page: {k: round(_ms(v)) for k, v in t.items()} for page, t in pages["times"].items()}
    say(f"pages (ms): {medians}, peak memory (MB) after each: {pages['memory_by_page']}")
    result["sections"] = {}
    for section in args.sections:
        measured = _child(["section", url, section], timeout=SECTION_TIMEOUT_S)
        result["sections"][section] = measured
        say(f"section {section}: {measured}")
    result["summary_s"] = summary_seconds(url)
    say(f"summary: {result['summary_s']:.2f} s")
    result["curve"] = sql_against_naive(url)
    say(f"curve: {result['curve']}")
    scratch = f"needle_bench_{size}_scratch"
    copy_url = backend.copy(f"needle_bench_{size}", scratch)
    try:
        latencies = save_latencies(copy_url, args.saves)
        result["save_ms"] = {"median": 1000 * statistics.median(latencies),
                             "p95": 1000 * float(np.percentile(latencies, 95)), "n": len(latencies)}
        say(f"saves: {result['save_ms']}")
        result["import"] = import_rate(copy_url, backend.directory)
        say(f"import: {result['import']}")
    finally:
        backend.drop(scratch)
    return result


def machine(backend: Backend) -> dict[str, str]:
    """Return a description of the machine and software the benchmark ran on."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        total_kb = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    return {
        "CPU": f"{os.cpu_count()} × {cpu}", "RAM": f"{total_kb / 1024 / 1024:.1f} GB",
        "OS": platform.platform(), "Python": platform.python_version(), "database": backend.version(),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _ms(seconds_list: list[float]) -> float:
    return 1000 * statistics.median(seconds_list)


def _ms_best(seconds_list: list[float]) -> str:
    """Return "median (best)" in milliseconds: the best run shows the cost when no other process competes."""
    return f"{_ms(seconds_list):.0f} ({1000 * min(seconds_list):.0f})"


def report(results: list[dict], about: dict[str, str]) -> str:
    """Return the results as a Markdown table, then the targets at the largest size, met or not."""
    out = io.StringIO()
    for key, value in about.items():
        out.write(f"- {key}: {value}\n")
    out.write("\n")
    header = ["measure"] + [f"{r['sessions']:,} sessions" for r in results]
    rows: list[list[str]] = []

    def add(label: str, values: list[str]) -> None:
        rows.append([label, *values])

    for page in ("patient", "technique"):
        for cache in ("warm", "cold"):
            add(f"{page} page, {cache}, median (best) (ms)", [_ms_best(r["pages"][page][cache]) for r in results])
    for section in results[0]["sections"]:
        add(f"technique page, {section}, cold (s)", [
            f"{r['sections'][section]['seconds']:.1f}" if r["sections"].get(section) else f"> {SECTION_TIMEOUT_S}"
            for r in results
        ])
    add("`python -m db summary` (s)", [f"{r['summary_s']:.2f}" for r in results])
    add("curve in SQL (ms)", [f"{1000 * r['curve']['sql']:.0f}" for r in results])
    add("curve the naive way, whole table (ms)", [f"{1000 * r['curve']['naive']:.0f}" for r in results])
    add("curve the naive way, needed columns (ms)", [f"{1000 * r['curve']['naive_columns']:.0f}" for r in results])
    add("SQL / naive (whole table)", [f"{r['curve']['sql'] / r['curve']['naive']:.3f} "
                                      f"({r['curve']['naive'] / r['curve']['sql']:.1f}× faster)" for r in results])
    add("SQL / naive (needed columns)", [
        f"{r['curve']['sql'] / r['curve']['naive_columns']:.3f} "
        f"({r['curve']['naive_columns'] / r['curve']['sql']:.1f}× faster)" for r in results
    ])
    add("save, median (ms)", [f"{r['save_ms']['median']:.1f}" for r in results])
    add("save, p95 (ms)", [f"{r['save_ms']['p95']:.1f}" for r in results])
    add("import (rows/s, 10k-row file)", [f"{r['import']['rate']:.0f}" for r in results])
    add("app peak memory (MB)", [f"{r['memory_mb']:.0f}" for r in results])
    add("database build (s)", [f"{r['build_s']:.0f}" if r["build_s"] else "reused" for r in results])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        out.write("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |\n")
    out.write("\n")
    out.write(targets(results))
    return out.getvalue()


def targets(results: list[dict]) -> str:
    """Return one line per target of issue 6 at the largest size measured: met or not."""
    big, small = results[-1], results[0]
    patient_warm = _ms(big["pages"]["patient"]["warm"])
    growth = patient_warm / _ms(small["pages"]["patient"]["warm"])
    best_growth = min(big["pages"]["patient"]["warm"]) / min(small["pages"]["patient"]["warm"])
    checks = [
        (f"patient page warm ≤ {TARGETS['patient_warm_ms']} ms", f"{patient_warm:.0f} ms",
         patient_warm <= TARGETS["patient_warm_ms"]),
        (f"patient page warm ≤ {TARGETS['patient_growth']}× its time at {small['sessions']:,}",
         f"{growth:.2f}× in medians, {best_growth:.2f}× in best runs", growth <= TARGETS["patient_growth"]),
        (f"technique page cold ≤ {TARGETS['technique_cold_ms']} ms", f"{_ms(big['pages']['technique']['cold']):.0f} ms",
         _ms(big["pages"]["technique"]["cold"]) <= TARGETS["technique_cold_ms"]),
        (f"technique page warm ≤ {TARGETS['technique_warm_ms']} ms", f"{_ms(big['pages']['technique']['warm']):.0f} ms",
         _ms(big["pages"]["technique"]["warm"]) <= TARGETS["technique_warm_ms"]),
        (f"technique curve ≥ {TARGETS['naive_speedup']}× faster than naive (whole sessions table)",
         f"{big['curve']['naive'] / big['curve']['sql']:.1f}×",
         big["curve"]["naive"] / big["curve"]["sql"] >= TARGETS["naive_speedup"]),
        (f"save p95 ≤ {TARGETS['save_p95_ms']} ms", f"{big['save_ms']['p95']:.1f} ms",
         big["save_ms"]["p95"] <= TARGETS["save_p95_ms"]),
        (f"app memory ≤ {TARGETS['memory_mb']} MB", f"{big['memory_mb']:.0f} MB",
         big["memory_mb"] <= TARGETS["memory_mb"]),
    ]
    lines = [f"Targets at {big['sessions']:,} sessions:"]
    lines += [f"- {'met' if ok else 'NOT MET'}: {what} (measured {value})" for what, value, ok in checks]
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of `python -m bench`."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="numbers of sessions, comma-separated")
    p.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--keep", type=Path, help="directory to keep (and reuse) the SQLite databases in")
    p.add_argument("--runs", type=int, default=7, help="page runs per measurement (median reported)")
    p.add_argument("--saves", type=int, default=200, help="single-session saves timed")
    p.add_argument("--sections", default="Responders,Time to response,Adjusted comparison,Clinicians,Safety",
                   help="other sections of the technique page to time cold once ('' for none)")
    p.add_argument("--output", type=Path, help="also write the report to this file (and the raw results as .json)")
    p.add_argument("--report", type=Path, metavar="JSON", help="only print the report of results saved by --output")
    return p


def _die_with_parent() -> None:
    """Ask Linux to end this child process when the benchmark that started it ends (PR_SET_PDEATHSIG)."""
    with suppress(OSError, AttributeError):  # elsewhere a child outlives an interrupted benchmark until it is done
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, or (as a child process) measure pages; print the report."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["pages"], ["section"]):
        _die_with_parent()
    if argv[:1] == ["pages"]:
        print(json.dumps(measure_pages(argv[1], runs=int(argv[argv.index("--runs") + 1]))))
        return 0
    if argv[:1] == ["section"]:
        print(json.dumps(measure_section(argv[1], argv[2])))
        return 0
    args = parser().parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        print(report(saved["results"], saved["machine"]))
        return 0
    args.sections = [s for s in args.sections.split(",") if s]
    directory = args.keep or Path(tempfile.mkdtemp(prefix="needle-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    backend = Backend(args.backend, directory)
    try:
        about = machine(backend)
        results = [run_size(backend, int(size), args) for size in args.sizes.split(",")]
        about["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    finally:
        backend.close()
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    text_report = report(results, about)
    print(text_report)
    if args.output:
        args.output.write_text(text_report)
        args.output.with_suffix(".json").write_text(json.dumps({"machine": about, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
