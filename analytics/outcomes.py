"""The outcome definitions (docs/METHODS.md), one function each: DataFrames in, DataFrames out."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # t quantiles, as scipy.stats.t.ppf computes them, without its 1 s import

from clinic.outcomes import (
    DEFAULT_RULE,
    EXCLUDED_BASELINE_ZERO,
    EXCLUDED_SINGLE_SESSION,
    MOMENT_COLUMNS,
    ResponderRule,
)
from clinic.vocabulary import ANSWER_SESSION, IMMPACT_BANDS, RESPONDER_THRESHOLDS, SCALE_FACTOR, counted

SMALL_GROUP = 10  # fewer episodes than this at a curve point is flagged as small

SUMMARY_COLUMNS = [
    "technique",
    "session_number",
    "patients",
    "mean_pain_before",
    "mean_improvement_points",
    "mean_improvement_pct",
    "ci95_low_pct",
    "ci95_high_pct",
]


def to_points(pain: pd.Series, scale: pd.Series) -> pd.Series:
    """Return pain scores converted to the 0–100 scale (VAS as entered, NRS × 10)."""
    factor = scale.map(SCALE_FACTOR)
    if factor.isna().any():
        unknown = sorted(set(scale[factor.isna()].astype(str)))
        raise ValueError(f"pain_scale: unknown scale {', '.join(unknown)}")
    return pain.astype(float) * factor


def cumulative_improvement(sessions: pd.DataFrame) -> pd.DataFrame:
    """Return sessions with baseline, improvement in points and in percent (NaN when the baseline is 0).

    `sessions` has one row per session with `episode_id`, `session_number`, `pain_scale` and `pain_before`
    (and optionally `pain_after` and `technique`). The episode's technique is that of its first session.
    """
    out = sessions.sort_values(["episode_id", "session_number"]).reset_index(drop=True)
    out["pain_before_points"] = to_points(out["pain_before"], out["pain_scale"])
    if "pain_after" in out:
        out["pain_after_points"] = to_points(out["pain_after"], out["pain_scale"])
    first = out.groupby("episode_id", sort=False).head(1).set_index("episode_id")
    out["baseline_points"] = out["episode_id"].map(first["pain_before_points"])
    if "technique" in out:
        out["episode_technique"] = out["episode_id"].map(first["technique"])
    out["improvement_points"] = out["baseline_points"] - out["pain_before_points"]
    baseline = out["baseline_points"].where(out["baseline_points"] > 0)
    out["improvement_pct"] = 100.0 * out["improvement_points"] / baseline
    return out


def immediate_effect(sessions: pd.DataFrame) -> pd.Series:
    """Return each session's immediate effect, pain before minus pain after, in points (NaN without an after)."""
    return to_points(sessions["pain_before"], sessions["pain_scale"]) - to_points(
        sessions["pain_after"], sessions["pain_scale"]
    )


