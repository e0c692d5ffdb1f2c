"""Adjusted comparison of techniques (docs/METHODS.md): a mixed model on repeated measures, an ANCOVA, and the
mixed model's design fitted by ordinary least squares with cluster-robust errors as a sensitivity analysis.

Each takes the per-session frame of `analytics.outcomes.cumulative_improvement` and returns one row per technique
against a reference technique: the adjusted difference in pain in points of the 0–100 scale (negative = less pain
than with the reference), its 95 % Student-t interval on the row's degrees of freedom, its p-value and Holm-adjusted
p-value, and the episodes, sessions and distinct patients behind it (in words: `analytics.comparison_sentences`).
Clinic data are observational: patients were not randomised, so the adjustment removes only the differences it
measures (baseline pain, condition), never who chose which technique and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from analytics import multilevel, outcomes
from analytics.fitting import COVARIATES, as_levels, first_estimable, recorded_covariates

DEFAULT_REFERENCE = "superficial"  # the least invasive technique, as in trials of deep vs superficial needling
MIN_EPISODES_PER_CELL = 5  # a technique's episodes needed at a session number for it to keep its own level
# A level of the mixed model gets its own variance only with this many units that show it: 5 clinicians, 5 patients
# with two or more episodes. With fewer the variance cannot be told from 0 (Gelman & Hill 2007, §12.9).
MIN_LEVEL_UNITS = 5
# Cluster-robust errors need many clusters (Cameron & Miller 2015): by clinician from this many, else by patient.
MIN_CLUSTERS = 30
# "patients" counts episodes of care (the contract's name); "distinct_patients" counts people.
COLUMNS = [
    "technique", "reference", "estimate", "ci95_low", "ci95_high", "p_value", "patients", "sessions", "model",
    "df", "p_holm", "distinct_patients", "structure",
]
MIXED, ANCOVA, CLUSTERED_OLS = "mixed model", "ANCOVA", "OLS, clustered errors"


class _NothingToCompare(ValueError):
    """The filtered data cannot support a comparison; the message says why, in words for the page."""


def default_reference(techniques: pd.Series) -> str:
    """Return the reference technique: superficial when present, else the most frequent one."""
    present = techniques.dropna()
    if (present == DEFAULT_REFERENCE).any():
        return DEFAULT_REFERENCE
    return str(present.value_counts().sort_index().idxmax())


def model_frame(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return the sessions the models use: episodes with a baseline above 0 and a follow-up (k ≥ 2).

    The episodes are those of every responder figure (`outcomes.analysable`, then a follow-up), and those the
    page's count of left-out episodes names: a single-session episode has no follow-up pain, and one with
    baseline 0 had no pain to improve (it is treated for something else) and would pull the comparison of
    improvement towards 0. Each episode keeps the technique of its first session throughout (as intention to
    treat), so a patient who switches stays in their starting group.
    """
    improvement = outcomes.analysable(improvement).sort_values(["episode_id", "session_number"], kind="stable")
    sessions = improvement.groupby("episode_id")["session_number"].transform("size")
    rows = improvement[sessions >= 2]
    episode = rows["episode_id"].astype(str)
    frame = pd.DataFrame(
        {
            "episode": episode,
            "session": rows["session_number"].astype(int),
            "technique": rows["episode_technique"].astype(str),
            "pain": rows["pain_before_points"].astype(float),
            "baseline": rows["baseline_points"].astype(float),
            "episode_sessions": sessions[sessions >= 2].astype(int),
        }
    )
    frame["patient"] = _per_episode(rows, "patient_id", episode)  # "" when not recorded
    if "clinician" in rows:
        frame["clinician"] = as_levels(_per_episode(rows, "clinician", episode))
    for column in COVARIATES:
        if column in rows:
            frame[column] = as_levels(rows[column])
    # Centred baseline: the technique differences do not change, the optimiser works on a better-scaled problem.
    frame["baseline"] -= frame["baseline"].mean()
    return frame.reset_index(drop=True)


def _per_episode(rows: pd.DataFrame, column: str, episode: pd.Series) -> pd.Series:
    """Return each row's value of column at its episode's first session (rows in session order), "" if unrecorded."""
    if column not in rows:
        return pd.Series("", index=rows.index)
    is_first = ~episode.duplicated()
    first = pd.Series(rows.loc[is_first, column].to_numpy(), index=episode[is_first])
    return episode.map(first.fillna("").astype(str))


