"""Effect sizes of the change in pain within each technique: standardised response mean and Cohen's d.

Both divide the mean improvement (points, baseline minus pain) by a standard deviation, so a clinic can set its
figures beside published ones on another scale:
- **standardised response mean** (SRM) = mean change / SD of the change: how consistently patients improved.
  Its 95 % interval is exact for normal changes: SRM · √n follows a noncentral t distribution with n − 1 degrees
  of freedom, inverted for the noncentrality (Cumming & Finch 2001).
- **Cohen's d** = mean change / SD of baseline pain (the "effect size" of Kazis et al. 1989): the change in units
  of how much pain varies between patients. Its 95 % interval uses Becker's (1988) large-sample variance of a
  standardised mean change, 2 (1 − r) / n + d² / (2n), r the correlation of baseline and follow-up pain.
They are within-group, before–after effects: they include regression to the mean and natural recovery, and a
difference between techniques in them is no more a causal comparison than the raw improvement is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analytics import outcomes

EFFECT_COLUMNS = [
    "technique", "timepoint", "patients", "mean_change", "srm", "srm_ci95_low", "srm_ci95_high", "cohens_d",
    "d_ci95_low", "d_ci95_high",
]
MIN_EPISODES = 3  # fewer and a standard deviation (and so an effect size) means nothing


def srm_interval(srm: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Return the exact interval of a standardised response mean: invert the noncentral t of SRM · √n (n − 1 df)."""
    if srm < 0:  # the t distribution's symmetry: scipy's noncentral t is unstable far into the negative tail
        low, high = srm_interval(-srm, n, level)
        return -high, -low
    t, df, alpha = srm * np.sqrt(n), n - 1, 1.0 - level
    span = 8.0 * np.sqrt(1.0 + t * t / (2.0 * df)) + 1.0  # far beyond the interval: 8 standard errors of t

    def below(nc: float) -> float:
        value = float(stats.nct.cdf(t, df, nc))
        # scipy gives NaN far into a tail, where the probability is 1 (nc far below t) or 0 (far above).
        return value if np.isfinite(value) else float(nc < t)

    def limit(p: float) -> float:
        # The noncentrality whose t distribution puts probability p below the observed t; cdf falls as nc rises.
        return optimize.brentq(lambda nc: below(nc) - p, t - span, t + span, xtol=1e-10)

    return limit(1 - alpha / 2) / np.sqrt(n), limit(alpha / 2) / np.sqrt(n)


def d_interval(d: float, r: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Return Becker's large-sample interval of a standardised mean change d (baseline SD), r = corr(pre, post)."""
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(2 * (1 - r) / n + d**2 / (2 * n))
    return d - half, d + half


def _row(technique: str, timepoint: str, baseline: np.ndarray, change: np.ndarray) -> dict:
    n = len(change)
    mean = float(change.mean())
    sd_change, sd_baseline = float(change.std(ddof=1)), float(baseline.std(ddof=1))
    srm = mean / sd_change if sd_change > 0 else np.nan
    d = mean / sd_baseline if sd_baseline > 0 else np.nan
    srm_low, srm_high = srm_interval(srm, n) if np.isfinite(srm) else (np.nan, np.nan)
    follow_up = baseline - change
    r = float(np.corrcoef(baseline, follow_up)[0, 1]) if np.isfinite(d) and follow_up.std() > 0 else 0.0
    d_low, d_high = d_interval(d, r, n) if np.isfinite(d) else (np.nan, np.nan)
    return {"technique": technique, "timepoint": timepoint, "patients": n, "mean_change": mean, "srm": srm,
            "srm_ci95_low": srm_low, "srm_ci95_high": srm_high, "cohens_d": d, "d_ci95_low": d_low,
            "d_ci95_high": d_high}


def effect_sizes(improvement: pd.DataFrame, session: int = 4) -> pd.DataFrame:
    """Return SRM and Cohen's d with 95 % intervals per technique at `session` and at the last session.

    At `session`: the episodes seen at that session (baseline above 0), their improvement there. At the last
    session: the episodes of the responder figures (`outcomes.followed_up`), their improvement at their last
    session. `patients` counts episodes of care (the contract's word). Groups under MIN_EPISODES have no row.
    """
    rows = []
    at = outcomes.analysable(improvement)
    at = at[at["session_number"] == session]
    last = outcomes.followed_up(outcomes.episode_last(improvement))
    for timepoint, frame, technique_column in ((f"session {session}", at, "episode_technique"),
                                               ("last session", last, "technique")):
        for technique, group in frame.groupby(technique_column):
            if len(group) >= MIN_EPISODES:
                rows.append(_row(technique, timepoint, group["baseline_points"].to_numpy(float),
                                 group["improvement_points"].to_numpy(float)))
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)
