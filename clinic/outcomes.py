"""What the outcome figures are, for the two floors that compute them: `db` in SQL, `analytics` in pandas.

The database sums a network's sessions where they are; analytics computes the same figures from rows. Both read
the responder rule, the reasons an episode is left out and the shapes they exchange from here (docs/METHODS.md),
and tests hold their results equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clinic.vocabulary import DEFAULT_MCID_POINTS, DEFAULT_MIN_BASELINE_POINTS, MINIMAL_PCT

if TYPE_CHECKING:  # the frames are pandas', but the ground floor loads no data library to name them
    import pandas as pd


@dataclass(frozen=True)
class ResponderRule:
    """How an improvement is classified as reaching a threshold: the percent, judged a second way (IMMPACT).

    An episode reaches t % when its improvement is at least t % of its baseline and, if the baseline is below
    `min_baseline_points`, also at least `mcid_points` points. Both are on the 0–100 scale.
    """

    mcid_points: float = DEFAULT_MCID_POINTS
    min_baseline_points: float = DEFAULT_MIN_BASELINE_POINTS

    def reaches(self, pct, points, baseline, threshold: float):
        """Return whether improvements (percent, points, baseline: scalars or arrays) reach `threshold` %."""
        pct, points, baseline = (np.asarray(v, dtype=float) for v in (pct, points, baseline))
        with np.errstate(invalid="ignore"):  # NaN percent (baseline 0) never reaches anything
            # Below the minimal threshold (a responder curve's low end) no importance is claimed: percent alone.
            by_points = ((threshold < MINIMAL_PCT) | (baseline >= self.min_baseline_points)
                         | (points >= self.mcid_points))
            return (pct >= threshold) & by_points

    def sentence(self) -> str:
        """Return the rule in words, for the pages and the methods."""
        return (
            f"A responder reaches the percent threshold (15, 30 or 50 % less pain than at the first session); when "
            f"the first session's pain was below {self.min_baseline_points:g} of 100 ({self.min_baseline_points / 10:g}"
            f" of 10), the improvement must also be at least {self.mcid_points:g} points "
            f"({self.mcid_points / 10:g} on 0–10, the absolute minimal clinically important difference), because "
            f"at low pain one step of the scale is a large percentage (2 to 1 of 10 is 50 %)."
        )


DEFAULT_RULE = ResponderRule()

# Why an episode is in no responder figure or model (`excluded_episodes`, in SQL and in pandas).
EXCLUDED_BASELINE_ZERO = "baseline pain 0: percent improvement undefined"
EXCLUDED_SINGLE_SESSION = "a single session: no follow-up yet"

# The sums per technique and session number the technique curve is built from (`curve_moments`).
MOMENT_COLUMNS = ["technique", "session_number", "n", "sum_pain", "sum_points", "sum_pct", "sumsq_pct"]


@dataclass(frozen=True)
class SafetyCounts:
    """The counts every safety figure is built from (`db.queries.safety_events`, `analytics.safety`).

    `events`: technique, code, severity, events (side effects recorded); `sessions`: technique, sessions;
    `sessions_with`: technique, severity (a class, or "any"), sessions_with (sessions with at least one).
    """

    events: pd.DataFrame
    sessions: pd.DataFrame
    sessions_with: pd.DataFrame