def curve_moments(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return, per episode technique and session number, the sums the technique curve is built from.

    Episodes whose baseline is 0 have no percent improvement and are left out (see `excluded_episodes`).
    The database computes the same sums in SQL (`db.queries.technique_moments`) for large clinics.
    """
    rows = improvement[improvement["baseline_points"] > 0]
    grouped = rows.groupby(["episode_technique", "session_number"])
    moments = pd.DataFrame(
        {
            "n": grouped.size(),
            "sum_pain": grouped["pain_before_points"].sum(),
            "sum_points": grouped["improvement_points"].sum(),
            "sum_pct": grouped["improvement_pct"].sum(),
            "sumsq_pct": grouped["improvement_pct"].apply(lambda x: float((x * x).sum())),
        }
    )
    return moments.reset_index().rename(columns={"episode_technique": "technique"})[MOMENT_COLUMNS]


def technique_curve(moments: pd.DataFrame) -> pd.DataFrame:
    """Return the technique curve: mean cumulative improvement per session number with a 95 % t interval.

    One row per technique and session number, columns `SUMMARY_COLUMNS` plus `small` (fewer than 10 patients).
    The interval is undefined (NaN) where only one patient contributes.
    """
    m = moments.sort_values(["technique", "session_number"]).reset_index(drop=True)
    n = m["n"].astype(float)
    mean_pct = m["sum_pct"] / n
    variance = ((m["sumsq_pct"] - n * mean_pct**2) / (n - 1)).clip(lower=0).where(n > 1)
    half_width = stdtrit(n - 1, 0.975) * np.sqrt(variance / n)
    curve = pd.DataFrame(
        {
            "technique": m["technique"],
            "session_number": m["session_number"].astype(int),
            "patients": m["n"].astype(int),
            "mean_pain_before": m["sum_pain"] / n,
            "mean_improvement_points": m["sum_points"] / n,
            "mean_improvement_pct": mean_pct,
            "ci95_low_pct": mean_pct - half_width,
            "ci95_high_pct": mean_pct + half_width,
        }
    )
    curve["small"] = curve["patients"] < SMALL_GROUP
    return curve


def summary_table(curve: pd.DataFrame) -> pd.DataFrame:
    """Return the `python -m db summary` table: the curve's contract columns, rounded to 2 decimals."""
    return curve[SUMMARY_COLUMNS].round(2)


def wilson_interval(successes, trials) -> tuple[np.ndarray, np.ndarray]:
    """Return the 95 % Wilson score interval for successes out of trials, as fractions 0–1."""
    # Imported here: the technique curve (`python -m db summary`) needs none of statsmodels' 0.4 s of imports.
    from statsmodels.stats.proportion import proportion_confint

    successes, trials = np.asarray(successes), np.asarray(trials)
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    # The score interval is exactly [0, …] with no success and […, 1] with no failure; computed, it leaves a residue
    # (4e-19 for 0 of 624) that a table shows as a bound above 0.
    low = np.where((successes == 0) & (trials > 0), 0.0, low)
    high = np.where((successes == trials) & (trials > 0), 1.0, high)
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def responder_table(counts: pd.DataFrame) -> pd.DataFrame:
    """Return responder shares with Wilson intervals from counts (`technique, threshold_pct, patients, responders`)."""
    out = counts.sort_values(["technique", "threshold_pct"]).reset_index(drop=True)
    out["share"] = out["responders"] / out["patients"]
    out["ci95_low"], out["ci95_high"] = wilson_interval(out["responders"], out["patients"])
    return out[["technique", "threshold_pct", "patients", "responders", "share", "ci95_low", "ci95_high"]]


LAST_COLUMNS = ["episode_id", "technique", "sessions", "baseline_points", "improvement_points", "improvement_pct"]


def episode_last(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return one row per episode: its technique, sessions, baseline and improvement at its last session.

    `improvement` is `cumulative_improvement`'s frame; the database builds the same rows with `last_from_pain`.
    """
    last = improvement.groupby("episode_id", sort=False).tail(1)
    return pd.DataFrame(
        {
            "episode_id": last["episode_id"].to_numpy(),
            "technique": last["episode_technique"].to_numpy(),
            "sessions": last["session_number"].astype(int).to_numpy(),
            "baseline_points": last["baseline_points"].to_numpy(float),
            "improvement_points": last["improvement_points"].to_numpy(float),
            "improvement_pct": last["improvement_pct"].to_numpy(float),
        },
        columns=LAST_COLUMNS,
    )


def last_from_pain(episodes: pd.DataFrame) -> pd.DataFrame:
    """Return `episode_last`'s rows from raw pain: `episode_id, technique, sessions, baseline_scale, baseline_pain,
    last_scale, last_pain` (the first and the last session's scale and pain as entered), one row per episode."""
    baseline = to_points(episodes["baseline_pain"], episodes["baseline_scale"])
    points = baseline - to_points(episodes["last_pain"], episodes["last_scale"])
    return pd.DataFrame(
        {
            "episode_id": episodes["episode_id"].to_numpy(),
            "technique": episodes["technique"].to_numpy(),
            "sessions": episodes["sessions"].astype(int).to_numpy(),
            "baseline_points": baseline.to_numpy(float),
            "improvement_points": points.to_numpy(float),
            "improvement_pct": (100.0 * points / baseline.where(baseline > 0)).to_numpy(float),
        },
        columns=LAST_COLUMNS,
    )


def followed_up(last: pd.DataFrame) -> pd.DataFrame:
    """Return the episodes every responder figure counts: a baseline above 0 and at least one follow-up session.

    A single-session episode's outcome is unknown, not "no improvement"; with baseline 0 the percent is undefined.
    Both are counted by `excluded_episodes` instead.
    """
    return last[(last["baseline_points"] > 0) & (last["sessions"] > 1)]


def count_responders(last: pd.DataFrame, thresholds=RESPONDER_THRESHOLDS, rule: ResponderRule = DEFAULT_RULE
                     ) -> pd.DataFrame:
    """Return, per technique and threshold, the followed-up episodes and the responders among them (`rule`)."""
    last = followed_up(last)
    rows = [
        {
            "technique": technique,
            "threshold_pct": threshold,
            "patients": len(group),
            "responders": int(rule.reaches(group["improvement_pct"], group["improvement_points"],
                                           group["baseline_points"], threshold).sum()),
        }
        for technique, group in last.groupby("technique")
        for threshold in thresholds
    ]
    return pd.DataFrame(rows, columns=["technique", "threshold_pct", "patients", "responders"])


def count_responders_in_parts(parts, thresholds=RESPONDER_THRESHOLDS, rule: ResponderRule = DEFAULT_RULE
                              ) -> pd.DataFrame:
    """Return `count_responders` of every episode given a part at a time (frames of `last_from_pain`'s columns):
    each part's counts added up, so a network's episodes are never held at once. The same table as the whole."""
    counts = pd.concat([count_responders(last, thresholds, rule) for last in parts], ignore_index=True)
    summed = counts.groupby(["technique", "threshold_pct"], as_index=False, sort=True)[["patients", "responders"]]
    return summed.sum().astype({"patients": int, "responders": int})


def responder_counts(improvement: pd.DataFrame, thresholds=RESPONDER_THRESHOLDS,
                     rule: ResponderRule = DEFAULT_RULE) -> pd.DataFrame:
    """Return, per technique and threshold, episodes and responders at each episode's last session.

    The `patients` column counts episodes of care (its name is the contract's). Only followed-up episodes count
    (see `followed_up`); `excluded_episodes` counts the others.
    """
    return count_responders(episode_last(improvement), thresholds, rule)


def analysable(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return the sessions of episodes with a baseline above 0: the episodes every percentage and model uses."""
    return improvement[improvement["baseline_points"] > 0]


def excluded_episodes(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return, per technique and reason, the episodes left out of responder figures and models.

    Baseline 0 (no percentage; left out of every percentage) comes first; single-session episodes with a
    baseline above 0 are counted under the second reason.
    """
    sizes = improvement.groupby("episode_id").agg(
        technique=("episode_technique", "first"),
        baseline=("baseline_points", "first"),
        sessions=("session_number", "max"),
    )
    reasons = np.where(sizes["baseline"] <= 0, EXCLUDED_BASELINE_ZERO,
                       np.where(sizes["sessions"] <= 1, EXCLUDED_SINGLE_SESSION, ""))
    out = sizes.assign(reason=reasons)
    out = out[out["reason"] != ""].groupby(["technique", "reason"]).size().rename("episodes").reset_index()
    return out[["technique", "episodes", "reason"]]


def improvement_band(pct: float, points: float | None = None, baseline: float | None = None,
                     rule: ResponderRule = DEFAULT_RULE) -> str | None:
    """Return the IMMPACT band an improvement reaches under `rule` ('substantial', …), or None below 15 %.

    Without `points` and `baseline` the percent alone decides (as for a baseline of at least the rule's minimum).
    """
    points = np.inf if points is None else points
    baseline = np.inf if baseline is None else baseline
    reached = [label for threshold, label in IMMPACT_BANDS.items() if rule.reaches(pct, points, baseline, threshold)]
    return reached[-1] if reached else None


def progress_sentence(improvement: pd.DataFrame, *, to_patient: bool = True) -> str:
    """Return a plain-language sentence about a patient's latest cumulative improvement.

    Spoken to the patient ("Your pain…") by default; with `to_patient=False`, about them, for clinicians.
    """
    if improvement.empty:
        return "No sessions recorded yet."
    last = improvement.iloc[-1]
    if len(improvement) == 1:
        return "This was the first session. It sets the starting point that later sessions are compared with."
    if last["baseline_points"] <= 0:
        return "Pain was 0 at the first session, so change is shown in points only."
    whose, first = ("Your pain", "your first session") if to_patient else ("The patient's pain", "the first session")
    pct = float(last["improvement_pct"])
    if round(pct) == 0:
        return f"{whose} is about the same as at {first}."
    if pct < 0:
        return f"{whose} is {abs(pct):.0f} % higher than at {first}."
    sentence = f"{whose} is {pct:.0f} % lower than at {first}."
    band = improvement_band(pct, float(last["improvement_points"]), float(last["baseline_points"]))
    if band == "substantial":
        sentence += " That is a substantial improvement."
    elif band == "moderate":
        sentence += " That is an important improvement."
    return sentence


def _owners(techniques) -> str:
    return " and ".join(f"{technique}'s" for technique in techniques)


def best_by_session_sentence(curve: pd.DataFrame, session: int = ANSWER_SESSION) -> str:
    """Return one plain sentence on which technique improved most by `session`, with its interval and episodes.

    `curve` is `technique_curve`'s table. The sentence names every technique's mean improvement at that session,
    says which of the others' intervals the best one's lies above (no overlap), and warns of groups under
    SMALL_GROUP.
    """
    at = curve[curve["session_number"] == session].sort_values("mean_improvement_pct", ascending=False)
    if at.empty:
        return f"No episode of care in these filters has reached session {session} yet."

    def figure(row) -> str:
        interval = (f"95 % CI {row.ci95_low_pct:.0f} to {row.ci95_high_pct:.0f} %, "
                    if pd.notna(row.ci95_low_pct) else "")
        return f"{row.mean_improvement_pct:.0f} % ({interval}{counted(int(row.patients), 'episode')})"

    best, others = at.iloc[0], at.iloc[1:]
    if others.empty:
        sentence = (f"By session {session}, only {best.technique} dry needling has episodes to show: "
                    f"{figure(best)} less pain than at the first session on average.")
    else:
        rest = "; ".join(f"{row.technique} {figure(row)}" for row in others.itertuples())
        sentence = (f"By session {session}, {best.technique} dry needling did best: pain {figure(best)} lower than "
                    f"at the first session on average, against {rest}.")
        below = (others["ci95_high_pct"] < best.ci95_low_pct).to_numpy()  # False for an interval not computed
        if below.all():
            sentence += " Its interval lies above the others'."
        elif not below.any():
            sentence += " The intervals overlap, so this may be chance rather than a real difference."
        else:  # which lead is clear and which may be chance, not that "the intervals overlap" as a whole
            clear, unclear = others["technique"][below], others["technique"][~below]
            sentence += (f" Its interval lies above {_owners(clear)} but overlaps {_owners(unclear)}, so its lead "
                         f"over {' and '.join(unclear)} may be chance.")
    small = at[at["patients"] < SMALL_GROUP]["technique"].tolist()
    if small:
        sentence += f" Fewer than {SMALL_GROUP} episodes: {', '.join(small)}; read with care."
    return sentence
