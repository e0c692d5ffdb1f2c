"""Tests that the science chart builders draw what the tables say, in each technique's colour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from clinic.vocabulary import TECHNIQUE_LABELS
from dashboard import charts_science
from dashboard.charts import TECHNIQUE_COLORS


def traces(fig: go.Figure, startswith: str) -> list:
    """Return the traces whose legend name starts with a label."""
    return [t for t in fig.data if t.name and t.name.startswith(startswith)]


COMPARISON = pd.DataFrame(
    [
        ("deep", "superficial", -8.0, -11.0, -5.0, 0.0001, 110, 600, "mixed model"),
        ("electrical", "superficial", -12.0, -16.0, -9.0, 0.00001, 80, 460, "mixed model"),
        ("deep", "superficial", -10.0, -14.0, -6.0, 0.0002, 110, 600, "ANCOVA"),
    ],
    columns=["technique", "reference", "estimate", "ci95_low", "ci95_high", "p_value", "patients", "sessions", "model"],
)


def test_the_forest_plot_has_one_marker_per_estimate_with_its_interval_as_error_bars():
    fig = charts_science.comparison_forest_figure(COMPARISON)
    assert len(fig.data) == 3
    electrical = traces(fig, TECHNIQUE_LABELS["electrical"])[0]
    assert list(electrical.x) == [-12.0]
    assert list(electrical.error_x.array) == [3.0] and list(electrical.error_x.arrayminus) == [4.0]
    assert electrical.marker.color == TECHNIQUE_COLORS["electrical"]
    symbols = {t.name: t.marker.symbol for t in fig.data}
    assert symbols[f"{TECHNIQUE_LABELS['deep']}, ANCOVA"] == "diamond"
    assert any("Superficial" in (s.text or "") for s in fig.layout.annotations)  # the zero line names the reference


def test_the_responder_curve_has_one_line_per_technique_in_percent():
    thresholds = np.arange(0, 101)
    curve = pd.concat(
        [
            pd.DataFrame({"technique": t, "threshold_pct": thresholds, "patients": 10,
                          "responders": np.maximum(0, 10 - thresholds // 10 - shift)})
            for t, shift in (("deep", 0), ("superficial", 2))
        ],
        ignore_index=True,
    )
    curve["share"] = curve["responders"] / curve["patients"]
    curve["ci95_low"], curve["ci95_high"] = curve["share"] * 0.9, np.minimum(1, curve["share"] * 1.1)
    fig = charts_science.responder_curve_figure(curve)
    lines = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in lines] == [f"{TECHNIQUE_LABELS['superficial']} (10 episodes)",
                                       f"{TECHNIQUE_LABELS['deep']} (10 episodes)"]
    deep = lines[1]
    assert list(deep.x) == list(range(101))
    assert deep.y[0] == pytest.approx(100.0) and deep.y[100] == pytest.approx(0.0)
    assert deep.line.color == TECHNIQUE_COLORS["deep"]


def test_kaplan_meier_curves_are_steps_of_the_share_responded_with_the_median_in_the_legend():
    km = pd.DataFrame(
        {
            "technique": "deep", "session_number": [1, 2, 3, 4], "at_risk": [6, 6, 5, 3], "responses": [0, 1, 1, 1],
            "censored": [0, 0, 1, 0], "survival": [1, 5 / 6, 2 / 3, 4 / 9],
            "ci95_low": [1, 0.27, 0.19, 0.07], "ci95_high": [1, 0.97, 0.90, 0.78],
        }
    )
    km["responded_share"] = 1 - km["survival"]
    medians = pd.DataFrame({"technique": ["deep"], "median_sessions": pd.Series([4], dtype=object)})
    fig = charts_science.kaplan_meier_figure(km, medians)
    line = traces(fig, TECHNIQUE_LABELS["deep"])[0]
    assert line.name == f"{TECHNIQUE_LABELS['deep']} (median 4 sessions)"
    assert line.line.shape == "hv"
    assert list(line.y) == pytest.approx([0, 100 / 6, 100 / 3, 500 / 9])
    band = [t for t in fig.data if t.fill == "toself"][0]
    assert max(band.y) == pytest.approx(100 * (1 - 0.07)) and min(band.y) == pytest.approx(0)


def test_kaplan_meier_says_when_the_median_is_not_reached_and_skips_an_undefined_band():
    km = pd.DataFrame(
        {"technique": "superficial", "session_number": [1, 2], "at_risk": [2, 2], "responses": [0, 1],
         "censored": [0, 1], "survival": [1.0, 0.0], "ci95_low": [1.0, np.nan], "ci95_high": [1.0, np.nan]}
    ).assign(responded_share=lambda f: 1 - f["survival"])
    medians = pd.DataFrame({"technique": ["superficial"], "median_sessions": pd.Series([None], dtype=object)})
    fig = charts_science.kaplan_meier_figure(km, medians)
    assert traces(fig, TECHNIQUE_LABELS["superficial"])[0].name.endswith("(median not reached)")
    assert not any(np.isnan(np.asarray(t.y, dtype=float)).any() for t in fig.data)


BENCHMARK = pd.DataFrame(
    {
        "clinician": ["ann", "bob", "cy"], "patients": [3, 60, 40], "estimate": [24.0, 31.0, 22.0],
        "ci95_low": [14.0, 29.0, 19.0], "ci95_high": [34.0, 33.0, 25.0], "clinic_mean": 26.0,
        "outside_clinic_mean": [False, True, False],
    }
)


def test_the_caterpillar_plot_sorts_clinicians_and_highlights_intervals_outside_the_clinic_mean():
    fig = charts_science.clinician_caterpillar_figure(BENCHMARK)
    dots = fig.data[0]
    assert list(dots.y) == ["cy", "ann", "bob"]
    assert list(dots.marker.color) == [charts_science.NEUTRAL, charts_science.NEUTRAL, charts_science.HIGHLIGHT]
    assert list(dots.error_x.array) == [3.0, 10.0, 2.0]
    assert fig.layout.xaxis.range[0] < 16 and fig.layout.xaxis.range[1] > 36  # at least ±10 points around 26


def test_the_caterpillar_plot_says_so_when_every_clinician_sits_on_the_clinic_mean():
    flat = BENCHMARK.assign(estimate=26.0, ci95_low=26.0, ci95_high=26.0, outside_clinic_mean=False)
    fig = charts_science.clinician_caterpillar_figure(flat)
    assert "No variation between clinicians" in fig.layout.title.text


def test_the_funnel_plot_draws_limits_that_narrow_with_caseload_and_every_clinician():
    funnel = pd.DataFrame(
        {"clinician": ["ann", "bob"], "patients": [4, 64], "adjusted_mean": [30.0, 20.0], "clinic_mean": 25.0,
         "sd": 16.0, "outside95": [False, True]}
    )
    fig = charts_science.clinician_funnel_figure(funnel)
    upper95 = [t for t in fig.data if t.name == "95 % limits" and t.showlegend][0]
    n, y = np.asarray(upper95.x), np.asarray(upper95.y)
    assert y == pytest.approx(25 + 1.959964 * 16 / np.sqrt(n))
    assert np.all(np.diff(y) < 0)
    dots = traces(fig, "Clinicians")[0]
    assert list(dots.x) == [4, 64] and list(dots.text) == ["ann", "bob"]


def test_the_safety_chart_puts_clinic_bars_beside_published_markers():
    comparison = pd.DataFrame(
        [
            ("bruising", "deep", 8.5, 6.5, 10.9, False),
            ("bruising", "electrical", 12.0, 9.4, 15.1, False),
            ("bruising", "Brady et al. 2014, J Man Manip Ther", 7.55, np.nan, np.nan, True),
            ("any", "deep", 31.9, 28.4, 35.6, False),
            ("any", "Brady et al. 2014, J Man Manip Ther", 19.18, np.nan, np.nan, True),
        ],
        columns=["code", "source", "per_100", "ci95_low", "ci95_high", "published"],
    )
    fig = charts_science.safety_comparison_figure(comparison)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == [TECHNIQUE_LABELS["deep"], TECHNIQUE_LABELS["electrical"]]
    assert bars[0].marker.color == TECHNIQUE_COLORS["deep"]
    assert list(bars[0].y) == ["Bruising", "Any mild side effect"]  # smallest largest-rate first, drawn bottom-up
    brady = traces(fig, "Brady et al. 2014")[0]
    assert brady.name == "Brady et al. 2014 (published)"
    assert list(brady.x) == [7.55, 19.18]


@pytest.mark.parametrize(
    "build",
    [
        lambda: charts_science.comparison_forest_figure(COMPARISON.iloc[0:0]),
        lambda: charts_science.responder_curve_figure(pd.DataFrame(columns=["technique"])),
        lambda: charts_science.kaplan_meier_figure(pd.DataFrame(columns=["technique"])),
        lambda: charts_science.clinician_caterpillar_figure(BENCHMARK.iloc[0:0]),
        lambda: charts_science.clinician_funnel_figure(pd.DataFrame()),
        lambda: charts_science.safety_comparison_figure(
            pd.DataFrame(columns=["code", "source", "per_100", "ci95_low", "ci95_high", "published"])
        ),
    ],
)
def test_every_builder_returns_an_empty_figure_for_an_empty_table(build):
    fig = build()
    assert isinstance(fig, go.Figure)
    assert all(t.x is None or len(t.x) == 0 for t in fig.data)


def test_points_with_fewer_than_10_patients_are_drawn_hollow():
    caterpillar = charts_science.clinician_caterpillar_figure(BENCHMARK)
    assert list(caterpillar.data[0].marker.symbol) == ["circle", "circle-open", "circle"]  # cy 40, ann 3, bob 60
    km = pd.DataFrame(
        {"technique": "deep", "session_number": [1, 2, 3], "at_risk": [12, 10, 9], "responses": [0, 2, 3],
         "censored": [0, 0, 0], "survival": [1.0, 0.8, 0.5], "ci95_low": [1.0, 0.5, 0.2], "ci95_high": [1.0, 0.9, 0.7]}
    ).assign(responded_share=lambda f: 1 - f["survival"])
    line = traces(charts_science.kaplan_meier_figure(km), TECHNIQUE_LABELS["deep"])[0]
    assert list(line.marker.symbol) == ["circle", "circle", "circle-open"]


def texts(value) -> list[str]:
    """Return every string in a figure's JSON: names, hover templates, titles, annotations."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in texts(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in texts(v)]
    return []


