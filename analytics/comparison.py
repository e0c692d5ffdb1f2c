"""Adjusted comparison of techniques (docs/METHODS.md): a mixed model on repeated measures and an ANCOVA.

Both take the per-session frame of `analytics.outcomes.cumulative_improvement` and return one row per technique
against a reference technique: the adjusted difference in pain in points of the 0–100 scale (negative = less pain
than with the reference), its 95 % interval and p-value, and the patients and sessions behind it.
Clinic data are observational: patients were not randomised, so the adjustment removes only the differences it
measures (baseline pain, condition), never who chose which technique and why.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from analytics import outcomes

DEFAULT_REFERENCE = "superficial"  # the least invasive technique, as in trials of deep vs superficial needling
MIN_EPISODES_PER_CELL = 5  # a technique's episodes needed at a session number for it to keep its own level
# Optimisers tried in turn: lbfgs is fast and usually converges; powell and nm need no gradient and rescue the
# fits where lbfgs stops on a flat likelihood (a random-intercept variance near 0).
MIXED_METHODS = ("lbfgs", "powell", "nm")
COVARIATES = ("condition", "chronicity")  # categorical adjustments, used when recorded with at least two levels
COLUMNS = ["technique", "reference", "estimate", "ci95_low", "ci95_high", "p_value", "patients", "sessions", "model"]
MIXED, ANCOVA = "mixed model", "ANCOVA"


def _finite_llf(result) -> float:
    return float(result.llf) if np.isfinite(result.llf) else -np.inf


def fit_mixed(model) -> tuple[object, list[str]]:
    """Return (fitted MixedLM result, notes), trying the optimisers of MIXED_METHODS in turn without warnings.

    statsmodels reports trouble through warnings; they are caught here and kept as plain notes so a page never
    shows them. A fit is accepted when it converged to a finite likelihood with no convergence warning (a
    positive-definite Hessian among them); a random-effect variance on its boundary (0) is a legitimate answer
    (no variation beyond chance) and is noted, not retried.
    """
    notes: list[str] = []
    best = None
    for method in MIXED_METHODS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = model.fit(method=[method], reml=True)
            except (np.linalg.LinAlgError, ValueError) as error:
                notes.append(f"optimiser {method} failed ({error}); trying the next one")
                continue
        messages = [str(w.message) for w in caught]
        boundary = any("boundary" in m for m in messages)
        # At a variance of 0 the Hessian is not positive definite in that direction by construction; the fixed
        # effects' standard errors are unaffected, so only other convergence warnings count as trouble.
        trouble = [
            m for w, m in zip(caught, messages, strict=True)
            if issubclass(w.category, ConvergenceWarning)
            and "boundary" not in m
            and not (boundary and "Hessian" in m)
        ]
        # An infinite log-likelihood is a degenerate optimum (seen with lbfgs), never preferred over a finite one.
        if best is None or _finite_llf(result) > _finite_llf(best[0]):
            best = (result, messages)
        if result.converged and not trouble and np.isfinite(result.llf):
            best = (result, messages)
            break
        notes.append(f"optimiser {method} did not converge cleanly; trying the next one")
    if best is None:
        raise ValueError("the mixed model could not be fitted: " + "; ".join(notes))
    result, messages = best
    if any("boundary" in m for m in messages):
        notes.append("random-intercept variance estimated at 0: no variation between groups beyond chance")
    if not result.converged:
        notes.append("no optimiser converged; the best fit found is shown")
    return result, notes


def first_estimable(build, term_sets, spare: int = 2) -> tuple[object, list[str]] | tuple[None, None]:
    """Return (model, terms) for the first term set whose design has full rank and `spare` residual degrees of freedom.

    `build(terms)` returns an unfitted statsmodels formula model. Small filtered groups (a condition with a dozen
    patients) cannot carry every adjustment; trying richer term sets first and simpler ones after keeps the page
    working, and the caller says which adjustments were left out.
    """
    for terms in term_sets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rank problems are checked below, not reported as warnings
            model = build(list(terms))
        exog = np.asarray(model.exog)
        rank = np.linalg.matrix_rank(exog)
        if rank == exog.shape[1] and exog.shape[0] - rank >= spare:
            return model, list(terms)
    return None, None


def default_reference(techniques: pd.Series) -> str:
    """Return the reference technique: superficial when present, else the most frequent one."""
    present = techniques.dropna()
    if (present == DEFAULT_REFERENCE).any():
        return DEFAULT_REFERENCE
    return str(present.value_counts().sort_index().idxmax())


def recorded_covariates(frame: pd.DataFrame) -> list[str]:
    """Return the categorical adjustments recorded in frame with at least two levels."""
    return [c for c in COVARIATES if c in frame and frame[c].nunique() >= 2]


def as_levels(values: pd.Series) -> pd.Series:
    """Return values as text with unrecorded ones as a level of their own, so no episode is silently dropped."""
    return values.fillna("").astype(str).replace("", "unrecorded")


def model_frame(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return the sessions the models use: episodes with a baseline above 0 and a follow-up (k ≥ 2).

    The episodes are those of every responder figure (`outcomes.analysable`, then a follow-up), and those the
    page's count of left-out episodes names: a single-session episode has no follow-up pain, and one with
    baseline 0 had no pain to improve (it is treated for something else) and would pull the comparison of
    improvement towards 0. Each episode keeps the technique of its first session throughout (as intention to
    treat), so a patient who switches stays in their starting group.
    """
    improvement = outcomes.analysable(improvement)
    sessions = improvement.groupby("episode_id")["session_number"].transform("size")
    rows = improvement[sessions >= 2]
    frame = pd.DataFrame(
        {
            "episode": rows["episode_id"].astype(str),
            "session": rows["session_number"].astype(int),
            "technique": rows["episode_technique"].astype(str),
            "pain": rows["pain_before_points"].astype(float),
            "baseline": rows["baseline_points"].astype(float),
            "episode_sessions": sessions[sessions >= 2].astype(int),
        }
    )
    for column in COVARIATES:
        if column in rows:
            frame[column] = as_levels(rows[column])
    # Centred baseline: the technique differences do not change, the optimiser works on a better-scaled problem.
    frame["baseline"] -= frame["baseline"].mean()
    return frame.reset_index(drop=True)


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


