"""Independent recomputations for the tests: the outcome definitions written again from the textbook, from raw rows.

Nothing here imports the code under test (analytics, db). Each function is the plainest way to compute its figure:
loops and scipy's distributions, so that agreement with the product is evidence, not a tautology.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

SAMPLE_CSV = Path(__file__).resolve().parents[2] / "sample_data" / "sessions.csv"
Z95 = float(stats.norm.ppf(0.975))
MCID_POINTS, MIN_BASELINE = 20.0, 40.0  # the responder rule's documented defaults


def episodes_from_rows(rows: pd.DataFrame) -> dict[tuple[str, str], list[dict]]:
    """Return {(patient, condition): sessions in date order, file order on a tie}, each with its pain in points."""
    out: dict[tuple[str, str], list[dict]] = {}
    for order, row in enumerate(rows.to_dict("records")):
        points = float(row["pain_before"]) * (10.0 if row["pain_scale"] == "nrs_10" else 1.0)
        out.setdefault((row["patient_id"], row["condition"]), []).append(
            {"date": row["session_date"], "order": order, "technique": row["technique"], "points": points,
             "side_effects": row["side_effects"]}
        )
    for sessions in out.values():
        sessions.sort(key=lambda s: (s["date"], s["order"]))
    return out


def read_rows(path: Path = SAMPLE_CSV) -> pd.DataFrame:
    """Return an interchange CSV as text cells (missing scale read as vas_100)."""
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows["pain_scale"] = rows["pain_scale"].replace("", "vas_100")
    return rows


def reaches(baseline: float, pain: float, threshold: float, mcid: float = MCID_POINTS,
            min_baseline: float = MIN_BASELINE) -> bool:
    """Return whether pain `pain` after baseline `baseline` reaches threshold % by the documented responder rule."""
    if baseline <= 0:
        return False
    points = baseline - pain
    return 100.0 * points / baseline >= threshold and (baseline >= min_baseline or points >= mcid)


def first_reached(sessions: list[dict], threshold: float) -> tuple[int, bool]:
    """Return (session number of the first session reaching the threshold, True) or (last session, False)."""
    baseline = sessions[0]["points"]
    for k, session in enumerate(sessions, start=1):
        if reaches(baseline, session["points"], threshold):
            return k, True
    return len(sessions), False


def kaplan_meier_reached(times: list[tuple[int, bool]]) -> list[dict]:
    """Return per session k ≥ 2 the at-risk and event counts, 1 − S(k) and its log–log Greenwood 95 % interval.

    Textbook product limit: S(k) = Π_{j ≤ k} (1 − d_j / n_j); Greenwood Var(S) = S² Σ d_j / (n_j (n_j − d_j));
    log–log interval S^exp(±z·se/ (S |log S|)) inverted; undefined (None) at S = 0, [1, 1] for S at 1.
    """
    last = max(t for t, _ in times)
    survival, greenwood, rows = 1.0, 0.0, []
    for k in range(1, last + 1):
        at_risk = sum(1 for t, _ in times if t >= k)
        events = sum(1 for t, hit in times if t == k and hit)
        if at_risk and events:
            survival *= 1 - events / at_risk
            if at_risk > events:
                greenwood += events / (at_risk * (at_risk - events))
        if k < 2:
            continue
        if survival <= 0:
            low = high = None
        elif survival >= 1:
            low = high = 0.0
        else:
            se = math.sqrt(greenwood) / abs(math.log(survival))  # se of log(−log S)
            centre = math.log(-math.log(survival))
            s_low, s_high = math.exp(-math.exp(centre + Z95 * se)), math.exp(-math.exp(centre - Z95 * se))
            low, high = 1 - s_high, 1 - s_low
        rows.append({"session_number": k, "at_risk": at_risk, "events": events, "reached": 1 - survival,
                     "ci95_low": low, "ci95_high": high})
    return rows


def reached_by_technique(episodes: dict, thresholds=(15, 30, 50)) -> pd.DataFrame:
    """Return the `summary --reached` table recomputed: per technique of session 1, threshold and k ≥ 2."""
    rows = []
    by_technique: dict[str, list[list[dict]]] = {}
    for sessions in episodes.values():
        if sessions[0]["points"] > 0:
            by_technique.setdefault(sessions[0]["technique"], []).append(sessions)
    for technique, group in sorted(by_technique.items()):
        for threshold in thresholds:
            times = [first_reached(sessions, threshold) for sessions in group]
            if max(t for t, _ in times) < 2:
                continue
            for row in kaplan_meier_reached(times):
                rows.append({"technique": technique, "threshold_pct": threshold, **row})
    return pd.DataFrame(rows)


def garwood(events: int, exposure: float) -> tuple[float, float]:
    """Return the exact Poisson 95 % interval of events / exposure: [χ²(0.025; 2k)/2, χ²(0.975; 2k+2)/2] / n."""
    low = stats.chi2.ppf(0.025, 2 * events) / 2 if events > 0 else 0.0
    return low / exposure, stats.chi2.ppf(0.975, 2 * events + 2) / 2 / exposure


def safety_by_hand(rows: pd.DataFrame) -> pd.DataFrame:
    """Return the `summary --safety` table recomputed from interchange rows, unrounded."""
    sessions: dict[str, int] = {}
    events: dict[tuple[str, str, str], int] = {}
    for row in rows.to_dict("records"):
        for technique in (row["technique"], "all"):
            sessions[technique] = sessions.get(technique, 0) + 1
            for pair in filter(None, row["side_effects"].split(";")):
                code, severity = pair.split(":")
                for key in ((code, severity), (code, "any"), ("any", severity), ("any", "any")):
                    events[(technique, *key)] = events.get((technique, *key), 0) + 1
    for technique in sessions:
        for severity in ("any", "significant", "serious"):
            events.setdefault((technique, "any", severity), 0)
    table = []
    for (technique, code, severity), k in sorted(events.items()):
        n = sessions[technique]
        low, high = garwood(k, n)
        table.append({"technique": technique, "side_effect": code, "severity": severity, "events": k,
                      "sessions": n, "per_100_sessions": 100 * k / n, "ci95_low": 100 * low,
                      "ci95_high": 100 * high})
    return pd.DataFrame(table)


def last_session_responders(episodes: dict, threshold: float) -> dict[str, tuple[int, int]]:
    """Return per technique (responders, episodes) at the last session, among followed-up episodes with pain."""
    out: dict[str, tuple[int, int]] = {}
    for sessions in episodes.values():
        baseline = sessions[0]["points"]
        if baseline <= 0 or len(sessions) < 2:
            continue
        hit = reaches(baseline, sessions[-1]["points"], threshold)
        r, n = out.get(sessions[0]["technique"], (0, 0))
        out[sessions[0]["technique"]] = (r + hit, n + 1)
    return out


def csv_number(value) -> float:
    """Return a CSV cell as a float (NaN when empty)."""
    return float(value) if value not in ("", None) else np.nan


def csv_problems(out: str, expected: pd.DataFrame, columns: list[str], keys: list[str], counts: list[str],
                 decimals: int) -> list[str]:
    """Return what is wrong with a contract CSV against its recomputation (empty when it matches).

    Checked: the header, rows sorted by `keys`, the same rows, `counts` exactly, and every other figure equal to
    the recomputed one rounded to `decimals` (within half a unit of the last decimal), missing where it is.
    """
    import io
    import re

    problems = []
    lines = out.splitlines()
    if not lines or lines[0] != ",".join(columns):
        return [f"header {lines[:1]} is not {','.join(columns)}"]
    for line in lines[1:]:
        if any(len(d) > decimals for d in re.findall(r"\.(\d+)(?=,|$)", line)):
            problems.append(f"more than {decimals} decimals: {line}")
    got = pd.read_csv(io.StringIO(out))
    order = got[keys].apply(tuple, axis=1).tolist()
    if order != sorted(order):
        problems.append("rows not sorted by " + ", ".join(keys))
    merged = got.merge(expected, on=keys, how="outer", suffixes=("", "_expected"), indicator=True)
    for row in merged[merged["_merge"] != "both"].itertuples():
        problems.append(f"row {tuple(getattr(row, k) for k in keys)} only in {row._merge}")
    merged = merged[merged["_merge"] == "both"]
    for column in counts:
        wrong = merged[merged[column] != merged[f"{column}_expected"]]
        problems += [f"{column} at {tuple(r[k] for k in keys)}: {r[column]} not {r[column + '_expected']}"
                     for r in wrong.to_dict("records")]
    for column in [c for c in columns if c not in keys + counts]:
        value, truth = merged[column].astype(float), merged[f"{column}_expected"].astype(float)
        fine = (value.isna() & truth.isna()) | ((value - truth).abs() <= 0.5 * 10**-decimals + 1e-9)
        problems += [f"{column} at {tuple(r[k] for k in keys)}: {r[column]} not {r[column + '_expected']}"
                     for r in merged[~fine].to_dict("records")]
    return problems