def test_no_chart_of_the_technique_page_calls_episodes_patients():
    from analytics import clinicians, comparison, outcomes, responders, safety, survival
    from dashboard import charts
    from tests.analytics.test_comparison import sample_improvement
    from tests.analytics.test_safety import tidy

    data = sample_improvement()
    curve = outcomes.technique_curve(outcomes.curve_moments(data))
    times = survival.time_to_response(data)
    counts = safety.count_side_effects(*tidy(data))
    rates = safety.rate_table(counts.events, counts.sessions)
    figures = {
        "curve": charts.technique_curve_figure(curve),
        "responders": charts.responder_figure(outcomes.responder_table(outcomes.responder_counts(data))),
        "responder curve": charts_science.responder_curve_figure(responders.responder_curve(data)),
        "time to response": charts_science.kaplan_meier_figure(survival.kaplan_meier(times),
                                                               survival.median_sessions(times)),
        "forest": charts_science.comparison_forest_figure(comparison.ancova_comparison(data)),
        "caterpillar": charts_science.clinician_caterpillar_figure(clinicians.clinician_benchmark(data)),
        "funnel": charts_science.clinician_funnel_figure(clinicians.clinician_funnel(data)),
        "mild": charts_science.safety_comparison_figure(safety.safety_vs_published(rates)),
        "serious": charts_science.serious_comparison_figure(safety.serious_vs_published(rates)),
    }
    for name, fig in figures.items():
        wrong = [t for t in texts(fig.to_plotly_json()) if "patient" in t.lower()]
        assert wrong == [], f"{name}: {wrong}"
    assert any("episodes" in t for t in texts(figures["curve"].to_plotly_json()))


