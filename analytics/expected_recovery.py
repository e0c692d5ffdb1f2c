"""Expected recovery: where an episode's improvement stands among comparable earlier episodes (docs/METHODS.md,
"Expected recovery and calibration").

At each session k the band is the 10th, 25th, 50th, 75th and 90th percentile of cumulative improvement (%) among
earlier episodes of the same technique at session k, adjusted for condition, baseline pain and pain scale: one
linear quantile regression per percentile (Koenker & Bassett 1978), each solved exactly as the linear programme it
is by scipy's HiGHS. An episode's band comes from episodes that began before the calendar quarter in which it
began, so it never contains the episode itself, and it is shown only where enough earlier episodes stand behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy
from scipy import sparse
from scipy.optimize import linprog
from statsmodels.regression.linear_model import OLS

from analytics.fitting import as_levels
from analytics.outcomes import analysable

QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
BAND_COLUMNS = ["q10", "q25", "q50", "q75", "q90"]
# A band needs this many earlier episodes of its technique at its session number, and of its condition (its own, or
# the less common conditions pooled): with 30, about three lie beyond each outer percentile (10th, 90th), the fewest
# that place it at all; the calibration (`calibration_table`) checks the choice.
MIN_COMPARABLE = 30
# The most recent earlier episodes a fit uses. Calibrated on 100,470 generated sessions, a fit on all 16,338 older
# episodes took 11.3 s of CPU for bands covering 50.6 % and 81.1 % of the newer ones' sessions; the latest 5,000
# took 1.6 s for 50.5 % and 80.6 %, the latest 2,000 0.5 s for 49.8 % and 79.4 %.
MAX_TRAINING_EPISODES = 5_000
REFIT_PERIOD = "Q"  # an episode's band is fitted on the episodes that began before its calendar quarter
POOLED = "less common conditions"
PREDICTED_EPISODES = 2_000  # episodes whose bands are predicted at a time: 5,000 raised the fit's peak by 5 MB at 1M
FOLLOW_UP_COLUMNS = ["episode_id", "session_number", "session_date", "improvement_points", "improvement_pct"]
MIN_SPLINE_BASELINES = 8  # distinct baselines a spline of baseline pain needs; fewer: a straight line

EPISODE_COLUMNS = ["episode_id", "patient_id", "clinician", "technique", "condition", "pain_scale",
                   "baseline_points", "first_date", "status"]
EPISODE_ORDER = ["first_date", "patient_id", "condition", "episode_id"]  # two readings of the sessions: one order
BANDS_COLUMNS = [
    "episode_id", "patient_id", "clinician", "technique", "condition", "status", "session_number", "session_date",
    "baseline_points", "improvement_points", "improvement_pct", *BAND_COLUMNS, "expected", "shown",
    "comparable_episodes", "condition_episodes", "condition_adjusted", "trained_before", "note",
]


def episode_table(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return one row per episode with a baseline above 0, in order of its first session: what a band adjusts for.

    Technique, clinician and pain scale are the first session's; `condition` names unrecorded ones "unrecorded";
    `patient_id`, `clinician` and `status` are empty when the frame has none. Episodes starting on one date are
    ordered by patient and condition, so two readings of the same sessions fit the same model.
    """
    first = analysable(improvement).sort_values(["episode_id", "session_number"]).groupby("episode_id").head(1)
    blank = pd.Series("", index=first.index)
    episodes = pd.DataFrame(
        {
            "episode_id": first["episode_id"],
            "patient_id": first.get("patient_id", blank).fillna("").astype(str),
            "clinician": first.get("clinician", blank).fillna("").astype(str),
            "technique": first["episode_technique"].astype(str),
            "condition": as_levels(first.get("condition", blank)),
            "pain_scale": first["pain_scale"].astype(str),
            "baseline_points": first["baseline_points"].astype(float),
            "first_date": pd.to_datetime(first["session_date"]),
            "status": first.get("status", pd.Series(None, index=first.index, dtype=object)),
        },
        columns=EPISODE_COLUMNS,
    )
    return episodes.sort_values(EPISODE_ORDER, ignore_index=True)


