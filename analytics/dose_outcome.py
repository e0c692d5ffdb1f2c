"""Dose and outcome (#16): cumulative improvement at session 4 by the needling dose given before it. Descriptive.

An episode's dose of one kind is the mean per session of what was recorded at its sessions before session 4
(sessions 1 to 3: the treatment the pain reported at session 4 follows), electrical parameters over its electrical
sessions only. Its outcome is the cumulative improvement at session 4 in percent (docs/DESIGN.md section 3). Each
group of episodes gets the mean with a 95 % Student-t interval and its number of episodes, as the technique curve
does; episodes whose dose was never recorded form their own row, so a reader sees whether they differ.

These are associations in routine care, not effects of the dose: a clinician gives more or longer stimulation to
the patients who need it, and the groups differ in ways nothing here adjusts for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from analytics import outcomes
from clinic.vocabulary import ANSWER_SESSION, ESTIM_TECHNIQUE

NOT_RECORDED = "not recorded"
SMALL_GROUP = outcomes.SMALL_GROUP
CAVEAT = (
    "Observational, not a trial: these are the outcomes of the patients who happened to receive each dose. "
    "Clinicians choose the dose for the patient in front of them (more stimulation for stubborn pain, less for a "
    "sensitive patient), so a difference between groups may reflect who got the dose rather than what the dose did. "
    "Nothing here is adjusted for baseline pain, condition or clinician; read it as a question to test, not an answer."
)
COLUMNS = ["dose", "group", "episodes", "mean_improvement_pct", "ci95_low_pct", "ci95_high_pct", "small"]


@dataclass(frozen=True)
class Dose:
    """One kind of dose: its session column, its name in words, the groups' upper edges (right-closed) and labels,
    and whether it is read from electrical sessions only."""

    column: str
    title: str
    edges: tuple[float, ...]
    labels: tuple[str, ...]
    electrical_only: bool = False

    def group(self, values: pd.Series) -> pd.Series:
        """Return each value's group label (NaN for a missing value)."""
        bins = [-np.inf, *self.edges, np.inf]
        return pd.cut(values, bins=bins, labels=list(self.labels), right=True).astype(object)


# Groups by the mean per session before session 4; each upper edge is included ("1–2": above 0, up to 2).
DOSES = (
    Dose("twitch_count", "Twitch responses per session", (0, 2, 5), ("0", "1–2", "3–5", "> 5")),
    Dose("insertions", "Needle insertions per session", (5, 10, 20), ("1–5", "6–10", "11–20", "> 20")),
    Dose("retention_s", "Needle retention", (0, 300, 900),
         ("in and out (0 s)", "up to 5 min", "5–15 min", "over 15 min")),
    Dose("estim_hz", "Electrical stimulation frequency", (10, 50), ("up to 10 Hz", "10–50 Hz", "over 50 Hz"),
         electrical_only=True),
    Dose("estim_ma", "Electrical stimulation intensity", (2, 5), ("up to 2 mA", "2–5 mA", "over 5 mA"),
         electrical_only=True),
)
DOSE_COLUMNS = tuple(dose.column for dose in DOSES)
# What `dose_outcome` reads of each session: the outcome's columns and the doses'.
SESSION_COLUMNS = ("episode_id", "session_number", "technique", "pain_scale", "pain_before", *DOSE_COLUMNS)


def mean_interval(values: pd.Series) -> tuple[int, float, float, float]:
    """Return (n, mean, 95 % t interval low, high) of the values; the interval is NaN with fewer than two."""
    values = values.dropna().astype(float)
    n = len(values)
    if n == 0:
        return 0, np.nan, np.nan, np.nan
    mean = float(values.mean())
    if n < 2:
        return n, mean, np.nan, np.nan
    half = float(stdtrit(n - 1, 0.975)) * float(values.std(ddof=1)) / np.sqrt(n)
    return n, mean, mean - half, mean + half


def episode_doses(sessions: pd.DataFrame, session: int = ANSWER_SESSION) -> pd.DataFrame:
    """Return, per episode reaching `session`, its improvement there in percent (`improvement_pct`, NaN when the
    baseline is 0) and each dose's mean per session before it (NaN when not recorded; electrical parameters over
    the electrical sessions, and absent for an episode without one: column `electrical` says whether it had one)."""
    improvement = outcomes.cumulative_improvement(sessions)
    reached = improvement.loc[improvement["session_number"] == session, ["episode_id", "improvement_pct"]]
    before = improvement[(improvement["session_number"] < session)
                         & improvement["episode_id"].isin(reached["episode_id"])]
    electrical = before[before["technique"] == ESTIM_TECHNIQUE]
    means = {}
    for dose in DOSES:
        given = electrical if dose.electrical_only else before
        means[dose.column] = pd.to_numeric(given[dose.column], errors="coerce").groupby(given["episode_id"]).mean()
    out = reached.set_index("episode_id")
    for column, mean in means.items():
        out[column] = mean
    out["electrical"] = out.index.isin(electrical["episode_id"])
    return out.reset_index()


def dose_outcome(sessions: pd.DataFrame, session: int = ANSWER_SESSION) -> pd.DataFrame:
    """Return the improvement at `session` by dose group: one row per dose and group in `DOSES` order (every group,
    empty ones with 0 episodes) and a last "not recorded" row per dose, columns `COLUMNS`.

    `sessions` has one row per session with `SESSION_COLUMNS`. Episodes with a baseline of 0 have no percentage
    and are left out, counted in `attrs["excluded_baseline_zero"]`; `attrs["episodes"]` counts those reaching it.
    """
    return dose_table(episode_doses(sessions, session))


def dose_table(episodes: pd.DataFrame) -> pd.DataFrame:
    """Return `dose_outcome`'s table from `episode_doses`' rows (of whole episodes, computed a part at a time: the
    same rows as of all the sessions at once)."""
    analysable = episodes[episodes["improvement_pct"].notna()]
    rows = []
    for dose in DOSES:
        eligible = analysable[analysable["electrical"]] if dose.electrical_only else analysable
        groups = dose.group(eligible[dose.column])
        for label in (*dose.labels, NOT_RECORDED):
            chosen = groups.isna() if label == NOT_RECORDED else groups == label
            n, mean, low, high = mean_interval(eligible.loc[chosen, "improvement_pct"])
            rows.append((dose.column, label, n, mean, low, high, n < SMALL_GROUP))
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs.update(episodes=len(episodes), excluded_baseline_zero=len(episodes) - len(analysable))
    return table


def dose_titles() -> dict[str, str]:
    """Return each dose column's name in words."""
    return {dose.column: dose.title for dose in DOSES}
