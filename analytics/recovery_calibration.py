"""Expected recovery's calibration (docs/METHODS.md, "Expected recovery and calibration"): how often the newest
fifth of the episodes fell inside the 50 % and 80 % bands of a fit on the older rest, counted a part at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.expected_recovery import (
    BANDS_COLUMNS,
    PREDICTED_EPISODES,
    RecoveryModel,
    episode_table,
    fit_recovery,
    follow_up_rows,
    predict_bands,
)

HELD_OUT_SHARE = 0.2  # the newest fifth of the episodes, by first-session date
CALIBRATION_COLUMNS = ["condition", "technique", "episodes", "observations", "coverage_50", "coverage_80"]


def held_out_position(episodes: int) -> int:
    """Return the position, in `episode_table`'s order, of the episode whose first date the held-out ones begin on."""
    return int(episodes * (1 - HELD_OUT_SHARE))


def held_out_parts(improvement: pd.DataFrame, *, episodes: pd.DataFrame | None = None,
                   most: int = PREDICTED_EPISODES):
    """Yield `held_out_bands`' rows `most` held-out episodes at a time, in its order: one fit, its predictions a
    part at a time, so a network's held-out fifth is never predicted all at once. `episodes` as in
    `quarterly_models`."""
    episodes = episode_table(improvement) if episodes is None else episodes
    if episodes.empty:
        return
    boundary = episodes["first_date"].iloc[held_out_position(len(episodes))]
    model = fit_recovery(improvement, before=boundary, episodes=episodes)
    held_out = episodes[episodes["first_date"] >= boundary]
    for start in range(0, max(len(held_out), 1), most):
        yield tested_bands(model, improvement, held_out.iloc[start:start + most])


def tested_bands(model: RecoveryModel, improvement: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    """Return the observed follow-up sessions of held-out `episodes` with the band of the fit on the older rest
    (`model`) and whether each lies inside its 50 % and 80 % band: `held_out_bands`' rows of those episodes."""
    tested = predict_bands(model, follow_up_rows(improvement, episodes))
    observed = tested["improvement_pct"]
    tested["inside_50"] = (observed >= tested["q25"]) & (observed <= tested["q75"])
    tested["inside_80"] = (observed >= tested["q10"]) & (observed <= tested["q90"])
    return tested[[*BANDS_COLUMNS, "inside_50", "inside_80"]]


def held_out_bands(improvement: pd.DataFrame, *, episodes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the newest fifth of the episodes' observed follow-up sessions with the band of a fit on the older rest.

    Episodes are ordered by first-session date; those starting on the date where the newest HELD_OUT_SHARE begins
    are all held out, so every fitted episode began strictly before every tested one. Adds `inside_50` and
    `inside_80` (the observed improvement within the 25th–75th and the 10th–90th percentile, limits included).
    `episodes` as in `quarterly_models`.
    """
    parts = list(held_out_parts(improvement, episodes=episodes))
    if not parts:
        return pd.DataFrame(columns=[*BANDS_COLUMNS, "inside_50", "inside_80"])
    return pd.concat(parts, ignore_index=True)


COVERAGE_COUNTS = ["episodes", "observations", "inside_50", "inside_80"]


def _coverage(counts) -> dict:
    episodes, observations, inside_50, inside_80 = (int(count) for count in counts)
    # The share as Series.mean of the flags computes it (their sum over their count), NaN when there is none.
    return {"episodes": episodes, "observations": observations,
            "coverage_50": inside_50 / observations if observations else np.nan,
            "coverage_80": inside_80 / observations if observations else np.nan}


def calibration_table(improvement: pd.DataFrame, *, episodes: pd.DataFrame | None = None,
                      most: int = PREDICTED_EPISODES) -> pd.DataFrame:
    """Return the `python -m db summary --calibration` table: held-out coverage of the 50 % and 80 % bands.

    One row per condition and technique (the episode's) with held-out sessions whose band is shown, and an
    `all`/`all` row (always); coverages as fractions, 4 decimals, sorted by condition and technique. Counted a
    part of `most` whole episodes at a time (`held_out_parts`): the held-out sessions inside each band, summed.
    """
    counts = None
    for tested in held_out_parts(improvement, episodes=episodes, most=most):
        counts = coverage_counts(tested, counts)
    return coverage_table(counts)


def coverage_counts(tested: pd.DataFrame, counts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return `counts` (None: none yet) with those of `tested` (`tested_bands`' rows) added: per condition and
    technique, COVERAGE_COUNTS of the held-out sessions whose band is shown."""
    tested = tested[tested["shown"].astype(bool)]
    grouped = tested.groupby(["condition", "technique"])
    part = pd.DataFrame({"episodes": grouped["episode_id"].nunique(), "observations": grouped.size(),
                         "inside_50": grouped["inside_50"].sum(), "inside_80": grouped["inside_80"].sum()},
                        columns=COVERAGE_COUNTS).astype("int64")
    return part if counts is None else counts.add(part, fill_value=0).astype("int64")


def coverage_table(counts: pd.DataFrame | None) -> pd.DataFrame:
    """Return `calibration_table`'s table of `coverage_counts` (None: no held-out episode)."""
    if counts is None:
        counts = pd.DataFrame(columns=COVERAGE_COUNTS, dtype="int64")
    rows = [{"condition": condition, "technique": technique, **_coverage(row)}
            for (condition, technique), row in zip(counts.index, counts.to_numpy(), strict=True)]
    total = counts.to_numpy().sum(axis=0)
    rows.append({"condition": "all", "technique": "all", **_coverage(total)})
    table = pd.DataFrame(rows, columns=CALIBRATION_COLUMNS).sort_values(["condition", "technique"], ignore_index=True)
    return table.astype({"episodes": int, "observations": int}).round({"coverage_50": 4, "coverage_80": 4})
