"""Tests that `python -m db` imports, summarises and refuses as DESIGN.md section 5 says, on every backend."""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest
from scipy import stats

from db import interchange
from db.cli import main
from tests.db.factories import SAMPLE_FILE, clinical_counts, engine_on, interchange_rows, tables_with_rows

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
    exported = interchange.read_table(tmp_path / "out.csv")
    assert list(exported.columns) == interchange.COLUMNS + interchange.EXTRA_COLUMNS
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
