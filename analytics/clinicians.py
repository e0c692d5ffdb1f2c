"""Clinician benchmarking: case-mix adjusted improvement per clinician, shrunk so small caseloads are not outliers.

After Gozalo et al. (Health Serv Res 2016), who benchmark therapists with a hierarchical model of patients within
therapists: each clinician's estimate borrows strength from the clinic, so a clinician with three patients sits
near the clinic mean with a wide interval instead of topping or tailing a league table by chance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from analytics import outcomes
from analytics.fitting import as_levels, first_estimable, fit_mixed, recorded_covariates

Z95 = float(stats.norm.ppf(0.975))
Z998 = float(stats.norm.ppf(0.999))  # the outer 99.8 % funnel limits of Spiegelhalter (Stat Med 2005)
BENCHMARK_COLUMNS = ["clinician", "patients", "estimate", "ci95_low", "ci95_high", "clinic_mean", "outside_clinic_mean"]
FUNNEL_COLUMNS = [
    "clinician", "patients", "adjusted_mean", "clinic_mean", "sd",
    "lower95", "upper95", "lower998", "upper998", "outside95",
]


def episode_outcomes(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return one row per episode with a follow-up: its clinician, technique, baseline and last improvement (points).

    The episode's clinician is the one who saw it at its first session, who assessed the patient and chose the
    technique: the clinician the page's filter selects by, so a clinician's benchmark and their filtered figures
    count the same episodes. Episodes without a clinician at session 1 cannot be attributed and are left out,
    as are single-session episodes and those with baseline 0 (as in every model: `outcomes.analysable`).
    """
    if "clinician" not in improvement:
        return pd.DataFrame(columns=["episode", "clinician", "technique", "baseline", "improvement"])
    rows = outcomes.analysable(improvement).sort_values(["episode_id", "session_number"])
    rows = rows.assign(clinician=rows["clinician"].fillna("").astype(str))
    main = rows.groupby("episode_id", sort=False).head(1)
    main = main[main["clinician"] != ""]
    last = rows.groupby("episode_id").tail(1)
    last = last[rows.groupby("episode_id")["session_number"].transform("size").loc[last.index] >= 2]
    out = pd.DataFrame(
        {
            "episode": last["episode_id"].astype(str),
            "episode_id": last["episode_id"],
            "technique": last["episode_technique"].astype(str),
            "baseline": last["baseline_points"].astype(float),
            "improvement": last["improvement_points"].astype(float),
        }
    )
    for column in ("condition", "chronicity"):
        if column in last:
            out[column] = as_levels(last[column])
    out = out.merge(main[["episode_id", "clinician"]], on="episode_id", how="inner").drop(columns="episode_id")
    out["baseline"] -= out["baseline"].mean()  # centred, so the intercept is the improvement at the mean baseline
    return out.reset_index(drop=True)


def _case_mix_term_sets(episodes: pd.DataFrame) -> list[list[str]]:
    """Return the risk adjustments to try, richest first: baseline, technique and the recorded case mix.

    Smaller sets follow for small filtered groups that cannot carry every adjustment (see first_estimable).
    """
    technique = ["C(technique)"] if episodes["technique"].nunique() >= 2 else []
    covariates = [f"C({c})" for c in recorded_covariates(episodes)]
    sets = [["baseline", *technique, *covariates], ["baseline", *technique], ["baseline"]]
    return [terms for i, terms in enumerate(sets) if terms not in sets[:i]]


def _case_mix_note(term_sets: list[list[str]], terms: list[str]) -> list[str]:
    left_out = [t.removeprefix("C(").removesuffix(")") for t in term_sets[0] if t not in terms]
    return [f"{' and '.join(left_out)} left out of the adjustment: too few patients"] if left_out else []


