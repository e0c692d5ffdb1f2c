"""Responder analysis (IMMPACT): the cumulative responder curve at each episode's last session.

The shares at 15, 30 and 50 % are `analytics.outcomes.responder_counts`; "reached by session k", which must not
count an episode that stopped early as a non-responder, is the Kaplan–Meier table of `analytics.survival`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics import outcomes
from clinic.outcomes import DEFAULT_RULE, ResponderRule

CURVE_COLUMNS = ["technique", "threshold_pct", "patients", "responders", "share", "ci95_low", "ci95_high"]


def responder_curve(improvement: pd.DataFrame, rule: ResponderRule = DEFAULT_RULE) -> pd.DataFrame:
    """Return the cumulative responder curve: per technique, the share reaching ≥ x % at the last session, x = 0..100.

    One row per technique and integer x. The episodes are those of the responder bar chart (`outcomes.followed_up`:
    a baseline above 0 and a follow-up session), classified by the same `rule`, so at 15, 30 and 50 % the curve
    equals the bars. The shares carry 95 % Wilson intervals; the curve never rises as x grows.
    """
    last = outcomes.followed_up(outcomes.episode_last(improvement))
    thresholds = np.arange(0, 101)
    frames = []
    for technique, group in last.groupby("technique"):
        reached = np.stack([
            rule.reaches(group["improvement_pct"], group["improvement_points"], group["baseline_points"], x)
            for x in thresholds
        ])
        frames.append(
            pd.DataFrame(
                {"technique": technique, "threshold_pct": thresholds, "patients": len(group),
                 "responders": reached.sum(axis=1)}
            )
        )
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    curve = pd.concat(frames, ignore_index=True)
    curve["share"] = curve["responders"] / curve["patients"]
    curve["ci95_low"], curve["ci95_high"] = outcomes.wilson_interval(curve["responders"], curve["patients"])
    return curve[CURVE_COLUMNS]
