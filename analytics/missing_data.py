"""Outcomes by discharge status, and how much the figures depend on what became of the patients who dropped out.

An episode of care ends with a discharge status (goal met, dropped out, referred on, other) or is still open. The
outcome of a patient who stopped coming was never measured at the end, so the responder figures rest on an
assumption about them. `status_table` shows completed, dropped-out and open episodes side by side;
`sensitivity_table` sets today's figures ("as observed": each episode's last recorded session) beside the
pessimistic assumption that every dropout had no lasting improvement (baseline observation carried forward,
BOCF). The truth for the dropouts lies somewhere between: the gap is how much the figures depend on them.

Both take `last`, one row per episode (`analytics.outcomes.episode_last`, or `last_from_pain` from the database),
and `status`, the discharge status per episode id. Improvement, the episodes counted and the responder rule are
those of `analytics.outcomes` and `clinic.outcomes` (docs/METHODS.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analytics import outcomes
from clinic.outcomes import DEFAULT_RULE, ResponderRule
from clinic.vocabulary import DROPPED_OUT, EPISODE_STATUSES, MODERATE_PCT

# The discharge statuses of an episode of care (clinic.vocabulary; docs/METHODS.md, "Missing data and dropouts"),
# grouped as the outcome tables compare them: a dropout, or completed however else it ended. An episode without a
# status is still open.
STATUS_GROUPS = {status: "dropped_out" if status == DROPPED_OUT else "completed" for status in EPISODE_STATUSES}
GROUPS = ("completed", "dropped_out", "open")

AS_OBSERVED = "as_observed"
BOCF = "bocf_dropouts"
SCENARIO_LABELS = {
    AS_OBSERVED: "As observed (each episode's last recorded session)",
    BOCF: "Baseline carried forward for dropouts (no lasting improvement)",
}
NOTE_NO_STATUS = "no discharge status recorded: the same as observed"
NOTE_NO_DROPOUTS = "no dropouts recorded: the same as observed"

FIGURE_COLUMNS = ["episodes", "mean_improvement_pct", "ci95_low", "ci95_high", "responders_30", "share_30",
                  "ci95_low_30", "ci95_high_30"]
STATUS_COLUMNS = ["technique", "status_group", *FIGURE_COLUMNS]
SENSITIVITY_COLUMNS = ["technique", "scenario", *FIGURE_COLUMNS, "imputed", "note"]


def status_groups(last: pd.DataFrame, status: pd.Series) -> pd.Series:
    """Return each episode's status group ('completed', 'dropped_out', 'open'), aligned with `last`'s rows.

    `status` maps episode id to a discharge status; an episode missing from it, or with an empty status, is open.
    """
    codes = last["episode_id"].map(status)
    empty = codes.isna() | (codes.astype(str).str.strip() == "")
    groups = codes.map(STATUS_GROUPS)
    unknown = ~empty & groups.isna()
    if unknown.any():
        names = ", ".join(sorted(set(codes[unknown].astype(str))))
        raise ValueError(f"status: unknown discharge status {names} (expected {', '.join(STATUS_GROUPS)} or empty)")
    return groups.where(~empty, "open")


def _figures(episodes: pd.DataFrame, rule: ResponderRule) -> dict:
    """Return the mean improvement % with its 95 % t interval and the ≥ 30 % responders with a Wilson interval."""
    pct = episodes["improvement_pct"].to_numpy(float)
    n = len(pct)
    mean = float(pct.mean()) if n else np.nan
    half = float(stats.t.ppf(0.975, n - 1) * pct.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    responders = int(rule.reaches(pct, episodes["improvement_points"], episodes["baseline_points"],
                                  MODERATE_PCT).sum())
    low, high = outcomes.wilson_interval(responders, n) if n else (np.nan, np.nan)
    return {"episodes": n, "mean_improvement_pct": mean, "ci95_low": mean - half, "ci95_high": mean + half,
            "responders_30": responders, "share_30": responders / n if n else np.nan,
            "ci95_low_30": float(low), "ci95_high_30": float(high)}


def status_table(last: pd.DataFrame, status: pd.Series, rule: ResponderRule = DEFAULT_RULE) -> pd.DataFrame:
    """Return, per technique and status group, the outcome at the last session of the followed-up episodes.

    Columns `STATUS_COLUMNS`: episodes, mean improvement % with its 95 % t interval, and the episodes reaching 30 %
    by `rule` with their share and 95 % Wilson interval. The episodes are those of the responder figures
    (`outcomes.followed_up`); every group has a row, with empty figures when it has no episodes.
    """
    followed = outcomes.followed_up(last)
    groups = status_groups(followed, status)
    rows = [
        {"technique": technique, "status_group": group, **_figures(episodes[groups[episodes.index] == group], rule)}
        for technique, episodes in followed.groupby("technique")
        for group in GROUPS
    ]
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def sensitivity_table(last: pd.DataFrame, status: pd.Series, rule: ResponderRule = DEFAULT_RULE) -> pd.DataFrame:
    """Return, per technique, the last-session figures as observed and with dropouts at their baseline (BOCF).

    Columns `SENSITIVITY_COLUMNS`, one row per technique and scenario (`AS_OBSERVED`, then `BOCF`). As observed is
    the responder figures' own: followed-up episodes at their last session. BOCF counts every dropped-out episode
    with a baseline above 0 as 0 % improvement, so not a responder, those with a single session included (as
    observed leaves them out, their outcome unknown); `imputed` counts them. A technique with no discharge status
    recorded, or no dropout, has a BOCF row equal to the observed one, and `note` says why.
    """
    groups = status_groups(last, status)
    rows = []
    for technique, episodes in last.groupby("technique"):
        group = groups[episodes.index]
        dropped = (group == "dropped_out") & (episodes["baseline_points"] > 0)
        at_baseline = episodes[dropped].assign(improvement_points=0.0, improvement_pct=0.0)
        bocf = pd.concat([outcomes.followed_up(episodes[~dropped]), at_baseline])
        note = NOTE_NO_STATUS if (group == "open").all() else ("" if dropped.any() else NOTE_NO_DROPOUTS)
        rows.append({"technique": technique, "scenario": AS_OBSERVED,
                     **_figures(outcomes.followed_up(episodes), rule), "imputed": 0, "note": ""})
        rows.append({"technique": technique, "scenario": BOCF, **_figures(bocf, rule),
                     "imputed": int(dropped.sum()), "note": note})
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)


def sensitivity_sentence(table: pd.DataFrame) -> str:
    """Return one plain sentence on how the share improving by 30 % changes if every dropout did not improve."""
    if table.empty:
        return "No episode of care in these filters has a follow-up session yet."
    bocf = table[table["scenario"] == BOCF]
    if (bocf["note"] == NOTE_NO_STATUS).all():
        return ("No episode has a discharge status yet, so we cannot tell who dropped out: the figures assume "
                "each patient is as they were at their last recorded session.")
    if (bocf["imputed"] == 0).all():
        return "No patient is recorded as having dropped out, so the figures do not depend on what became of dropouts."
    observed = table[table["scenario"] == AS_OBSERVED].set_index("technique")["share_30"]
    changes = ", ".join(
        f"{100 * row.share_30:.0f} % instead of {100 * observed[row.technique]:.0f} % for {row.technique}"
        for row in bocf[bocf["imputed"] > 0].itertuples()
    )
    return (f"If every patient who dropped out had no lasting improvement, the share whose pain fell by at least "
            f"30 % would be {changes}; the truth for those patients lies somewhere in between.")