def _session_levels(follow_up: pd.DataFrame) -> pd.Series:
    """Return session numbers with a sparse tail pooled: the last level is "K or later".

    K is the largest session number up to which every technique still has MIN_EPISODES_PER_CELL episodes;
    pooling keeps each technique × session cell estimable when few patients come back for a 9th or 10th session.
    With very few patients K is 2 and all follow-up sessions form one level (no session term).
    """
    counts = follow_up.groupby(["session", "technique"])["episode"].nunique().unstack(fill_value=0)
    enough = (counts >= MIN_EPISODES_PER_CELL).all(axis=1)
    last = 2
    for k in sorted(counts.index):
        if k < 2:
            continue
        if not enough.get(k, False):
            break
        last = k
    return follow_up["session"].clip(upper=last)


def _people(frame: pd.DataFrame) -> pd.Series:
    """Return each row's patient, an episode without a recorded patient standing for its own patient."""
    return frame["patient"].where(frame["patient"] != "", "episode " + frame["episode"])


def _counts(frame: pd.DataFrame, technique: str) -> tuple[int, int, int]:
    """Return (episodes, sessions including session 1, distinct patients) of a technique in the model frame."""
    episodes = frame.loc[frame["technique"] == technique].drop_duplicates("episode")
    return len(episodes), int(episodes["episode_sessions"].sum()), int(_people(episodes).nunique())


def holm(p_values) -> np.ndarray:
    """Return Holm's step-down adjusted p-values (Holm 1979), in the order given.

    The smallest of m p-values is multiplied by m, the next by m − 1, and so on, each kept at least as large as
    the one before and at most 1: any adjusted p-value below 5 % then keeps the chance of one or more false
    "differences" among the m comparisons at 5 %.
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty(p.size)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def _table(
    params: pd.Series, bse: pd.Series, df: float | pd.Series, frame: pd.DataFrame, reference: str, model: str,
    structure: str,
) -> pd.DataFrame:
    """Return the tidy comparison rows of a fit whose technique term is Treatment-coded against reference.

    Intervals and p-values are Student-t on `df` (one number, or a Series by term), never the normal z.
    """
    rows = []
    for technique in sorted(set(frame["technique"]) - {reference}):
        # The technique's main-effect column: its Treatment dummy, not an interaction with session.
        name = next(n for n in params.index if n.endswith(f"[T.{technique}]") and ":" not in n)
        estimate, se = float(params[name]), float(bse[name])
        dof = float(df[name]) if isinstance(df, pd.Series) else float(df)
        half = float(stats.t.ppf(0.975, dof)) * se
        episodes, sessions, people = _counts(frame, technique)
        rows.append(
            {
                "technique": technique,
                "reference": reference,
                "estimate": estimate,
                "ci95_low": estimate - half,
                "ci95_high": estimate + half,
                "p_value": float(2 * stats.t.sf(abs(estimate / se), dof)),
                "patients": episodes,
                "sessions": sessions,
                "model": model,
                "df": dof,
                "distinct_patients": people,
                "structure": structure,
            }
        )
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    table["p_holm"] = holm(table["p_value"])
    return table


def _adjusted_for(terms: list[str]) -> list[str]:
    """Return the adjustments a model's terms make, in words ("baseline pain", "condition")."""
    return ["baseline pain"] + [c for c in COVARIATES if c in terms]


