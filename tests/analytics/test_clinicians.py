"""Tests that analytics.clinicians shrinks small caseloads toward the clinic mean, checked against textbook BLUPs."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from analytics import clinicians, outcomes
from analytics.fitting import MIXED_METHODS, fit_mixed
from tests.analytics import independent
from tests.analytics.test_comparison import sample_improvement

Z95 = stats.norm.ppf(0.975)
CASELOADS = {"c_small": 3, "c_big": 60, "c_high": 60, "c_a": 25, "c_b": 30, "c_c": 20, "c_d": 35, "c_e": 15, "c_f": 40}
CLINICIAN_EFFECT = {"c_high": 15.0}  # points better than the others; everyone else gets a N(0, 4) effect
TECHNIQUE_EFFECT = {"superficial": 0.0, "deep": 6.0, "electrical": 9.0}


def simulate(seed: int = 11) -> pd.DataFrame:
    """Return cumulative_improvement of 3-session episodes whose last improvement has a clinician effect.

    improvement at session 3 = 20 + 0.3 · (baseline − 65) + technique effect + clinician effect + N(0, 10).
    """
    rng = np.random.default_rng(seed)
    rows, episode = [], 0
    for clinician, caseload in CASELOADS.items():
        effect = CLINICIAN_EFFECT.get(clinician, rng.normal(0, 4))
        for _ in range(caseload):
            technique = ("superficial", "deep", "electrical")[rng.integers(3)]
            baseline = float(np.clip(rng.normal(65, 10), 30, 95))
            gain = 20 + 0.3 * (baseline - 65) + TECHNIQUE_EFFECT[technique] + effect + rng.normal(0, 10)
            pains = (baseline, baseline - gain / 2, baseline - gain)
            rows += [(episode, k, technique, pain, clinician) for k, pain in enumerate(pains, start=1)]
            episode += 1
    frame = pd.DataFrame(rows, columns=["episode_id", "session_number", "technique", "pain_before", "clinician"])
    return outcomes.cumulative_improvement(frame.assign(pain_scale="vas_100"))


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate()


@pytest.fixture(scope="module")
def benchmark(simulated) -> pd.DataFrame:
    return clinicians.clinician_benchmark(simulated).set_index("clinician")


def last_sessions(improvement: pd.DataFrame) -> pd.DataFrame:
    """Return each episode's last session with its improvement, built directly in the test."""
    return improvement.sort_values(["episode_id", "session_number"]).groupby("episode_id").tail(1)


def half_width(row: pd.Series) -> float:
    return (row["ci95_high"] - row["ci95_low"]) / 2


def test_a_3_patient_clinicians_interval_is_wider_than_a_60_patient_clinicians(benchmark):
    assert benchmark.loc["c_small", "patients"] == 3 and benchmark.loc["c_big", "patients"] == 60
    assert half_width(benchmark.loc["c_small"]) > 1.5 * half_width(benchmark.loc["c_big"])