def test_the_serious_chart_shows_the_clinic_with_intervals_boyces_rate_and_bradys_bound_as_a_bar_from_0():
    from analytics import safety

    rates = pd.DataFrame(
        [("all", "any", "significant", 3, 1571), ("all", "any", "serious", 0, 1571),
         ("deep", "any", "significant", 2, 624), ("deep", "any", "serious", 0, 624)],
        columns=["technique", "side_effect", "severity", "events", "sessions"],
    ).assign(per_100_sessions=0.0, ci95_low=0.0, ci95_high=0.0)
    fig = charts_science.serious_comparison_figure(safety.serious_vs_published(rates))
    clinic, published, bound = fig.data
    assert list(clinic.y) == ["All techniques", TECHNIQUE_LABELS["deep"]]
    assert list(clinic.x) == pytest.approx([300 / 1571, 200 / 624])
    assert clinic.error_x.array[0] == pytest.approx(100 * 8.767 / 1571 - 300 / 1571, abs=1e-3)
    assert published.y[0].startswith("Boyce et al. 2020") and published.x[0] == pytest.approx(100 * 20 / 20464)
    assert bound.type == "bar" and bound.y[0].startswith("Brady et al. 2014")
    assert bound.x[0] == pytest.approx(100 * 2.9957 / 7629, abs=1e-4)
    assert "one-sided 95 % bound" in bound.hovertemplate
