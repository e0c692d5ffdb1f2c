"""`python -m db summary`'s default table, computed without pandas (db.fast_summary, issue #15), is the reference
table of analytics.outcomes byte for byte: on the sample data, on random clinics, on random sums and on an empty
database, on every backend; its t quantile is the reference's to the last bit; and the command imports no pandas."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session

from analytics import outcomes
from clinic.outcomes import MOMENT_COLUMNS
from db import fast_summary, queries
from db.access import AccessDenied, Actor
from db.cli import main
from db.corrections import delete_session
from db.engine import write_session
from db.models import TreatmentSession
from tests.db.factories import ADMIN, engine_on, import_frame, interchange_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
HEADER = ",".join(outcomes.SUMMARY_COLUMNS) + "\n"


def reference_csv(url: str) -> str:
    """Return the table as analytics.outcomes defines it, from db.queries' roll-up read (the former command)."""
    with engine_on(url) as engine, Session(engine) as session:
        moments = queries.technique_moments(session, actor=ADMIN)
    return outcomes.summary_table(outcomes.technique_curve(moments)).to_csv(index=False, lineterminator="\n")


def reference_from_moments(moments: list[tuple]) -> str:
    frame = pd.DataFrame(moments, columns=MOMENT_COLUMNS)
    return outcomes.summary_table(outcomes.technique_curve(frame)).to_csv(index=False, lineterminator="\n")


def command_csv(capsys, url: str) -> str:
    capsys.readouterr()
    assert main(["--url", url, "summary"]) == 0
    return capsys.readouterr().out


def assert_same_table(capsys, url: str) -> str:
    expected = reference_csv(url)
    assert command_csv(capsys, url) == expected
    assert fast_summary.technique_summary(url, actor=ADMIN) == expected
    return expected


def test_the_columns_and_rounding_are_the_references():
    assert fast_summary.COLUMNS == outcomes.SUMMARY_COLUMNS
    assert fast_summary.DECIMALS == 2


def test_the_sample_datas_table_is_the_references_byte_for_byte(sample_url, capsys):
    table = assert_same_table(capsys, sample_url)
    assert table.startswith(HEADER) and table.count("\n") > 20


def test_an_empty_databases_table_is_the_header_only_as_the_references(database_url, capsys):
    assert assert_same_table(capsys, database_url) == HEADER


def random_clinic(seed: int) -> tuple[pd.DataFrame, int]:
    """Return interchange rows of a random clinic, and how many of its sessions to delete afterwards.

    Episodes of 1 to 9 sessions (so late session numbers hold one episode, or none for a technique), VAS with
    decimals and NRS, baselines of 0, repeated scores (a variance of exactly 0), all three techniques.
    """
    chance = random.Random(seed)
    rows = []
    start = date(2024, 1, 1)
    for patient in range(chance.randint(15, 45)):
        scale = chance.choice(["vas_100", "nrs_10"])
        top = 100 if scale == "vas_100" else 10
        technique = chance.choice(["deep", "superficial", "electrical"])
        pain = chance.choice([0, top, chance.randint(0, top)])
        day = start + timedelta(days=chance.randint(0, 300))
        for _ in range(chance.choice([1, 1, 2, 3, 5, 9])):
            decimal = scale == "vas_100" and chance.random() < 0.3
            shown = f"{chance.randint(0, 999) / 10:g}" if decimal else str(pain)
            rows.append(dict(patient_id=f"R{seed}-{patient}", session_date=day.isoformat(), technique=technique,
                             pain_scale=scale, pain_before=shown, condition="neck_pain"))
            pain = max(0, min(top, pain + chance.choice([-3, -2, -1, 0, 0, 1])))
            day += timedelta(days=chance.randint(3, 14))
    return interchange_rows(*rows), chance.randint(0, 6)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_random_clinics_table_is_the_references_byte_for_byte(database_url, capsys, seed):
    rows, deletions = random_clinic(seed)
    with engine_on(database_url) as engine:
        import_frame(engine, rows)
        chance = random.Random(seed)
        for _ in range(deletions):  # gaps: an episode loses a session and is numbered again
            with write_session(engine) as session:
                live = session.scalars(select(TreatmentSession.id).where(TreatmentSession.deleted_at.is_(None))).all()
                delete_session(session, actor=ADMIN, session_id=chance.choice(live), reason="test gap")
    table = assert_same_table(capsys, database_url)
    assert ",," in table  # a session number with one episode: its interval is undefined, empty in the CSV


def cell_sums(values_by_cell: dict[tuple[str, int], list[tuple[float, float, float]]]) -> list[tuple]:
    """Return MOMENT_COLUMNS rows as the roll-up holds them: per cell n, Σ pain, Σ points, Σ %, Σ %²."""
    rows = []
    for (technique, number), values in values_by_cell.items():
        pain, points, pct = (sum(v[i] for v in values) for i in range(3))
        rows.append((technique, number, len(values), pain, points, pct, sum(v[2] * v[2] for v in values)))
    return rows


