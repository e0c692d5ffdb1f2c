"""Tests that `python -m db` imports, summarises and refuses as docs/DESIGN.md section 5 says, on every backend."""

from __future__ import annotations

import errno
import io
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats
from sqlalchemy.engine import make_url

from db import fast_summary, interchange, report_files, spreadsheets
from db.cli import main
from tests.db.factories import (
    SAMPLE_FILE,
    clinical_counts,
    engine_on,
    interchange_rows,
    stored_sessions,
    tables_with_rows,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SUMMARY_HEADER = ("technique,session_number,patients,mean_pain_before,mean_improvement_points,mean_improvement_pct,"
                  "ci95_low_pct,ci95_high_pct")
RESPONDER_HEADER = "technique,threshold_pct,patients,responders,share,ci95_low,ci95_high"

# Five episodes, ten sessions; by hand (pain on the 0–100 scale, improvement in points and percent of baseline):
#   A1 deep VAS        80, 60, 40  -> 0 / 20 / 40 points, 0 / 25 / 50 %
#   A2 deep NRS        5, 3        -> 50, 30: 0 / 20 points, 0 / 40 %
#   A3 deep VAS        0, 20       -> baseline 0: left out of every percentage
#   B1 superficial VAS 50, 40      -> 0 / 10 points, 0 / 20 %
#   B2 superficial NRS 4           -> 40: one session, 0 %
SMALL_CLINIC = [
    dict(patient_id="A1", session_date="2025-02-03", technique="deep", pain_before="80"),
    dict(patient_id="A1", session_date="2025-02-10", technique="deep", pain_before="60", side_effects="bruising:mild"),
    dict(patient_id="A1", session_date="2025-02-17", technique="deep", pain_before="40"),
    dict(patient_id="A2", session_date="2025-02-04", technique="deep", pain_scale="nrs_10", pain_before="5"),
    dict(patient_id="A2", session_date="2025-02-11", technique="deep", pain_scale="nrs_10", pain_before="3"),
    dict(patient_id="A3", session_date="2025-02-05", technique="deep", pain_before="0"),
    dict(patient_id="A3", session_date="2025-02-12", technique="deep", pain_before="20"),
    dict(patient_id="B1", session_date="2025-03-01", technique="superficial", pain_before="50", clinician="clin_x"),
    dict(patient_id="B1", session_date="2025-03-08", technique="superficial", pain_before="40", clinician="clin_x"),
    dict(patient_id="B2", session_date="2025-03-02", technique="superficial", pain_scale="nrs_10", pain_before="4"),
]


@pytest.fixture
def clinic_file(tmp_path):
    path = tmp_path / "clinic.csv"
    interchange_rows(*SMALL_CLINIC).to_csv(path, index=False)
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Run `python -m db ARGS` in-process; return the exit status, standard output and standard error."""
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def t_interval(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


def wilson(successes: int, trials: int) -> tuple[float, float]:
    z = stats.norm.ppf(0.975)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return centre - half, centre + half


def test_init_import_summary_reproduces_the_outcome_definitions(capsys, database_url, clinic_file):
    assert run(capsys, "--url", database_url, "init")[0] == 0
    status, _, err = run(capsys, "--url", database_url, "import", clinic_file)
    assert status == 0 and "10 added" in err
    status, out, _ = run(capsys, "--url", database_url, "summary")
    assert status == 0
    assert out.splitlines()[0] == SUMMARY_HEADER
    deep2_low, deep2_high = t_interval([25, 40])
    nan = float("nan")
    expected = pd.DataFrame(
        [
            ("deep", 1, 2, (80 + 50) / 2, 0, 0, 0, 0),
            ("deep", 2, 2, (60 + 30) / 2, (20 + 20) / 2, (25 + 40) / 2, round(deep2_low, 2), round(deep2_high, 2)),
            ("deep", 3, 1, 40, 40, 50, nan, nan),
            ("superficial", 1, 2, (50 + 40) / 2, 0, 0, 0, 0),
            ("superficial", 2, 1, 40, 10, 20, nan, nan),
        ],
        columns=SUMMARY_HEADER.split(","),
    )
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(out)), expected, check_dtype=False)
    assert round(deep2_low, 2) == -62.8 and round(deep2_high, 2) == 127.8  # 32.5 ± t(1)·7.5


def test_summary_responders_gives_shares_and_wilson_intervals_at_thresholds_15_30_50(capsys, database_url, clinic_file):
    assert run(capsys, "--url", database_url, "import", clinic_file)[0] == 0
    status, out, _ = run(capsys, "--url", database_url, "summary", "--responders")
    assert status == 0
    assert out.splitlines()[0] == RESPONDER_HEADER
    # Last sessions: deep A1 50 %, A2 40 % (A3 left out); superficial B1 20 % (B2 had one session: no follow-up).
    counts = [("deep", 15, 2, 2), ("deep", 30, 2, 2), ("deep", 50, 2, 1),
              ("superficial", 15, 1, 1), ("superficial", 30, 1, 0), ("superficial", 50, 1, 0)]
    expected = pd.DataFrame(
        [(t, k, n, r, round(r / n, 4), *(round(x, 4) for x in wilson(r, n))) for t, k, n, r in counts],
        columns=RESPONDER_HEADER.split(","),
    )
    got = pd.read_csv(io.StringIO(out))
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-12, rtol=0)


def test_summary_of_an_empty_database_is_the_header_only(capsys, database_url):
    status, out, _ = run(capsys, "--url", database_url, "summary")
    assert status == 0 and out.splitlines() == [SUMMARY_HEADER]


def test_a_bad_file_exits_1_with_a_reason_naming_row_and_column_and_writes_nothing(
    capsys, database_url, tmp_path
):
    rows = [dict(r) for r in SMALL_CLINIC]
    rows[4]["pain_before"] = "12"  # NRS 12, file line 6
    path = tmp_path / "bad.csv"
    interchange_rows(*rows).to_csv(path, index=False)
    status, out, err = run(capsys, "--url", database_url, "import", path)
    assert status == 1 and out == ""
    reason = err.strip().splitlines()[-1]
    assert reason.startswith("error: ") and "row 6" in reason and "column pain_before" in reason
    assert "outside the scale" in reason
    with engine_on(database_url) as engine:
        assert tables_with_rows(engine) == {}


def test_importing_a_missing_file_exits_1(capsys, database_url, tmp_path):
    status, _, err = run(capsys, "--url", database_url, "import", tmp_path / "nowhere.csv")
    assert status == 1 and "no such file" in err.strip().splitlines()[-1]


def test_importing_the_same_file_twice_adds_nothing_the_second_time(capsys, database_url, clinic_file):
    assert run(capsys, "--url", database_url, "import", clinic_file)[0] == 0
    status, _, err = run(capsys, "--url", database_url, "import", clinic_file)
    assert status == 0 and "0 added, 0 updated, 10 unchanged" in err


def test_one_command_imports_several_files_each_as_its_own_import(capsys, database_url, clinic_file, tmp_path):
    """A network's history split into files is imported by one command, file by file, as separate commands would."""
    parts = [tmp_path / "part1.csv", tmp_path / "part2.csv"]
    interchange_rows(*SMALL_CLINIC[:7]).to_csv(parts[0], index=False)  # patients A…
    interchange_rows(*SMALL_CLINIC[7:]).to_csv(parts[1], index=False)  # and B…
    status, _, err = run(capsys, "--url", database_url, "import", *parts)
    assert status == 0
    lines = err.splitlines()
    assert lines[0].startswith(f"{parts[0]}: 7 added") and lines[-1].startswith(f"{parts[1]}: 3 added")
    with engine_on(database_url) as engine:
        assert clinical_counts(engine)["sessions"] == 10
    status, _, err = run(capsys, "--url", database_url, "import", clinic_file)
    assert status == 0 and "0 added, 0 updated, 10 unchanged" in err  # the whole file: nothing new


def three_parts(rows: list[dict], directory: Path) -> list[Path]:
    """Write the small clinic's rows as three interchange files: patients A (7 rows), B1's two sessions, the rest."""
    parts = [directory / f"part{number}.csv" for number in (1, 2, 3)]
    for part, chosen in zip(parts, (rows[:7], rows[7:9], rows[9:]), strict=True):
        interchange_rows(*chosen).to_csv(part, index=False)
    return parts


def test_a_refused_file_stops_the_import_after_the_files_before_it(capsys, database_url, tmp_path):
    rows = [dict(r) for r in SMALL_CLINIC]
    rows[8]["pain_before"] = "140"  # B1's second session, line 3 of the second file
    parts = three_parts(rows, tmp_path)
    status, _, err = run(capsys, "--url", database_url, "import", *parts)
    assert status == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: {parts[1]}: ") and "row 3" in last and "column pain_before" in last
    assert last.endswith("; the 1 file(s) before it were imported, the 1 after it were not")
    with engine_on(database_url) as engine:
        assert stored_sessions(engine)["patient_id"].unique().tolist() == ["A1", "A2", "A3"]  # the first file only


def test_ctrl_c_during_a_multi_file_import_says_which_files_were_imported(capsys, monkeypatch, database_url,
                                                                          tmp_path):
    parts = three_parts(SMALL_CLINIC, tmp_path)
    real = report_files.import_file

    def interrupted_on_the_second(url, path, **kwargs):
        if path == parts[1]:
            raise KeyboardInterrupt
        return real(url, path, **kwargs)

    monkeypatch.setattr(report_files, "import_file", interrupted_on_the_second)
    status, _, err = run(capsys, "--url", database_url, "import", *parts)
    assert status == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"error: {parts[1]}: interrupted: a unit of work in progress was rolled "
                                            "back; the 1 file(s) before it were imported, the 1 after it were not")
    with engine_on(database_url) as engine:
        assert stored_sessions(engine)["patient_id"].unique().tolist() == ["A1", "A2", "A3"]  # the first file only