def test_estimates_are_the_textbook_blups_of_a_direct_random_intercept_fit(simulated, benchmark):
    last = last_sessions(simulated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # powell, because lbfgs stops at a degenerate optimum on these data
        direct = smf.mixedlm(
            "improvement_points ~ baseline_points + C(episode_technique)", last, groups=last["clinician"]
        ).fit(method=["powell"])
    tau2, sigma2 = float(direct.cov_re.iloc[0, 0]), float(direct.scale)
    fixed = direct.model.exog @ direct.fe_params.to_numpy()
    residual = pd.Series(last["improvement_points"].to_numpy() - fixed, index=last["clinician"].to_numpy())
    clinic_mean = fixed.mean()
    for clinician, n in CASELOADS.items():
        # BLUP of a random intercept: the clinician's mean residual shrunk by τ² / (τ² + σ² / n), with
        # conditional variance τ² σ² / (σ² + n τ²).
        shrink = tau2 / (tau2 + sigma2 / n)
        blup = shrink * residual[clinician].mean()
        sd = np.sqrt(tau2 * sigma2 / (sigma2 + n * tau2))
        got = benchmark.loc[clinician]
        assert got["clinic_mean"] == pytest.approx(clinic_mean, abs=1e-3)
        assert got["estimate"] == pytest.approx(clinic_mean + blup, abs=1e-2), clinician
        assert half_width(got) == pytest.approx(Z95 * sd, rel=1e-2), clinician
    # The 3-patient clinician is pulled more than halfway to the clinic mean, the 60-patient ones hardly at all.
    assert tau2 / (tau2 + sigma2 / 3) < 0.7 < 0.9 < tau2 / (tau2 + sigma2 / 60)


def test_a_clearly_better_clinician_with_a_big_caseload_is_flagged_and_the_small_one_is_not(benchmark):
    assert bool(benchmark.loc["c_high", "outside_clinic_mean"]) is True
    assert benchmark.loc["c_high", "ci95_low"] > benchmark.loc["c_high", "clinic_mean"]
    assert bool(benchmark.loc["c_small", "outside_clinic_mean"]) is False


def test_an_episodes_clinician_is_the_one_who_saw_its_first_session_as_the_filter_says():
    frame = pd.DataFrame(
        [
            (1, 1, "deep", 60, "ann"), (1, 2, "deep", 50, "bob"), (1, 3, "deep", 40, "bob"),  # bob gave most
            (2, 1, "deep", 70, "ann"), (2, 2, "deep", 60, "bob"),
            (3, 1, "deep", 70, ""), (3, 2, "deep", 60, "ann"),  # nobody at session 1: cannot be attributed
            (4, 1, "deep", 70, "bob"),  # one session: no follow-up
        ],
        columns=["episode_id", "session_number", "technique", "pain_before", "clinician"],
    )
    episodes = clinicians.episode_outcomes(outcomes.cumulative_improvement(frame.assign(pain_scale="vas_100")))
    assert dict(zip(episodes["episode"], episodes["clinician"], strict=True)) == {"1": "ann", "2": "ann"}
    assert episodes["improvement"].tolist() == [20.0, 10.0]


def test_funnel_limits_are_the_clinic_mean_plus_minus_1_96_sd_over_root_n(simulated):
    funnel = clinicians.clinician_funnel(simulated).set_index("clinician")
    last = last_sessions(simulated)
    fit = smf.ols("improvement_points ~ baseline_points + C(episode_technique)", last).fit()
    sd = np.sqrt(fit.mse_resid)
    mean = last["improvement_points"].mean()
    residual = (last["improvement_points"] - fit.fittedvalues).groupby(last["clinician"]).mean()
    for clinician, n in CASELOADS.items():
        got = funnel.loc[clinician]
        assert got["patients"] == n
        assert got["adjusted_mean"] == pytest.approx(mean + residual[clinician])
        assert got["lower95"] == pytest.approx(mean - 1.959964 * sd / np.sqrt(n), rel=1e-6)
        assert got["upper95"] == pytest.approx(mean + 1.959964 * sd / np.sqrt(n), rel=1e-6)
        assert got["upper998"] == pytest.approx(mean + 3.090232 * sd / np.sqrt(n), rel=1e-6)
    assert bool(funnel.loc["c_high", "outside95"]) is True
    assert funnel["patients"].is_monotonic_increasing


def test_with_one_clinician_there_is_nothing_to_benchmark():
    data = simulate()
    table = clinicians.clinician_benchmark(data.assign(clinician="solo"))
    assert table.empty and table.attrs["fit_notes"]


def test_the_sample_data_benchmark_fits_without_warnings():
    data = sample_improvement()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = clinicians.clinician_benchmark(data)
        funnel = clinicians.clinician_funnel(data)
    assert [str(w.message) for w in caught] == []
    # Every model leaves out single-session episodes and those with baseline 0 (2 in the sample), as the page says.
    per_episode = data.groupby("episode_id").agg(sessions=("session_number", "size"), first=("pain_before", "first"))
    modelled = ((per_episode["sessions"] >= 2) & (per_episode["first"] > 0)).sum()
    assert table["patients"].sum() == modelled == funnel["patients"].sum() == 271
    assert set(table["clinician"]) == set(data["clinician"])


def test_on_the_sample_data_each_clinicians_caseload_is_the_episodes_the_clinician_filter_selects():
    # The filter "Clinician (first session)" selects episodes by their first session's clinician; the benchmark
    # must count the same ones (it counted the clinician who gave most sessions). Recounted from the CSV.
    rows = independent.read_rows()
    caseload: dict[str, int] = {}
    for sessions in independent.episodes_from_rows(rows).values():
        if sessions[0]["points"] > 0 and len(sessions) >= 2:
            first = rows.iloc[sessions[0]["order"]]["clinician"]
            caseload[first] = caseload.get(first, 0) + 1
    table = clinicians.clinician_benchmark(sample_improvement())
    assert dict(zip(table["clinician"], table["patients"], strict=True)) == caseload
    assert (table["ci95_low"] <= table["estimate"]).all() and (table["estimate"] <= table["ci95_high"]).all()


class DegenerateFirstOptimiser:
    """A MixedLM whose first optimiser stops at a degenerate optimum (infinite likelihood, a convergence warning).

    Which optimiser a real fit needs depends on the platform's floating-point path, so the fallback is tested
    on a model that fails the same way everywhere; every later optimiser fits the real model.
    """

    def __init__(self, model):
        self.model = model
        self.methods: list[str] = []

    def fit(self, method, reml):
        self.methods += method
        if len(self.methods) == 1:
            warnings.warn("The MLE may be on the boundary of the parameter space.", ConvergenceWarning, stacklevel=1)
            warnings.warn("Gradient optimization failed", ConvergenceWarning, stacklevel=1)
            return SimpleNamespace(llf=np.inf, converged=False)
        return self.model.fit(method=method, reml=reml)


def test_when_the_first_optimiser_stops_at_a_degenerate_optimum_the_next_takes_over_without_warnings(simulated):
    last = last_sessions(simulated)
    model = DegenerateFirstOptimiser(
        smf.mixedlm("improvement_points ~ baseline_points", last, groups=last["clinician"])
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, notes = fit_mixed(model)
    assert [str(w.message) for w in caught] == []
    assert model.methods == list(MIXED_METHODS[:2])
    assert notes == [f"optimiser {MIXED_METHODS[0]} did not converge cleanly; trying the next one"]
    assert np.isfinite(result.llf) and result.converged


def test_the_simulated_clinic_benchmarks_without_warnings_and_finds_variance_between_clinicians(simulated):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = clinicians.clinician_benchmark(simulated)
    assert [str(w.message) for w in caught] == []
    assert table["ci95_high"].gt(table["ci95_low"]).all()  # a real between-clinician variance was found


def test_every_condition_of_the_sample_data_benchmarks_without_warnings():
    data = sample_improvement()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _, group in data.groupby("condition"):
            table = clinicians.clinician_benchmark(group)
            funnel = clinicians.clinician_funnel(group)
            assert table["patients"].sum() == funnel["patients"].sum() > 0
    assert [str(w.message) for w in caught] == []


def test_the_funnel_falls_back_to_raw_means_when_no_adjustment_fits():
    frame = pd.DataFrame(
        [(1, 1, "deep", 60, "ann"), (1, 2, "deep", 40, "ann"), (2, 1, "electrical", 70, "bob"),
         (2, 2, "electrical", 60, "bob")],
        columns=["episode_id", "session_number", "technique", "pain_before", "clinician"],
    )
    funnel = clinicians.clinician_funnel(outcomes.cumulative_improvement(frame.assign(pain_scale="vas_100")))
    means = dict(zip(funnel["clinician"], funnel["adjusted_mean"], strict=True))
    assert means == {"ann": pytest.approx(20.0), "bob": pytest.approx(10.0)}
    assert funnel["clinic_mean"].iloc[0] == pytest.approx(15.0)
    assert funnel.attrs["fit_notes"] == ["baseline and technique left out of the adjustment: too few patients"]
