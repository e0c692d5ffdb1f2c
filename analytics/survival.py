"""Time to response: sessions until an episode first reaches a threshold, as Kaplan–Meier curves per technique.

Episodes that stop before they respond are censored at their last session, not counted as failures: the curve
estimates the share who would have responded by session k had they all kept coming (if stopping is unrelated to
how they would have fared). This is where a clinic checks the claim that positive results are usually evident in
2 to 4 sessions, and the one definition of "reached by session k" (`reached_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight

from analytics.outcomes import analysable
from clinic.outcomes import DEFAULT_RULE, ResponderRule
from clinic.vocabulary import MODERATE_PCT, RESPONDER_THRESHOLDS

Z95 = float(stats.norm.ppf(0.975))
TIME_COLUMNS = ["episode_id", "technique", "sessions", "responded"]
CURVE_COLUMNS = [
    "technique", "session_number", "at_risk", "responses", "censored", "survival", "ci95_low", "ci95_high",
    "responded_share",
]
MEDIAN_COLUMNS = ["technique", "patients", "responses", "median_sessions", "median_ci95_low", "median_ci95_high"]
REACHED_COLUMNS = ["technique", "threshold_pct", "session_number", "at_risk", "events", "reached", "ci95_low",
                   "ci95_high"]


def time_to_response(improvement: pd.DataFrame, threshold_pct: float = MODERATE_PCT,
                     rule: ResponderRule = DEFAULT_RULE) -> pd.DataFrame:
    """Return per episode the session number at which it first reached the threshold, or its last session if censored.

    `responded` is True for an event (reached the threshold, classified by `rule` as every responder figure is)
    and False for a censored episode. Episodes with baseline 0 have no percent improvement and are left out.
    """
    rows = analysable(improvement).sort_values(["episode_id", "session_number"])
    hit = rule.reaches(rows["improvement_pct"], rows["improvement_points"], rows["baseline_points"], threshold_pct)
    reached = rows[hit].groupby("episode_id")["session_number"].min()
    episodes = rows.groupby("episode_id").agg(
        technique=("episode_technique", "first"), last=("session_number", "max")
    )
    responded = episodes.index.isin(reached.index)
    times = pd.DataFrame(
        {
            "episode_id": episodes.index,
            "technique": episodes["technique"].to_numpy(),
            "sessions": np.where(responded, reached.reindex(episodes.index).to_numpy(), episodes["last"]).astype(int),
            "responded": responded,
        }
    )
    return times[TIME_COLUMNS]


def _survfunc(group: pd.DataFrame) -> SurvfuncRight:
    return SurvfuncRight(group["sessions"].to_numpy(float), group["responded"].to_numpy(int))


def _step(fitted: SurvfuncRight, at: np.ndarray, values: np.ndarray, before: float) -> np.ndarray:
    """Return the right-continuous step function of `values` at the event times, evaluated at `at`."""
    if len(values) == 0:  # no responses at all: the curve stays at its starting value
        return np.full(len(at), before)
    index = np.searchsorted(fitted.surv_times, at, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], before)


def kaplan_meier(times: pd.DataFrame) -> pd.DataFrame:
    """Return per technique and session number 1..longest episode the Kaplan–Meier share not yet responded.

    `survival` is statsmodels' product-limit estimate S(k) after session k, with a pointwise 95 % interval on
    the log–log scale from Greenwood's standard error (R survival's conf.type = "log-log"): it stays inside
    0–1, and is NaN where S = 0. `responded_share` is 1 − S(k), the share who reached the threshold by
    session k. At-risk, response and censoring counts are per session number, for the table beside the chart.
    """
    frames = []
    for technique, group in times.groupby("technique"):
        fitted = _survfunc(group)
        k = np.arange(1, int(group["sessions"].max()) + 1)
        survival = _step(fitted, k, np.asarray(fitted.surv_prob), 1.0)
        se = _step(fitted, k, np.asarray(fitted.surv_prob_se), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            # log–log transform: Var(log(−log S)) = Var(S) / (S · log S)²; undefined at S = 1 and S = 0.
            half = Z95 * se / np.abs(survival * np.log(survival))
            low = np.exp(-np.exp(np.log(-np.log(survival)) + half))
            high = np.exp(-np.exp(np.log(-np.log(survival)) - half))
        # Before the first response S = 1 with no uncertainty; at S = 0 the log–log interval is undefined (NaN,
        # as in R), so the median's upper limit is not "reached" just because the last patient at risk responded.
        low = np.where(survival >= 1.0, 1.0, np.where(survival <= 0.0, np.nan, low))
        high = np.where(survival >= 1.0, 1.0, np.where(survival <= 0.0, np.nan, high))
        sessions, responded = group["sessions"].to_numpy(), group["responded"].to_numpy(bool)
        frames.append(
            pd.DataFrame(
                {
                    "technique": technique,
                    "session_number": k,
                    "at_risk": [(sessions >= i).sum() for i in k],
                    "responses": [(responded & (sessions == i)).sum() for i in k],
                    "censored": [(~responded & (sessions == i)).sum() for i in k],
                    "survival": survival,
                    "ci95_low": low,
                    "ci95_high": high,
                    "responded_share": 1.0 - survival,
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]


def _first_session(curve: pd.DataFrame, column: str) -> int | None:
    """Return the first session number at which `column` is ≤ 0.5, or None if it never gets there."""
    # The product of fractions can miss 0.5 by a rounding error; S exactly 0.5 must count as reached.
    reached = curve.loc[curve[column] <= 0.5 + 1e-12, "session_number"]
    return int(reached.iloc[0]) if len(reached) else None


def median_sessions(times: pd.DataFrame) -> pd.DataFrame:
    """Return per technique the median number of sessions to response (None when S never drops to 0.5).

    The median is the first session number k with S(k) ≤ 0.5 (the usual Kaplan–Meier median; statsmodels'
    `quantile` takes S < 0.5, one step later when S is exactly 0.5). Its 95 % interval is where the pointwise
    band crosses 0.5, as R's survfit does: from the first k whose lower limit is ≤ 0.5 to the first k whose
    upper limit is; None where the band never gets there. (statsmodels' `quantile_ci` needs an event time with
    S near 0.5 and returns nothing when, as with whole sessions, the curve jumps across it.)
    """
    curves = kaplan_meier(times)
    rows = []
    for technique, group in times.groupby("technique"):
        curve = curves[curves["technique"] == technique]
        rows.append(
            {
                "technique": technique,
                "patients": len(group),
                "responses": int(group["responded"].sum()),
                "median_sessions": _first_session(curve, "survival"),
                "median_ci95_low": _first_session(curve, "ci95_low"),
                "median_ci95_high": _first_session(curve, "ci95_high"),
            }
        )
    # object columns keep None (not NaN) and whole numbers (not 3.0) for "never" and for sessions
    return pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object) for c in MEDIAN_COLUMNS}).astype(
        {"technique": str, "patients": int, "responses": int}
    )


def reached_table(improvement: pd.DataFrame, thresholds=RESPONDER_THRESHOLDS,
                  rule: ResponderRule = DEFAULT_RULE) -> pd.DataFrame:
    """Return the Kaplan–Meier share of episodes that reached each threshold by session k, for k ≥ 2.

    One row per technique (of the episode's first session), threshold and session number from 2 to the last one
    with an episode at risk: `at_risk` and `events` at k, `reached` = 1 − S(k) and its 95 % interval, the log–log
    Greenwood interval of S turned round (NaN where S = 0, as it is undefined there). Not rounded.
    """
    frames = []
    for threshold in thresholds:
        curve = kaplan_meier(time_to_response(improvement, threshold, rule))
        curve = curve[curve["session_number"] >= 2]
        frames.append(
            pd.DataFrame(
                {
                    "technique": curve["technique"],
                    "threshold_pct": threshold,
                    "session_number": curve["session_number"].astype(int),
                    "at_risk": curve["at_risk"].astype(int),
                    "events": curve["responses"].astype(int),
                    "reached": 1.0 - curve["survival"].astype(float),
                    "ci95_low": 1.0 - curve["ci95_high"].astype(float),
                    "ci95_high": 1.0 - curve["ci95_low"].astype(float),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=REACHED_COLUMNS)
    shares = ["reached", "ci95_low", "ci95_high"]
    table[shares] = table[shares].astype(float).clip(0.0, 1.0)  # 1 − S can fall a rounding error below 0
    return table[REACHED_COLUMNS].sort_values(["technique", "threshold_pct", "session_number"], ignore_index=True)


def reached_by(table: pd.DataFrame, session: int) -> pd.DataFrame:
    """Return `reached_table`'s estimate by `session` for each technique and threshold: its row at that session or,
    where no episode was at risk there because every one had reached the threshold earlier, 100 % carried forward
    (none at risk, none reaching it at that session). A threshold whose last episodes stopped earlier without
    reaching it has no row: past the last episode followed, the product limit says nothing."""
    upto = table[table["session_number"] <= session]
    last = upto.groupby(["technique", "threshold_pct"], sort=False).tail(1)
    every_one = (last["session_number"] < session) & (last["events"] == last["at_risk"])  # there S = 0, exactly
    carried = last[every_one].assign(session_number=session, at_risk=0, events=0)
    return (pd.concat([last[last["session_number"] == session], carried])
            .sort_values(["technique", "threshold_pct"], ignore_index=True))


def reached_summary(improvement: pd.DataFrame, rule: ResponderRule = DEFAULT_RULE) -> pd.DataFrame:
    """Return the `python -m db summary --reached` table: `reached_table` at 15, 30 and 50 %, to 4 decimals."""
    return reached_table(improvement, RESPONDER_THRESHOLDS, rule).round({"reached": 4, "ci95_low": 4, "ci95_high": 4})