def test_several_files_with_one_missing_or_the_first_refused_import_nothing(capsys, database_url, tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    interchange_rows(*SMALL_CLINIC[7:]).to_csv(good, index=False)
    rows = [dict(r) for r in SMALL_CLINIC[:7]]
    rows[0]["technique"] = "dry"
    interchange_rows(*rows).to_csv(bad, index=False)
    reason = one_line_error(capsys, "--url", database_url, "import", good, tmp_path / "typo.csv")
    assert reason == f"{tmp_path / 'typo.csv'}: no such file; nothing imported"  # checked before any file is read
    reason = one_line_error_after_problems(capsys, "--url", database_url, "import", bad, good)
    assert reason.startswith(f"{bad}: ") and "column technique" in reason and reason.endswith("; no file was imported")
    with engine_on(database_url) as engine:
        assert tables_with_rows(engine) == {}


def one_line_error_after_problems(capsys, *args) -> str:
    """Run an import that must be refused; return its last line (after `error: `), the problems table before it."""
    status, out, err = run(capsys, *args)
    assert status == 1 and out == "" and "Traceback" not in err
    return err.strip().splitlines()[-1].removeprefix("error: ")


def test_seed_refuses_a_database_with_data_but_seed_if_empty_succeeds(capsys, database_url):
    sample_rows = len(pd.read_csv(SAMPLE_FILE, dtype=str))
    status, _, err = run(capsys, "--url", database_url, "seed")
    assert status == 0 and f"loaded {sample_rows}" in err
    with engine_on(database_url) as engine:
        seeded = clinical_counts(engine)
    assert seeded["sessions"] == sample_rows
    status, _, err = run(capsys, "--url", database_url, "seed")
    assert status == 1
    assert len(err.strip().splitlines()) == 1 and "already holds" in err and "empty database" in err
    status, _, err = run(capsys, "--url", database_url, "seed", "--if-empty")
    assert status == 0 and "not loaded" in err
    with engine_on(database_url) as engine:
        assert clinical_counts(engine) == seeded


def test_export_writes_the_interchange_file(capsys, database_url, clinic_file, tmp_path):
    assert run(capsys, "--url", database_url, "import", clinic_file)[0] == 0
    status, _, err = run(capsys, "--url", database_url, "export", tmp_path / "out.csv")
    assert status == 0 and "10 sessions exported" in err
    exported = spreadsheets.read_table(tmp_path / "out.csv")
    assert list(exported.columns) == [*interchange.COLUMNS, *interchange.EXTRA_COLUMNS, "episode",
                                      *interchange.STRICTA_COLUMNS]
    assert len(exported) == 10 and exported["pain_before"].tolist()[:3] == ["80", "60", "40"]


def test_export_to_an_unknown_format_exits_1_with_a_clear_reason_and_writes_no_file(capsys, database_url, tmp_path):
    status, out, err = run(capsys, "--url", database_url, "export", tmp_path / "sessions.txt")
    assert status == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ") and "sessions.txt" in err and ".csv or .xlsx" in err and ".json" in err
    assert not (tmp_path / "sessions.txt").exists()


def test_an_unknown_command_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code != 0
    assert "invalid choice" in capsys.readouterr().err


# -- faults: one line naming the cause, never a traceback (issue 11) ---------------------------------------------------


def one_line_error(capsys, *args: str) -> str:
    """Run a command that must fail; return its one line on standard error (after `error: `)."""
    status, out, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert status == 1 and out == "", (status, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0].removeprefix("error: ")


@pytest.mark.parametrize(("url", "says"), [
    ("notaurl", "is not a database URL; expected sqlite:///"),
    ("sqlite:/x.db", "is not a database URL; expected sqlite:///"),
    ("mysql://clinic:secret@db.example/needle", "mysql databases are not supported; use SQLite or PostgreSQL"),
    ("postgresql+psycopg2://clinic@db.example/needle", "the psycopg2 driver is not installed; write postgresql://"),
])
def test_a_malformed_or_unsupported_url_is_refused_in_one_line(capsys, url, says):
    reason = one_line_error(capsys, "--url", url, "summary")
    assert says in reason
    assert "secret" not in reason  # a password in the URL is never printed


def test_a_postgres_url_is_read_as_postgresql(capsys, postgres_server):
    url = postgres_server.url("postgres").replace("postgresql+psycopg://", "postgres://")
    assert url.startswith("postgres://")
    status, _, err = run(capsys, "--url", url, "users", "list")
    assert "no Needle Outcomes schema" in err and status == 1  # it reached the server: the URL was understood


def test_postgresql_that_refuses_cannot_be_found_or_lacks_the_database_is_named_in_one_line(capsys, postgres_server):
    from tests.support.postgres import free_port

    here = make_url(postgres_server.url("postgres"))
    refused = here.set(port=free_port()).render_as_string(hide_password=False)
    assert "refused the connection: is the server running" in one_line_error(capsys, "--url", refused, "summary")
    unknown_host = here.set(host="no-such-host.invalid").render_as_string(hide_password=False)
    assert "cannot find the database host 'no-such-host.invalid'" in one_line_error(
        capsys, "--url", unknown_host, "summary")
    missing = here.set(database="no_such_database").render_as_string(hide_password=False)
    assert "has no database 'no_such_database': create it" in one_line_error(capsys, "--url", missing, "summary")


COMMANDS_ON_A_DATABASE = [
    ("summary",), ("import", "{file}"), ("export", "{out}"), ("users", "list"), ("backup", "{out}"),
    ("restore", "{file}"), ("audit", "verify"),
]


@pytest.mark.parametrize("command", COMMANDS_ON_A_DATABASE, ids=lambda c: c[0])
def test_a_mistyped_sqlite_path_is_refused_and_no_database_is_created(capsys, tmp_path, clinic_file, command):
    typo = tmp_path / "data" / "needle_outcomes.bd"
    args = [a.format(file=clinic_file, out=tmp_path / "out.csv") for a in command]
    reason = one_line_error(capsys, "--url", f"sqlite:///{typo}", *args)
    assert reason == f"no database at {typo}: run `python -m db init` first, or check --url / DATABASE_URL"
    assert not typo.exists() and not typo.parent.exists()
    assert not (tmp_path / "out.csv").exists()


def test_init_and_seed_create_a_database_where_there_is_none(capsys, tmp_path):
    for command in ("init", "seed"):
        path = tmp_path / command / "new.db"
        assert run(capsys, "--url", f"sqlite:///{path}", command)[0] == 0
        assert path.is_file()


def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_was(capsys, tmp_path, clinic_file):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    reason = one_line_error(capsys, "--url", f"sqlite:///{path}", "import", clinic_file)
    assert reason.startswith(f"{path}: not a Needle Outcomes database")
    assert path.read_text() == "not a database\n" * 100


def test_an_empty_postgresql_database_asks_for_init(capsys, postgres_server):
    from tests.db.factories import new_postgres_database

    url = new_postgres_database(postgres_server, "empty_for_cli")
    assert "holds no Needle Outcomes schema: run `python -m db init` first" in one_line_error(
        capsys, "--url", url, "summary")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_read_only_database_refuses_an_import_in_one_line_and_keeps_its_rows(capsys, database_url, clinic_file):
    path = make_url(database_url).database
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"  # as when the file or its directory is read-only
    reason = one_line_error(capsys, "--url", read_only, "import", clinic_file)
    assert reason == f"file:{path}: the database is read-only (check the permissions of the file and its directory)"
    with engine_on(database_url) as engine:
        assert tables_with_rows(engine) == {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_full_disk_during_an_import_is_one_line_and_nothing_is_saved(capsys, database_url):
    from sqlalchemy import Engine, event

    def small_disk(dbapi_connection, _record) -> None:  # SQLite fails as on a full disk beyond this size
        dbapi_connection.execute("PRAGMA max_page_count = 60")

    event.listen(Engine, "connect", small_disk)
    try:
        reason = one_line_error(capsys, "--url", database_url, "import", SAMPLE_FILE)
    finally:
        event.remove(Engine, "connect", small_disk)
    assert reason.endswith(": the disk is full; nothing was saved")
    with engine_on(database_url) as engine:
        assert tables_with_rows(engine) == {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("fault", "says"), [
    (OSError(errno.ENOSPC, "No space left on device", "out.csv"), "out.csv: no space left on the device"),
    (PermissionError(errno.EACCES, "Permission denied", "out.csv"), "out.csv: permission denied"),
    (OSError(errno.EROFS, "Read-only file system", "out.csv"), "out.csv: read-only file system"),
])
def test_a_file_that_cannot_be_written_is_named_in_one_line(capsys, monkeypatch, database_url, tmp_path, fault,
                                                            says):
    def fail(*_args, **_kwargs):
        raise fault

    monkeypatch.setattr(spreadsheets, "write_table", fail)
    assert one_line_error(capsys, "--url", database_url, "export", tmp_path / "out.csv") == says


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unforeseen_failure_is_one_line_with_a_hint_and_its_traceback_only_with_debug(capsys, monkeypatch,
                                                                                          database_url):
    def broken(*_args, **_kwargs):
        raise RuntimeError("something nobody expected\nwith a second line")

    monkeypatch.setattr(fast_summary, "summary_rows", broken)
    reason = one_line_error(capsys, "--url", database_url, "summary")
    assert reason == ("unexpected RuntimeError: something nobody expected; with a second line (run "
                      "`python -m db --debug …` to see where; please report it)")
    status, _, err = run(capsys, "--url", database_url, "--debug", "summary")
    assert status == 1 and err.startswith("error: unexpected RuntimeError") and "Traceback" in err
    assert "in broken" in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_interrupted_command_exits_130_in_one_line(capsys, monkeypatch, database_url):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fast_summary, "summary_rows", interrupted)
    status, _, err = run(capsys, "--url", database_url, "summary")
    assert status == 130 and err == "error: interrupted: a unit of work in progress was rolled back\n"


def test_the_real_command_prints_one_line_and_no_traceback(tmp_path):
    for url in ("notaurl", f"sqlite:///{tmp_path / 'typo.db'}"):
        done = subprocess.run([sys.executable, "-m", "db", "--url", url, "summary"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 1 and done.stdout == ""
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: "), done.stderr


def imported_by(*args: str) -> set[str]:
    """Return the top-level packages `python -m db ARGS` imports, from the interpreter's own import log."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "db", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert lines, done.stderr
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines}


def test_the_help_loads_no_database_or_analysis_library():
    # Issue #15: `db summary` spent 1.64 of its 1.83 CPU-seconds importing libraries; each command imports its own.
    assert imported_by("--help") & {"scipy", "statsmodels", "argon2", "pandas", "sqlalchemy", "sqlmodel"} == set()


def test_the_summary_loads_no_password_hashing_migrations_or_statistical_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["--url", url, "init"]) == 0
    assert imported_by("--url", url, "summary") & {"argon2", "alembic", "statsmodels", "zxcvbn"} == set()


def test_a_clinicians_needling_background_is_recorded_from_the_command_line_and_listed(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    assert run(capsys, "--url", url, "init")[0] == 0
    status, _, said = run(capsys, "--url", url, "users", "add", "clin_new", "--no-password",
                          "--training", "DN level 2 (2019, 54 h)", "--years", "6")
    assert status == 0 and "added clin_new" in said
    status, _, said = run(capsys, "--url", url, "users", "background", "clin_new", "--training", "DN level 3",
                          "--years", "7")
    assert status == 0 and "needling background of clin_new" in said
    listed = pd.read_csv(io.StringIO(run(capsys, "--url", url, "users", "list")[1])).set_index("username")
    assert (listed.loc["clin_new", "needling_training"], listed.loc["clin_new", "years_practice"]) == ("DN level 3", 7)
    status, _, err = run(capsys, "--url", url, "users", "background", "clin_new", "--years", "61")
    assert status == 1 and err.count("\n") == 1 and "years" in err.lower()
    assert run(capsys, "--url", url, "users", "background", "clin_new")[0] == 1  # nothing to record: refused
