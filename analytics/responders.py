"""Responder analysis (IMMPACT, DESIGN.md section 3): who reached 15, 30 and 50 % less pain, and by when."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics import outcomes

EARLY_SESSION = 4  # "positive results are usually evident in 2 to 4 sessions" (REFERENCES.md): the claim checked
LAST, EARLY = "last session", f"by session {EARLY_SESSION}"
SHARE_COLUMNS = ["technique", "timepoint", "threshold_pct", "patients", "responders", "share", "ci95_low", "ci95_high"]
CURVE_COLUMNS = ["technique", "threshold_pct", "patients", "responders", "share", "ci95_low", "ci95_high"]


def responders_by_session(improvement: pd.DataFrame, session: int = EARLY_SESSION, thresholds=None) -> pd.DataFrame:
    """Return per technique and threshold the episodes, and those that reached the threshold at any session ≤ session.

    "By session 4" means reached ≥ threshold at session 2, 3 or 4 (any session up to 4), not "still there at
    session 4": it is the event the Kaplan–Meier curve of analytics.survival counts, so the two agree. Episodes
    that ended before session 4 without reaching it count as not reached (the survival curve, which censors them,
    is the fairer figure for them); episodes with baseline 0 are left out as in every percentage.
    """
    thresholds = outcomes.RESPONDER_THRESHOLDS if thresholds is None else thresholds
    early = improvement[improvement["session_number"] <= session].sort_values(["episode_id", "session_number"])
    # The best improvement so far, carried on each episode's last row up to `session`, is what responder_counts
    # reads: reached at any session ≤ session.
    best = early.assign(improvement_pct=early.groupby("episode_id")["improvement_pct"].cummax())
    return outcomes.responder_counts(best, thresholds)


def responder_shares(improvement: pd.DataFrame, session: int = EARLY_SESSION, thresholds=None) -> pd.DataFrame:
    """Return responder shares with 95 % Wilson intervals at the last session and by `session`, per technique."""
    thresholds = outcomes.RESPONDER_THRESHOLDS if thresholds is None else thresholds
    last = outcomes.responder_table(outcomes.responder_counts(improvement, thresholds)).assign(timepoint=LAST)
    early = outcomes.responder_table(responders_by_session(improvement, session, thresholds))
    early = early.assign(timepoint=f"by session {session}")
    table = pd.concat([last, early], ignore_index=True)
    return table[SHARE_COLUMNS].sort_values(["technique", "timepoint", "threshold_pct"]).reset_index(drop=True)


def responder_curve(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return the cumulative responder curve: per technique, the share reaching ≥ x % at the last session, x = 0..100.

    One row per technique and integer x; episodes with baseline 0 are left out (percent undefined). The shares
    carry 95 % Wilson intervals; the curve never rises as x grows.
    """
    last = improvement[improvement["baseline_points"] > 0].groupby("episode_id").tail(1)
    thresholds = np.arange(0, 101)
    frames = []
    for technique, group in last.groupby("episode_technique"):
        pct = group["improvement_pct"].to_numpy()
        responders = (pct[None, :] >= thresholds[:, None]).sum(axis=1)
        frames.append(
            pd.DataFrame(
                {"technique": technique, "threshold_pct": thresholds, "patients": len(pct), "responders": responders}
            )
        )
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    curve = pd.concat(frames, ignore_index=True)
    curve["share"] = curve["responders"] / curve["patients"]
    curve["ci95_low"], curve["ci95_high"] = outcomes.wilson_interval(curve["responders"], curve["patients"])
    return curve[CURVE_COLUMNS]