def clinician_benchmark(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return each clinician's adjusted mean improvement at the last session (points) with a 95 % interval.

    Mixed model: last improvement ~ baseline + technique (+ condition), random intercept per clinician.
    estimate = clinic mean (fixed-effect prediction averaged over all episodes, i.e. the clinic's case mix) + the
    clinician's BLUP; the interval is BLUP ± 1.96 · its conditional standard deviation, which widens as the
    caseload shrinks. `outside_clinic_mean` is True when the interval excludes the clinic mean.
    """
    episodes = episode_outcomes(improvement)
    if episodes["clinician"].nunique() < 2:
        table = pd.DataFrame(columns=BENCHMARK_COLUMNS)
        table.attrs["fit_notes"] = ["fewer than two clinicians with follow-up sessions: nothing to benchmark"]
        return table
    term_sets = _case_mix_term_sets(episodes)
    model, terms = first_estimable(
        lambda t: smf.mixedlm("improvement ~ " + " + ".join(t), episodes, groups=episodes["clinician"]), term_sets
    )
    if model is None:
        table = pd.DataFrame(columns=BENCHMARK_COLUMNS)
        table.attrs["fit_notes"] = ["too few patients to benchmark clinicians"]
        return table
    result, notes = fit_mixed(model)
    notes += _case_mix_note(term_sets, terms)
    clinic_mean = float(np.mean(model.exog @ np.asarray(result.fe_params)))
    variance = float(np.asarray(result.cov_re)[0, 0])
    patients = episodes.groupby("clinician").size()
    if variance > 1e-8:
        blup = {g: float(v.iloc[0]) for g, v in result.random_effects.items()}
        sd = {g: float(np.sqrt(c.iloc[0, 0])) for g, c in result.random_effects_cov.items()}
    else:  # no variation between clinicians beyond chance: every clinician is estimated at the clinic mean
        blup = dict.fromkeys(patients.index, 0.0)
        sd = dict.fromkeys(patients.index, 0.0)
    rows = [
        {
            "clinician": clinician,
            "patients": int(patients[clinician]),
            "estimate": clinic_mean + blup[clinician],
            "ci95_low": clinic_mean + blup[clinician] - Z95 * sd[clinician],
            "ci95_high": clinic_mean + blup[clinician] + Z95 * sd[clinician],
            "clinic_mean": clinic_mean,
            "outside_clinic_mean": bool(abs(blup[clinician]) > Z95 * sd[clinician]),
        }
        for clinician in patients.index
    ]
    table = pd.DataFrame(rows, columns=BENCHMARK_COLUMNS).sort_values("estimate").reset_index(drop=True)
    table.attrs["fit_notes"] = notes
    return table


def clinician_funnel(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return funnel-plot data: per clinician the caseload n, the case-mix adjusted mean and the control limits.

    adjusted_mean = clinic mean + the clinician's mean residual from an OLS of last improvement on baseline and
    technique (+ condition), without clinician; limits are clinic mean ± 1.96 · sd / √n (and ± 3.09 · sd / √n),
    sd being the residual standard deviation, so the funnel narrows as caseload grows.
    """
    episodes = episode_outcomes(improvement)
    if episodes.empty:
        return pd.DataFrame(columns=FUNNEL_COLUMNS)
    # Without enough patients for any adjustment the funnel still shows raw means (intercept only).
    term_sets = [*_case_mix_term_sets(episodes), ["1"]]
    model, terms = first_estimable(lambda t: smf.ols("improvement ~ " + " + ".join(t), episodes), term_sets, spare=1)
    if model is None:
        return pd.DataFrame(columns=FUNNEL_COLUMNS)
    fit = model.fit()
    residual = episodes["improvement"] - fit.fittedvalues
    clinic_mean = float(episodes["improvement"].mean())
    sd = float(np.sqrt(fit.mse_resid))
    grouped = residual.groupby(episodes["clinician"])
    n = grouped.size().astype(int)
    funnel = pd.DataFrame(
        {
            "clinician": n.index,
            "patients": n.to_numpy(),
            "adjusted_mean": clinic_mean + grouped.mean().to_numpy(),
            "clinic_mean": clinic_mean,
            "sd": sd,
        }
    )
    half95, half998 = Z95 * sd / np.sqrt(funnel["patients"]), Z998 * sd / np.sqrt(funnel["patients"])
    funnel["lower95"], funnel["upper95"] = clinic_mean - half95, clinic_mean + half95
    funnel["lower998"], funnel["upper998"] = clinic_mean - half998, clinic_mean + half998
    funnel["outside95"] = (funnel["adjusted_mean"] < funnel["lower95"]) | (funnel["adjusted_mean"] > funnel["upper95"])
    funnel = funnel[FUNNEL_COLUMNS].sort_values("patients").reset_index(drop=True)
    funnel.attrs["fit_notes"] = _case_mix_note(term_sets, terms)
    return funnel