@st.composite
def moments(draw) -> list[tuple]:
    """Random roll-up sums from random sessions: one patient or many, equal percents (Σ%² − nμ² rounding below 0),
    tiny intervals around 0 (a rounded −0.0), thirds and ties at the rounding's half."""
    cells = {}
    for technique in draw(st.lists(st.sampled_from(["deep", "superficial", "electrical", "a,b", 'q"x']),
                                   unique=True, max_size=3)):
        for number in draw(st.lists(st.integers(1, 40), unique=True, min_size=1, max_size=6)):
            baseline = draw(st.sampled_from([10.0, 30.0, 33.3, 70.0, 100.0]))
            kind = draw(st.sampled_from(["free", "equal", "near zero", "one"]))
            size = 1 if kind == "one" else draw(st.integers(2, 60))
            if kind == "equal":
                pains = [draw(st.floats(0, 100).map(lambda x: round(x, 1)))] * size
            elif kind == "near zero":
                pains = [baseline + draw(st.sampled_from([-0.1, 0.0, 0.1])) * 1e-3 for _ in range(size)]
            else:
                pains = [draw(st.integers(0, 1000)) / 10 for _ in range(size)]
            cells[(technique, number)] = [(p, baseline - p, 100.0 * (baseline - p) / baseline) for p in pains]
    rows = cell_sums(cells)
    return draw(st.permutations(rows))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moments())
def test_random_sums_give_the_references_csv_byte_for_byte(rows):
    assert fast_summary.summary_csv(fast_summary.summary_rows(rows)) == reference_from_moments(rows)


def test_rounding_and_float_text_are_numpys_as_pandas_writes_them():
    chance = random.Random(15)
    values = [chance.uniform(-10_000, 10_000) for _ in range(20_000)]
    values += [k / 200 for k in range(-4000, 4000)]  # every half-cent tie, both signs
    values += [k / 1000 for k in range(-50, 51)] + [0.0, -0.0, 1e15 + 0.125, 2.675, -2.675]
    texts = np.array(values).round(2).astype(str)
    assert [repr(fast_summary.rounded(v)) for v in values] == texts.tolist()


@pytest.mark.parametrize("role", ["admin", "manager", "clinician", "patient"])
def test_each_role_may_read_the_table_exactly_as_it_may_read_the_reference_s_sums(sample_url, role):
    actor = Actor(id=None, username=f"a {role}", role=role, patient_id=1 if role == "patient" else None)

    def outcome(read) -> str:
        try:
            read()
        except AccessDenied as refused:
            return f"refused: {refused}"
        return "allowed"

    with engine_on(sample_url) as engine, Session(engine) as session:
        before = outcome(lambda: queries.technique_moments(session, actor=actor))
    assert outcome(lambda: fast_summary.technique_summary(sample_url, actor=actor)) == before
    assert before == ("refused: a patient may not read clinic-wide outcomes" if role == "patient" else "allowed")


T_QUANTILES = """
import json, sys
from db import fast_summary
stdtrit = fast_summary.student_t_quantile()
cheap = "scipy._lib._array_api" not in sys.modules
dfs = [float(d) for d in range(0, 3001)] + [float(d) for d in range(3001, 2_000_001, 997)] + [1e6, 2e6 - 1]
ours = [float(stdtrit(d, 0.975)) for d in dfs]  # one at a time, as the fast table calls it
import numpy, scipy.special, scipy.stats
from analytics import outcomes
theirs = outcomes.stdtrit(numpy.array(dfs), 0.975).tolist()  # a Series' worth at once, as the reference does
print(json.dumps({
    "cheap": cheap,
    "same": [repr(q) for q in ours] == [repr(q) for q in theirs],
    "one": scipy.special.stdtrit is stdtrit and outcomes.stdtrit is stdtrit,
    "ppf": [float(scipy.stats.t.ppf(0.975, d)) for d in (1, 7, 999)] == [ours[1], ours[7], ours[999]],
}))
"""


def test_the_t_quantile_is_the_reference_ufunc_itself_loaded_without_scipy_special_s_array_api_layer():
    done = subprocess.run([sys.executable, "-c", T_QUANTILES], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    # Every df of a table of up to 2 million episodes (df 0, one episode, is NaN in both), bit for bit; the very
    # ufunc object analytics.outcomes imports; a later import of scipy.special and scipy.stats works as usual.
    assert found["same"] and found["one"] and found["ppf"]
    assert found["cheap"], "scipy.special._ufuncs no longer loads alone: the ordinary import (0.3 s) is used"


def imported_by_summary(url: str) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "db", "--url", url, "summary"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.startswith(HEADER), done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines}


def test_the_summary_command_imports_neither_pandas_nor_sqlmodel_nor_the_table_models(sample_url):
    modules = imported_by_summary(sample_url)
    assert "scipy.special._ufuncs" in modules  # the sample's intervals were computed in that process
    top = {name.split(".")[0] for name in modules}
    assert top & {"pandas", "sqlmodel", "pydantic", "analytics", "statsmodels", "alembic"} == set()
    assert {"db.models", "db.report_models", "db.engine", "db.queries", "db.rollups"} & modules == set()