def follow_up_rows(improvement: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    """Return the observed sessions after the first of `episodes`, with the episode's attributes, in their order."""
    rows = improvement[(improvement["session_number"] >= 2) & improvement["episode_id"].isin(episodes["episode_id"])]
    rows = rows[FOLLOW_UP_COLUMNS]
    return episodes.merge(rows.assign(session_date=pd.to_datetime(rows["session_date"])), on="episode_id")


@dataclass(frozen=True)
class RecoveryModel:
    """The five fitted percentiles, the fitted mean, and the earlier episodes behind them (`fit_recovery`)."""

    trained_before: pd.Timestamp | None
    training_episodes: int
    cells: pd.Series  # (technique, session_number) -> earlier episodes, the cells with at least MIN_COMPARABLE
    conditions: pd.Series  # condition level (its own, or POOLED) -> earlier episodes
    design: patsy.DesignInfo | None
    coefficients: np.ndarray | None  # one column per quantile, then one for the mean


def _quantile_coefficients(x: np.ndarray, y: np.ndarray, quantile: float) -> np.ndarray:
    """Return the linear quantile regression's coefficients: the exact optimum, from the dual linear programme.

    Koenker (Quantile Regression, 2005, §6.2): maximise y′a subject to X′a = (1 − τ) X′1, 0 ≤ a ≤ 1; the
    coefficients are the programme's equality multipliers. statsmodels' QuantReg approaches the same optimum by
    iterated weighted least squares (slowly: statsmodels issue #3770): on 5,000 episodes its five fits took 10 s of
    CPU, the 25th percentile stopping at its 1,000-iteration limit, where HiGHS's dual simplex took 0.8 s (without
    its presolve, which costs more than it saves on this shape).
    """
    result = linprog(-y, A_eq=sparse.csr_matrix(x.T), b_eq=(1 - quantile) * x.sum(axis=0), bounds=(0, 1),
                     method="highs-ds", options={"presolve": False})
    if result.status != 0:
        raise ValueError(f"expected recovery: the {quantile:.0%} percentile could not be fitted ({result.message})")
    return -result.eqlin.marginals


def _condition_level(condition: pd.Series, levels: pd.Series) -> pd.Series:
    """Return each condition's level in a fit: its own, else the pooled less common ones (None if neither fitted)."""
    return condition.where(condition.isin(levels.index), POOLED if POOLED in levels.index else None)


def _formula(rows: pd.DataFrame, conditions: pd.Series, scales: pd.Series) -> str:
    terms = ["0", "C(cell)"]  # a free level per technique and session number: each technique's own curve
    if len(conditions) >= 2:
        terms.append("C(condition_level)")
    if len(scales) >= 2 and (scales >= MIN_COMPARABLE).all():
        terms.append("C(pain_scale)")
    if rows["baseline_points"].nunique() >= MIN_SPLINE_BASELINES:
        # Per percentile, so the band may widen at low baselines, where one point of pain is a larger percent.
        terms.append("cr(baseline_points, df=3, constraints='center', lower_bound=0, upper_bound=100)")
    else:
        terms.append("baseline_points")
    return " + ".join(terms)


def _with_cells(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.assign(cell=rows["technique"] + ":" + rows["session_number"].astype(str))


def fit_recovery(improvement: pd.DataFrame, *, before: pd.Timestamp | None = None,
                 episodes: pd.DataFrame | None = None, most: int | None = None) -> RecoveryModel:
    """Return the expected-recovery model fitted on episodes whose first session was before `before` (all if None).

    The `most` recent of them are used (MAX_TRAINING_EPISODES if None, read when called; bench/calibration.py
    measures the choice); technique × session cells with fewer than MIN_COMPARABLE episodes are left out, and
    conditions with fewer are pooled. `episodes` is `episode_table`'s frame of `improvement`, when the caller has
    it already.
    """
    episodes = episode_table(improvement) if episodes is None else episodes
    most = MAX_TRAINING_EPISODES if most is None else most
    if before is not None:  # the `most` latest of those before: taken alone, not after a copy of all of them
        episodes = episodes.iloc[np.flatnonzero((episodes["first_date"] < before).to_numpy())[-most:] if most else []]
    else:
        episodes = episodes.tail(most)
    rows = follow_up_rows(improvement, episodes)
    cells = rows.groupby(["technique", "session_number"])["episode_id"].nunique()
    cells = cells[cells >= MIN_COMPARABLE]
    rows = rows[pd.MultiIndex.from_frame(rows[["technique", "session_number"]]).isin(cells.index)]
    per_condition = rows.groupby("condition")["episode_id"].nunique()
    common = per_condition[per_condition >= MIN_COMPARABLE]
    rows = rows.assign(condition_level=rows["condition"].where(rows["condition"].isin(common.index), POOLED))
    conditions = rows.groupby("condition_level")["episode_id"].nunique()
    if rows.empty:
        return RecoveryModel(before, len(episodes), cells, conditions, None, None)
    scales = rows.groupby("pain_scale")["episode_id"].nunique()
    y, x = patsy.dmatrices("improvement_pct ~ " + _formula(rows, conditions, scales), _with_cells(rows))
    y, design = np.asarray(y).ravel(), x.design_info
    x = np.asarray(x)
    # The mean (least squares on the same terms) is what observed minus expected compares with: unlike the median
    # it averages to the observed mean, so a clinic's average episode scores 0 however skewed recovery is.
    coefficients = np.column_stack([*(_quantile_coefficients(x, y, q) for q in QUANTILES), OLS(y, x).fit().params])
    return RecoveryModel(before, len(episodes), cells, conditions, design, coefficients)


def predict_bands(model: RecoveryModel, rows: pd.DataFrame) -> pd.DataFrame:
    """Return `rows` (follow-up sessions with their episode's attributes) with the model's band, its expected (mean)
    improvement and whether it is shown.

    A band is shown where the technique has at least MIN_COMPARABLE earlier episodes at that session number and
    the condition (its own or the pooled less common ones) as many; `note` says why not otherwise. The five
    percentiles are sorted, should two fitted lines cross (rearrangement: Chernozhukov et al. 2010).
    """
    out = rows.reset_index(drop=True).copy()
    cell = pd.MultiIndex.from_frame(out[["technique", "session_number"]])
    comparable = model.cells.reindex(cell).fillna(0).astype(int).to_numpy()
    level = _condition_level(out["condition"], model.conditions)
    condition_episodes = model.conditions.reindex(level).fillna(0).astype(int).to_numpy()
    shown = (comparable >= MIN_COMPARABLE) & (condition_episodes >= MIN_COMPARABLE) & (model.design is not None)
    out["comparable_episodes"], out["condition_episodes"] = comparable, condition_episodes
    out["condition_adjusted"] = shown & (level != POOLED).to_numpy()
    out["shown"] = shown
    out["trained_before"] = model.trained_before
    note = np.full(len(out), "", dtype=object)  # written only where no band is shown: most rows have one
    few = ~shown & (comparable < MIN_COMPARABLE)
    note[few] = ("fewer than " + str(MIN_COMPARABLE) + " earlier episodes of " + out.loc[few, "technique"]
                 + " needling at session " + out.loc[few, "session_number"].astype(str)).to_numpy()
    note[~shown & ~few] = f"fewer than {MIN_COMPARABLE} earlier episodes of this condition"
    out["note"] = note
    for column in [*BAND_COLUMNS, "expected"]:
        out[column] = np.nan
    if shown.any():
        target = _with_cells(out[shown]).assign(condition_level=level[shown])
        predicted = np.asarray(patsy.build_design_matrices([model.design], target)[0]) @ model.coefficients
        out.loc[shown, BAND_COLUMNS] = np.sort(predicted[:, : len(QUANTILES)], axis=1)
        out.loc[shown, "expected"] = predicted[:, -1]
    return out


def _targets(improvement: pd.DataFrame, episodes: pd.DataFrame, cells: pd.Series) -> pd.DataFrame:
    """Return every observed follow-up session of `episodes` and, ahead of it, each session their technique's band
    reaches (`cells`) that they have not had yet, without a date or an improvement."""
    observed = follow_up_rows(improvement, episodes)
    supported = cells.index.to_frame(index=False)
    ahead = episodes.merge(supported, on="technique")
    ahead = ahead.merge(observed[["episode_id", "session_number"]], on=["episode_id", "session_number"], how="left",
                        indicator=True)
    ahead = ahead[(ahead["_merge"] == "left_only") & (ahead["session_number"] >= 2)].drop(columns="_merge")
    both = pd.concat([observed, ahead], ignore_index=True)
    return both.sort_values(["first_date", "episode_id", "session_number"], ignore_index=True)


def training_cutoff(first_date) -> pd.Timestamp:
    """Return the date before which an episode starting on `first_date` takes its band's earlier episodes."""
    return pd.Period(pd.Timestamp(first_date), REFIT_PERIOD).start_time


def training_cutoffs(first_dates: pd.Series) -> pd.Series:
    """Return `training_cutoff` of each of `first_dates`, computed on the whole column at once: mapped a date at a
    time, a network's 190,000 episodes took 1.9 CPU-seconds, three times in each fit."""
    return pd.to_datetime(first_dates).dt.to_period(REFIT_PERIOD).dt.start_time


def _chosen(improvement: pd.DataFrame, episodes: pd.DataFrame, since) -> pd.DataFrame:
    """Return the `episodes` with a session on or after `since` (all of them when None)."""
    if since is None:
        return episodes
    last = pd.to_datetime(improvement.groupby("episode_id")["session_date"].max())
    return episodes[episodes["episode_id"].map(last) >= pd.Timestamp(since)]


def quarterly_models(improvement: pd.DataFrame, *, since=None,
                     episodes: pd.DataFrame | None = None) -> dict[pd.Timestamp, RecoveryModel]:
    """Return one model per calendar quarter in which an episode (with a session on or after `since`) began, by the
    quarter's first day: the fit on the episodes begun before it. The expensive part of `expected_bands`: a page
    fits these once per data version, then an episode's band is a prediction (`bands_from_models`). `episodes` is
    `episode_table`'s frame of `improvement`, when the caller has it."""
    episodes = episode_table(improvement) if episodes is None else episodes
    cutoffs = sorted(training_cutoffs(_chosen(improvement, episodes, since)["first_date"]).unique())
    return {cutoff: fit_recovery(improvement, before=cutoff, episodes=episodes) for cutoff in cutoffs}


def bands_from_models(improvement: pd.DataFrame, models: dict[pd.Timestamp, RecoveryModel], *,
                      since=None) -> pd.DataFrame:
    """Return `expected_bands` of the episodes of `improvement` from `quarterly_models` already fitted.

    An episode whose quarter has no model in `models` (it began in a quarter those fits did not see) gets no rows.
    """
    chosen = _chosen(improvement, episode_table(improvement), since)
    parts = [predict_bands(models[cutoff], _targets(improvement, group, models[cutoff].cells))
             for cutoff, group in chosen.groupby(training_cutoffs(chosen["first_date"]), sort=True)
             if cutoff in models]
    if not parts:
        return pd.DataFrame(columns=BANDS_COLUMNS)
    return pd.concat(parts, ignore_index=True)[BANDS_COLUMNS]


def observed_bands(improvement: pd.DataFrame, models: dict[pd.Timestamp, RecoveryModel], *,
                   episodes: pd.DataFrame | None = None, most: int = PREDICTED_EPISODES):
    """Yield, `most` episodes of one calendar quarter at a time, the rows of `bands_from_models` that have an
    observation (their follow-up sessions, none ahead), columns BANDS_COLUMNS: what the on-track flags and observed
    minus expected read. A part at a time, so a network's bands are never all held at once. `episodes` as in
    `quarterly_models`."""
    episodes = episode_table(improvement) if episodes is None else episodes
    for cutoff, group in episodes.groupby(training_cutoffs(episodes["first_date"]), sort=True):
        if cutoff in models:
            for start in range(0, len(group), most):
                yield predict_bands(models[cutoff], follow_up_rows(improvement, group.iloc[start:start + most])
                                    )[BANDS_COLUMNS]


def expected_bands(improvement: pd.DataFrame, *, since=None) -> pd.DataFrame:
    """Return every episode's band at each of its sessions, each fitted on episodes begun before its quarter.

    One row per episode (baseline above 0) and session number from 2: the observed sessions with their
    improvement, then the sessions ahead that its technique's band reaches (no date, improvement NaN). Columns
    BANDS_COLUMNS; `shown` False (band NaN) where too few earlier episodes stand behind it, `note` says why.
    With `since`, only episodes with a session on or after that date. One fit per calendar quarter in which
    those episodes began: seconds on a network's data, so pages compute it in the background, per data version.
    """
    return bands_from_models(improvement, quarterly_models(improvement, since=since), since=since)


def episode_band(improvement: pd.DataFrame, episode_id) -> pd.DataFrame:
    """Return one episode's rows of `expected_bands` (empty if its baseline is 0 or it is not in `improvement`)."""
    episodes = episode_table(improvement)
    episode = episodes[episodes["episode_id"] == episode_id]
    if episode.empty:
        return pd.DataFrame(columns=BANDS_COLUMNS)
    model = fit_recovery(improvement, before=training_cutoff(episode["first_date"].iloc[0]), episodes=episodes)
    return predict_bands(model, _targets(improvement, episode, model.cells))[BANDS_COLUMNS]


def _range(low: float, high: float) -> str:
    """Return a range of improvements in words: "20–45 % less pain", "anything from 5 % more to 30 % less pain"."""
    low, high = round(low), round(high)
    if low >= 0:
        return f"{low}–{high} % less pain"
    if high <= 0:
        return f"{-high}–{-low} % more pain"
    return f"anything from {-low} % more to {high} % less pain"


def _amount(improvement_pct: float) -> str:
    """Return one improvement in words: "42 % less pain", "10 % more pain", "the same pain"."""
    value = round(improvement_pct)
    return "the same pain" if value == 0 else f"{abs(value)} % {'less' if value > 0 else 'more'} pain"


def no_band_sentence(row) -> str:
    """Return why a session has no band (a row of `expected_bands` with `shown` False), with the counts, for
    clinicians: how many earlier episodes there were and how many a band needs."""
    return (f"No expected-recovery band at session {row['session_number']}: {row['comparable_episodes']} earlier "
            f"episodes of {row['technique']} needling reached that session and {row['condition_episodes']} share "
            f"the condition; a band needs {MIN_COMPARABLE} of each. Its outer edges are the 10th and 90th "
            f"percentiles, and among {MIN_COMPARABLE} episodes only about three lie beyond each: fewer cannot "
            "place them.")


def band_sentence(row, *, to_patient: bool = True) -> str:
    """Return one plain sentence on a session's band (a row of `expected_bands`), for the patient or for clinicians."""
    if not row["shown"]:
        return (f"Not enough earlier patients like this to say what to expect at session {row['session_number']} "
                f"({row['note']}).")
    middle, outer = _range(row["q25"], row["q75"]), _range(row["q10"], row["q90"])
    if to_patient:
        observed = row.get("improvement_pct")
        yours = "" if observed is None or pd.isna(observed) else f" You had {_amount(observed)}."
        return (f"By session {row['session_number']}, half of the earlier patients like you had {middle} than at "
                f"their first session, and 8 in 10 had {outer}.{yours} This is what happened to others treated "
                "here, not a promise.")
    return (f"Expected at session {row['session_number']} ({row['comparable_episodes']} earlier episodes of "
            f"{row['technique']} needling): median {row['q50']:.0f} %, 50 % band {row['q25']:.0f} to "
            f"{row['q75']:.0f} %, 80 % band {row['q10']:.0f} to {row['q90']:.0f} %"
            + ("." if row["condition_adjusted"] else "; condition pooled with the less common ones."))