def _counts(frame: pd.DataFrame, technique: str) -> tuple[int, int]:
    """Return (episodes, sessions including session 1) of a technique in the model frame."""
    episodes = frame.loc[frame["technique"] == technique].drop_duplicates("episode")
    return len(episodes), int(episodes["episode_sessions"].sum())


def _table(result, frame: pd.DataFrame, reference: str, model: str) -> pd.DataFrame:
    """Return the tidy comparison rows from a fit whose technique term is Treatment-coded against reference."""
    names = list(result.model.exog_names)
    conf = np.asarray(result.conf_int(alpha=0.05))
    params, pvalues = np.asarray(result.params), np.asarray(result.pvalues)
    rows = []
    for technique in sorted(set(frame["technique"]) - {reference}):
        # The technique's main-effect column: its Treatment dummy, not an interaction with session.
        index = next(i for i, n in enumerate(names) if n.endswith(f"[T.{technique}]") and ":" not in n)
        patients, sessions = _counts(frame, technique)
        rows.append(
            {
                "technique": technique,
                "reference": reference,
                "estimate": float(params[index]),
                "ci95_low": float(conf[index, 0]),
                "ci95_high": float(conf[index, 1]),
                "p_value": float(pvalues[index]),
                "patients": patients,
                "sessions": sessions,
                "model": model,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _adjusted_for(terms: list[str]) -> list[str]:
    """Return the adjustments a model's terms make, in words ("baseline pain", "condition")."""
    return ["baseline pain"] + [c for c in COVARIATES if f"C({c})" in terms]


def _left_out(wanted: list[str], used: list[str]) -> list[str]:
    """Return a note naming the adjustments a small group could not carry, if any."""
    dropped = [a for a in _adjusted_for(wanted) if a not in _adjusted_for(used)]
    return [f"{' and '.join(dropped)} left out: too few patients in each group"] if dropped else []


def _empty(notes: list[str]) -> pd.DataFrame:
    table = pd.DataFrame(columns=COLUMNS)
    table.attrs.update(fit_notes=notes, adjusted_for=[])
    return table


def mixed_model_comparison(improvement: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Return each technique's adjusted difference in pain from the reference over sessions 2 onwards (mixed model).

    Pain before each session k ≥ 2 ~ technique × session + baseline (+ condition), random intercept per episode.
    The estimate is the technique difference averaged over the session numbers with equal weight; Wald 95 %
    intervals and p-values. Fit notes (optimiser, boundary variance) are in `table.attrs["fit_notes"]`.
    """
    frame = model_frame(improvement)
    follow_up = frame[frame["session"] >= 2].copy()
    if follow_up["technique"].nunique() < 2:
        return _empty(["fewer than two techniques with follow-up sessions: nothing to compare"])
    reference = reference or default_reference(follow_up["technique"])
    if reference not in set(follow_up["technique"]):
        return _empty([f"no follow-up sessions with the reference technique {reference}"])
    follow_up["session"] = _session_levels(follow_up)
    # Session number is categorical, not a number: the improvement curve rises and then flattens (the
    # technique curve), so a straight line in k would misfit both the curve and the technique × session
    # interaction. Sum (deviation) coding makes the technique coefficient the technique difference averaged
    # over the session levels with equal weight, one number per technique whatever the drop-out pattern.
    technique = f"C(technique, Treatment('{reference}'))"
    shapes = [[f"{technique} * C(session, Sum)"]] if follow_up["session"].nunique() >= 2 else []
    shapes.append([technique])  # fallback for very small groups: one technique difference over all follow-up
    covariates = [f"C({c})" for c in recorded_covariates(follow_up)]
    term_sets = [shape + ["baseline"] + covs for shape in shapes for covs in (covariates, [])]
    model, terms = first_estimable(
        lambda t: smf.mixedlm("pain ~ " + " + ".join(t), follow_up, groups=follow_up["episode"]), term_sets
    )
    if model is None:
        return _empty(["too few patients to adjust the comparison"])
    result, notes = fit_mixed(model)
    notes += _left_out(term_sets[0], terms)
    if len(shapes) == 2 and terms[0] == technique:
        notes.append("technique × session left out (too few patients): one difference over all follow-up sessions")
    table = _table(result, follow_up, reference, MIXED)
    if table[["ci95_low", "ci95_high"]].isna().to_numpy().any():
        return _empty([*notes, "the mixed model gave no interval on so few patients"])
    table.attrs.update(fit_notes=notes, adjusted_for=_adjusted_for(terms))
    return table


def ancova_comparison(improvement: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Return each technique's adjusted difference in pain at the last session from the reference (ANCOVA).

    OLS of pain at each episode's last session on technique, baseline pain (and condition when recorded with two
    or more levels), after Vickers & Altman (BMJ 2001): follow-up adjusted for baseline, not raw change scores.
    """
    frame = model_frame(improvement)
    last = frame.sort_values(["episode", "session"]).groupby("episode").tail(1)
    if last["technique"].nunique() < 2:
        return _empty(["fewer than two techniques with follow-up sessions: nothing to compare"])
    reference = reference or default_reference(last["technique"])
    if reference not in set(last["technique"]):
        return _empty([f"no episodes with the reference technique {reference}"])
    base = [f"C(technique, Treatment('{reference}'))", "baseline"]
    covariates = [f"C({c})" for c in recorded_covariates(last)]
    model, terms = first_estimable(lambda t: smf.ols("pain ~ " + " + ".join(t), last), [base + covariates, base])
    if model is None:
        return _empty(["too few patients to adjust the comparison"])
    notes = _left_out(base + covariates, terms)
    table = _table(model.fit(), last, reference, ANCOVA)
    table.attrs.update(fit_notes=notes, adjusted_for=_adjusted_for(terms))
    return table


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _difference_text(low: float, high: float) -> str:
    """Return a 95 % interval of a difference in points in words ("3.1 to 7.0 points less")."""
    if high < 0:
        return f"{-high:.1f} to {-low:.1f} points less"
    if low > 0:
        return f"{low:.1f} to {high:.1f} points more"
    return f"{-low:.1f} points less to {high:.1f} points more"


def comparison_sentence(table: pd.DataFrame) -> str:
    """Return a plain-language sentence on the adjusted differences, with the observational caveat."""
    caveat = (
        "These are clinic data, not a trial: patients were not randomised to techniques, so the adjustment "
        "removes only the differences it measures and the rest may reflect who received each technique."
    )
    if table.empty:
        return ("There are not enough episodes of care with follow-up sessions in two techniques to compare them. "
                + caveat)
    model = table["model"].iloc[0]
    what = "over their follow-up sessions" if model == MIXED else "at their last session"
    reference = table["reference"].iloc[0]
    adjusted = " and ".join(table.attrs.get("adjusted_for", ["baseline pain"]))
    parts = []
    for row in table.itertuples():
        who = f"patients treated with {row.technique} dry needling reported"
        if round(row.estimate, 1) == 0:
            headline = f"{who} about the same pain {what}"
        else:
            direction = "less" if row.estimate < 0 else "more"
            headline = f"{who} on average {abs(row.estimate):.1f} points {direction} pain {what}"
        verdict = ", too uncertain to tell apart from the reference" if row.ci95_low <= 0 <= row.ci95_high else ""
        parts.append(
            f"{headline} (95 % CI {_difference_text(row.ci95_low, row.ci95_high)}; {_p_text(row.p_value)}; "
            f"{row.patients} episodes of care, {row.sessions} sessions){verdict}"
        )
    return f"Compared with {reference} dry needling and adjusted for {adjusted} ({model}), " + "; ".join(parts) + (
        ". " + caveat
    )
