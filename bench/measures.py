"""The figures outside the pages: `db summary` against the naive script, save latency, and the import's rates."""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import asdict
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import text

from bench.whole_process import BenchFailed, Measured, run_module
from db.access import Actor
from db.engine import make_engine, write_session
from db.validation import validate_session
from db.writes import record_session

ADMIN = Actor.command_line()


def summary_against_naive(url: str, runs: int) -> dict:
    """Return `python -m db summary` and the naive script, each as a whole process: every run's measurements.

    Their runs alternate, so a busy spell on the machine falls on both; both must print the same table.
    """
    runs_of: dict[str, list[dict]] = {"summary": [], "naive": []}
    printed: dict[str, str] = {}
    for _ in range(runs):
        for name, module, args in (("summary", "db", ["--url", url, "summary"]),
                                   ("naive", "bench.naive_summary", [url])):
            measured = run_module(module, args)
            runs_of[name].append(_figures(measured))
            printed[name] = measured.stdout
    tables = [pd.read_csv(io.StringIO(printed[name])) for name in ("summary", "naive")]
    try:
        pd.testing.assert_frame_equal(*tables, check_dtype=False, rtol=1e-6)
    except AssertionError as difference:
        raise BenchFailed(f"the naive script's table differs from `db summary`'s: {difference}") from None
    return runs_of


def _figures(measured: Measured) -> dict:
    return {key: value for key, value in asdict(measured).items() if key != "stdout"}


NO_GAP_QUESTION = 100 * 365  # days: longer than any data set's span


def save_latencies(url: str, saves: int, seed: int = 15) -> list[float]:
    """Return the seconds each of `saves` single-session saves took: a follow-up for a random existing patient,
    validated and written as the Record session page does (`record_session` in one `write_session`)."""
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
                # A routine follow-up joins the patient's episode: the long-gap question is asked (and answered)
                # on the page before a save, so the bench sets no gap that would ask it here.
                record_session(session, actor=ADMIN, entry=entry, gap_days=NO_GAP_QUESTION)
            latencies.append(time.perf_counter() - started)
        return latencies
    finally:
        engine.dispose()


def import_figures(rows: int, measured: Measured) -> dict:
    """Return an import's rows, times and peak memory, with its rates per second and per CPU-second."""
    return {"rows": rows, **_figures(measured), "rows_per_s": rows / measured.seconds,
            "rows_per_cpu_s": rows / measured.cpu_seconds}


def medians(runs: list[dict], key: str) -> float:
    """Return the median of one figure over runs."""
    return statistics.median(run[key] for run in runs)
