"""Fitting the clinic's models on filtered groups of any size: the categorical adjustments a group records, the
richest set of terms it can carry, and statsmodels' mixed model fitted without a warning reaching a page.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import ConvergenceWarning

# Optimisers tried in turn by fit_mixed (the clinician benchmark's statsmodels MixedLM): lbfgs is fast and usually
# converges; powell and nm need no gradient and rescue fits where lbfgs stops on a flat likelihood (a variance near 0).
MIXED_METHODS = ("lbfgs", "powell", "nm")
COVARIATES = ("condition", "chronicity")  # categorical adjustments, used when recorded with at least two levels


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


def recorded_covariates(frame: pd.DataFrame) -> list[str]:
    """Return the categorical adjustments recorded in frame with at least two levels."""
    return [c for c in COVARIATES if c in frame and frame[c].nunique() >= 2]


def as_levels(values: pd.Series) -> pd.Series:
    """Return values as text with unrecorded ones as a level of their own, so no episode is silently dropped."""
    return values.fillna("").astype(str).replace("", "unrecorded")