def _as_factors(frame: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Return frame with technique and the covariates as pandas Categoricals, the reference technique first.

    patsy codes a Categorical's first category as the reference (Treatment coding) and reads it by its codes;
    text, or a column wrapped in C(), it reads value by value: 3 s of a 20,000-episode fit.
    """
    techniques = [reference, *sorted(set(frame["technique"]) - {reference})]
    factors = {c: pd.Categorical(frame[c]) for c in recorded_covariates(frame)}
    return frame.assign(technique=pd.Categorical(frame["technique"], categories=techniques), **factors)


def _left_out(wanted: list[str], used: list[str]) -> list[str]:
    """Return a note naming the adjustments a small group could not carry, if any."""
    dropped = [a for a in _adjusted_for(wanted) if a not in _adjusted_for(used)]
    return [f"{' and '.join(dropped)} left out: too few patients in each group"] if dropped else []


def _empty(notes: list[str]) -> pd.DataFrame:
    table = pd.DataFrame(columns=COLUMNS)
    table.attrs.update(fit_notes=notes, adjusted_for=[])
    return table


@dataclass
class _Design:
    """The follow-up sessions the models of every session use, their unfitted OLS design, and what it adjusts for."""

    follow_up: pd.DataFrame
    reference: str
    model: object  # statsmodels OLS, unfitted: its exog is the design matrix
    adjusted_for: list[str]
    notes: list[str]


def _repeated_measures(improvement: pd.DataFrame, reference: str | None) -> _Design:
    """Return the design of the models of every follow-up session.

    Pain before each session k ≥ 2 ~ technique × session + baseline (+ condition). Raises _NothingToCompare with
    the reason when two techniques with follow-up sessions, the reference among them, are not there.
    """
    follow_up = model_frame(improvement)
    follow_up = follow_up[follow_up["session"] >= 2].copy()
    if follow_up["technique"].nunique() < 2:
        raise _NothingToCompare("fewer than two techniques with follow-up sessions: nothing to compare")
    reference = reference or default_reference(follow_up["technique"])
    if reference not in set(follow_up["technique"]):
        raise _NothingToCompare(f"no follow-up sessions with the reference technique {reference}")
    follow_up["session"] = _session_levels(follow_up)
    # Session number is categorical, not a number: the improvement curve rises and then flattens (the
    # technique curve), so a straight line in k would misfit both the curve and the technique × session
    # interaction. Sum (deviation) coding makes the technique coefficient the technique difference averaged
    # over the session levels with equal weight, one number per technique whatever the drop-out pattern.
    shapes = [["technique * C(session, Sum)"]] if follow_up["session"].nunique() >= 2 else []
    shapes.append(["technique"])  # fallback for very small groups: one technique difference over all follow-up
    covariates = recorded_covariates(follow_up)
    term_sets = [shape + ["baseline"] + covs for shape in shapes for covs in (covariates, [])]
    data = _as_factors(follow_up, reference)
    model, terms = first_estimable(lambda t: smf.ols("pain ~ " + " + ".join(t), data), term_sets)
    if model is None:
        raise _NothingToCompare("too few patients to adjust the comparison")
    notes = _left_out(term_sets[0], terms)
    if len(shapes) == 2 and terms[0] == "technique":
        notes.append("technique × session left out (too few patients): one difference over all follow-up sessions")
    return _Design(follow_up, reference, model, _adjusted_for(terms), notes)


def _levels(follow_up: pd.DataFrame) -> tuple[dict[str, pd.Series], str, list[str]]:
    """Return the mixed model's nested levels (lowest first), the structure in words, and notes on what was left out.

    Sessions lie in episodes, episodes in patients, patients in the clinician who saw the episode's first
    session. A level gets its own variance when MIN_LEVEL_UNITS units show it; the episode level only when that
    many patients have two or more episodes, else a patient's episodes share the patient's intercept (a patient
    with two episodes is still one patient). Patients seen by two clinicians count as one patient per clinician,
    as statsmodels' variance components within groups do.
    """
    notes: list[str] = []
    identified = follow_up["patient"] != ""
    episodes_of = follow_up[identified].drop_duplicates("episode").groupby("patient").size()
    repeat = int((episodes_of >= 2).sum())
    clinicians = follow_up.get("clinician")
    recorded = 0 if clinicians is None else clinicians[clinicians != "unrecorded"].nunique()
    if clinicians is not None and recorded < MIN_LEVEL_UNITS:
        notes.append(f"clinician level left out: {recorded} clinician(s), fewer than {MIN_LEVEL_UNITS}")
        clinicians = None
    within = "" if clinicians is None else clinicians + " / "
    levels: dict[str, pd.Series] = {}
    if not identified.any() or repeat >= MIN_LEVEL_UNITS:
        levels["episode"] = within + follow_up["episode"]
    elif repeat:
        notes.append(f"a patient's episodes share one patient level: {repeat} patient(s) with two or more "
                     f"episodes, fewer than {MIN_LEVEL_UNITS} for a level of their own")
    if identified.any():
        levels["patient"] = within + _people(follow_up)
    if clinicians is not None:
        levels["clinician"] = clinicians
    return levels, "sessions within " + " within ".join(f"{name}s" for name in levels), notes


def mixed_model_comparison(improvement: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Return each technique's adjusted difference in pain from the reference over sessions 2 onwards (mixed model).

    Pain before each session k ≥ 2 ~ technique × session + baseline (+ condition), with random intercepts for
    episodes within patients within clinicians (`_levels`), fitted by REML (`analytics.multilevel`). The estimate
    is the technique difference averaged over the session numbers with equal weight; 95 % intervals and p-values
    are Student-t on Satterthwaite's degrees of freedom. The fitted structure is in the `structure` column; fit
    notes (levels left out, variances at 0) are in `table.attrs["fit_notes"]`.
    """
    try:
        design = _repeated_measures(improvement, reference)
    except _NothingToCompare as reason:
        return _empty([str(reason)])
    levels, structure, level_notes = _levels(design.follow_up)
    notes = design.notes + level_notes
    try:
        exog = pd.DataFrame(design.model.exog, columns=design.model.exog_names)
        fit = multilevel.fit_nested(exog, design.model.endog, levels)
    except (ValueError, np.linalg.LinAlgError) as error:
        return _empty([*notes, f"the mixed model could not be fitted on so few patients ({error})"])
    table = _table(fit.params, fit.bse, fit.df, design.follow_up, design.reference, MIXED, structure)
    if table[["ci95_low", "ci95_high"]].isna().to_numpy().any():
        return _empty([*notes, "the mixed model gave no interval on so few patients"])
    table.attrs.update(fit_notes=notes + fit.notes, adjusted_for=design.adjusted_for, variances=fit.variances)
    return table


def clustered_ols_comparison(improvement: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Return the mixed model's comparison fitted by ordinary least squares with cluster-robust errors (sensitivity).

    The same design as `mixed_model_comparison`, every follow-up session weighted equally; standard errors
    robust to any correlation within a cluster (statsmodels `cov_type="cluster"`), intervals Student-t on
    clusters − 1 degrees of freedom. Clusters are clinicians when MIN_CLUSTERS are recorded, else patients.
    """
    try:
        design = _repeated_measures(improvement, reference)
    except _NothingToCompare as reason:
        return _empty([str(reason)])
    follow_up = design.follow_up
    clinicians = follow_up.get("clinician", pd.Series("unrecorded", follow_up.index))
    by_clinician = clinicians[clinicians != "unrecorded"].nunique() >= MIN_CLUSTERS
    clusters = clinicians if by_clinician else _people(follow_up)
    if clusters.nunique() < 2:
        return _empty([*design.notes, "one cluster only: no cluster-robust errors"])
    fit = design.model.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(clusters)[0]}, use_t=True)
    unit = "clinician" if by_clinician else ("patient" if (follow_up["patient"] != "").any() else "episode")
    structure = f"sessions, errors clustered by {unit} ({clusters.nunique()} clusters)"
    table = _table(fit.params, fit.bse, fit.df_resid_inference, follow_up, design.reference, CLUSTERED_OLS, structure)
    table.attrs.update(fit_notes=design.notes, adjusted_for=design.adjusted_for)
    return table


def ancova_comparison(improvement: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Return each technique's adjusted difference in pain at the last session from the reference (ANCOVA).

    OLS of pain at each episode's last session on technique, baseline pain (and condition when recorded with two
    or more levels), after Vickers & Altman (BMJ 2001): follow-up adjusted for baseline, not raw change scores.
    Intervals are Student-t on the residual degrees of freedom.
    """
    frame = model_frame(improvement)
    last = frame.sort_values(["episode", "session"]).groupby("episode").tail(1)
    if last["technique"].nunique() < 2:
        return _empty(["fewer than two techniques with follow-up sessions: nothing to compare"])
    reference = reference or default_reference(last["technique"])
    if reference not in set(last["technique"]):
        return _empty([f"no episodes with the reference technique {reference}"])
    base, covariates = ["technique", "baseline"], recorded_covariates(last)
    data = _as_factors(last, reference)
    model, terms = first_estimable(lambda t: smf.ols("pain ~ " + " + ".join(t), data), [base + covariates, base])
    if model is None:
        return _empty(["too few patients to adjust the comparison"])
    fit = model.fit()
    table = _table(fit.params, fit.bse, fit.df_resid, last, reference, ANCOVA, "episodes, one row each")
    table.attrs.update(fit_notes=_left_out(base + covariates, terms), adjusted_for=_adjusted_for(terms))
    return table
