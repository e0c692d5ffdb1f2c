"""Pure plotly builders for the outcome-science figures: tidy DataFrames from analytics in, Figures out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analytics.outcomes import SMALL_GROUP
from analytics.safety import BOYCE_2020, BRADY_2014
from clinic.vocabulary import (
    MINIMAL_PCT,
    MODERATE_PCT,
    SIDE_EFFECTS,
    SUBSTANTIAL_PCT,
    TECHNIQUE_LABELS,
    TECHNIQUES,
    counted,
)
from dashboard.charts import TECHNIQUE_COLORS, _layout, _rgba

MODEL_SYMBOLS = {"mixed model": "circle", "OLS, clustered errors": "square", "ANCOVA": "diamond"}
NEUTRAL, HIGHLIGHT = "#777777", "#D55E00"  # Okabe–Ito grey-ish and vermillion, for clinicians
PUBLISHED_SYMBOLS = ("diamond-open", "x-thin-open", "star-open")
CLAIM_SESSIONS = (2, 4)  # "positive results usually evident in 2 to 4 sessions" (docs/REFERENCES.md)
MIN_HALF_SPAN = 10.0  # points either side of the clinic mean a caterpillar axis always shows: tiny spreads look tiny


ALL_TECHNIQUES = "all"  # the pooled rows of the safety tables


def _label(technique: str) -> str:
    if technique == ALL_TECHNIQUES:
        return "All techniques"
    return TECHNIQUE_LABELS.get(technique, str(technique))


def _techniques(frame: pd.DataFrame) -> list[str]:
    """Return the techniques present, in the product's usual order, unknown codes last."""
    present = list(dict.fromkeys(frame["technique"]))
    return [t for t in TECHNIQUES if t in present] + [t for t in present if t not in TECHNIQUES]


def _color(technique: str) -> str:
    return TECHNIQUE_COLORS.get(technique, NEUTRAL)


def _step_band(x, low, high) -> tuple[list[float], list[float]]:
    """Return the outline of a band between two step functions (each value held until the next x), as a polygon."""
    x, low, high = (np.asarray(v, dtype=float) for v in (x, low, high))
    right = np.append(x[1:], x[-1:])  # each step ends where the next begins; the last one where it starts
    xs = np.column_stack([x, right]).ravel()
    upper, lower = np.repeat(high, 2), np.repeat(low, 2)
    return list(xs) + list(xs[::-1]), list(upper) + list(lower[::-1])


def _band(x, low, high, color: str, technique: str) -> go.Scatter:
    """Return a filled, hover-less band trace in the technique's colour."""
    xs, ys = _step_band(x, low, high)
    return go.Scatter(
        x=xs, y=ys, mode="lines", fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0),
        hoverinfo="skip", showlegend=False, legendgroup=technique,
    )


def comparison_forest_figure(comparison: pd.DataFrame) -> go.Figure:
    """Return a forest plot of adjusted differences in pain from the reference technique, with 95 % intervals.

    `comparison` is one or more tables of analytics.comparison (rows of its models may be concatenated); left of
    the zero line is less pain than the reference.
    """
    fig = go.Figure()
    rows = comparison.reset_index(drop=True)
    labels = [f"{_label(t)} ({m})" for t, m in zip(rows["technique"], rows["model"], strict=True)]
    for model, symbol in MODEL_SYMBOLS.items():
        for technique in _techniques(rows) if not rows.empty else []:
            mask = (rows["model"] == model) & (rows["technique"] == technique)
            part = rows[mask]
            if part.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=part["estimate"], y=[labels[i] for i in part.index], mode="markers",
                    name=f"{_label(technique)}, {model}", marker=dict(size=13, symbol=symbol, color=_color(technique)),
                    error_x=dict(
                        type="data", symmetric=False, array=part["ci95_high"] - part["estimate"],
                        arrayminus=part["estimate"] - part["ci95_low"], thickness=2, width=6,
                    ),
                    customdata=part[["ci95_low", "ci95_high", "p_value", "patients", "sessions"]].to_numpy(),
                    hovertemplate=(
                        "%{x:+.1f} points (95 % CI %{customdata[0]:.1f} to %{customdata[1]:.1f}), "
                        "p = %{customdata[2]:.3f}<br>%{customdata[3]} episodes, %{customdata[4]} sessions"
                        "<extra></extra>"
                    ),
                )
            )
    reference = _label(rows["reference"].iloc[0]) if not rows.empty else "reference"
    fig.add_vline(
        x=0, line_color="grey", line_width=1.5,
        annotation_text=f"{reference} (reference)", annotation_position="top",
    )
    fig.update_xaxes(title_text="Adjusted difference in pain, points of 0–100 (negative = less pain)", zeroline=False)
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, height=max(260, 120 + 60 * len(rows)), hovermode="closest")


def responder_curve_figure(curve: pd.DataFrame) -> go.Figure:
    """Return the cumulative responder curves: share of episodes with ≥ x % improvement, one line per technique."""
    fig = go.Figure()
    for threshold, name in ((MINIMAL_PCT, "minimal"), (MODERATE_PCT, "important"), (SUBSTANTIAL_PCT, "substantial")):
        fig.add_vline(
            x=threshold, line_dash="dot", line_color="grey", line_width=1,
            annotation_text=f"{name} ({threshold} %)", annotation_position="top right", annotation_font_size=12,
        )
    for technique in _techniques(curve) if not curve.empty else []:
        rows = curve[curve["technique"] == technique]
        color = _color(technique)
        fig.add_trace(_band(rows["threshold_pct"], 100 * rows["ci95_low"], 100 * rows["ci95_high"], color, technique))
        fig.add_trace(
            go.Scatter(
                x=rows["threshold_pct"], y=100 * rows["share"], mode="lines", line_shape="hv",
                name=f"{_label(technique)} ({counted(int(rows['patients'].iloc[0]), 'episode')})",
                legendgroup=technique,
                line=dict(color=color, width=3),
                customdata=rows[["responders", "patients"]].to_numpy(),
                hovertemplate=(
                    "≥ %{x} %: %{y:.0f} % of episodes (%{customdata[0]} of %{customdata[1]})<extra>"
                    + _label(technique) + "</extra>"
                ),
            )
        )
    fig.update_xaxes(title_text="Improvement at the last session, at least (%)", range=[0, 100], dtick=10)
    fig.update_yaxes(title_text="Episodes reaching it (%)", range=[0, 102])
    return _layout(fig, height=440)


def kaplan_meier_figure(curves: pd.DataFrame, medians: pd.DataFrame | None = None) -> go.Figure:
    """Return Kaplan–Meier step curves of the share responded (≥ 30 %) by session number, with 95 % bands.

    `curves` comes from analytics.survival.kaplan_meier, `medians` (optional) from median_sessions: the median
    is named in the legend. The 2–4 session window of the technique's claim is shaded; points with fewer than
    10 episodes at risk are hollow.
    """
    fig = go.Figure()
    fig.add_vrect(
        x0=CLAIM_SESSIONS[0] - 0.5, x1=CLAIM_SESSIONS[1] + 0.5, fillcolor="rgba(0,0,0,0.05)", line_width=0,
        layer="below", annotation_text="sessions 2–4", annotation_position="top left", annotation_font_size=12,
    )
    fig.add_hline(y=50, line_dash="dot", line_color="grey", line_width=1)
    median_of = {} if medians is None else dict(zip(medians["technique"], medians["median_sessions"], strict=True))
    for technique in _techniques(curves) if not curves.empty else []:
        rows = curves[curves["technique"] == technique]
        color = _color(technique)
        median = median_of.get(technique)
        name = _label(technique)
        if medians is not None:
            name += f" (median {median} sessions)" if median is not None else " (median not reached)"
        # The band of S(k) turned into the share responded, 1 − S(k): its limits swap.
        band = rows.dropna(subset=["ci95_low", "ci95_high"])  # undefined where S = 0
        if not band.empty:
            fig.add_trace(
                _band(band["session_number"], 100 * (1 - band["ci95_high"]), 100 * (1 - band["ci95_low"]), color,
                      technique)
            )
        fig.add_trace(
            go.Scatter(
                x=rows["session_number"], y=100 * rows["responded_share"], mode="lines+markers", name=name,
                legendgroup=technique,
                line=dict(color=color, width=3, shape="hv"),
                marker=dict(size=8, symbol=["circle-open" if n < SMALL_GROUP else "circle" for n in rows["at_risk"]]),
                customdata=rows[["at_risk", "responses", "censored"]].to_numpy(),
                hovertemplate=(
                    "Session %{x}: %{y:.0f} % responded<br>%{customdata[0]} at risk, %{customdata[1]} responded, "
                    "%{customdata[2]} stopped before responding<extra>" + _label(technique) + "</extra>"
                ),
            )
        )
    fig.update_xaxes(title_text="Session number", dtick=1)
    fig.update_yaxes(title_text="Reached ≥ 30 % improvement (%)", range=[0, 102])
    return _layout(fig, height=460)


def clinician_caterpillar_figure(benchmark: pd.DataFrame) -> go.Figure:
    """Return a caterpillar plot: each clinician's adjusted mean improvement with its 95 % interval, sorted.

    Intervals that exclude the clinic mean are highlighted, caseloads under 10 drawn hollow; the hover shows the
    caseload.
    """
    fig = go.Figure()
    rows = benchmark.sort_values("estimate").reset_index(drop=True)
    colors = [HIGHLIGHT if outside else NEUTRAL for outside in rows["outside_clinic_mean"]]
    symbols = ["circle-open" if n < SMALL_GROUP else "circle" for n in rows["patients"]]
    fig.add_trace(
        go.Scatter(
            x=rows["estimate"], y=rows["clinician"], mode="markers", name="Clinician",
            marker=dict(size=12, color=colors, symbol=symbols, line=dict(width=2, color=colors)),
            error_x=dict(
                type="data", symmetric=False, array=rows["ci95_high"] - rows["estimate"],
                arrayminus=rows["estimate"] - rows["ci95_low"], color=NEUTRAL, thickness=2, width=5,
            ),
            customdata=rows[["patients", "ci95_low", "ci95_high"]].to_numpy(),
            hovertemplate=(
                "%{y}: %{x:.1f} points (95 % CI %{customdata[1]:.1f} to %{customdata[2]:.1f}), "
                "%{customdata[0]} episodes<extra></extra>"
            ),
            showlegend=False,
        )
    )
    if not rows.empty:
        mean = float(rows["clinic_mean"].iloc[0])
        fig.add_vline(
            x=mean, line_dash="dash", line_color="grey", annotation_text="clinic mean", annotation_position="top"
        )
        low = min(rows["ci95_low"].min(), mean - MIN_HALF_SPAN)
        high = max(rows["ci95_high"].max(), mean + MIN_HALF_SPAN)
        pad = 0.05 * (high - low)
        fig.update_xaxes(range=[low - pad, high + pad])
        if (rows["ci95_high"] - rows["ci95_low"]).max() < 0.5:
            # A between-clinician variance estimated at 0 puts everyone on the clinic mean: say so, not "certain".
            fig.update_layout(
                title=dict(
                    text="No variation between clinicians beyond chance: all are estimated at the clinic mean",
                    font=dict(size=13), y=0.98,
                )
            )
    fig.update_xaxes(title_text="Adjusted mean improvement at the last session (points)")
    return _layout(fig, height=max(260, 100 + 40 * len(rows)), hovermode="closest")


def _funnel_limits(fig: go.Figure, mean: float, sd: float, counts: pd.Series) -> None:
    """Draw a funnel's clinic mean and its 95 % and 99.8 % control limits, mean ± z · sd / √n, over the counts."""
    mean, sd = float(mean), float(sd)
    n = np.linspace(max(1.0, 0.8 * counts.min()), 1.15 * counts.max(), 120)
    for z, dash, name in ((1.959964, "dash", "95 % limits"), (3.090232, "dot", "99.8 % limits")):
        for sign in (-1, 1):
            fig.add_trace(
                go.Scatter(
                    x=n, y=mean + sign * z * sd / np.sqrt(n), mode="lines", name=name, legendgroup=name,
                    showlegend=sign == 1, line=dict(color="grey", dash=dash, width=1.5), hoverinfo="skip",
                )
            )
    fig.add_hline(y=mean, line_color="grey", line_width=1, annotation_text="clinic mean")


def observed_expected_funnel_figure(table: pd.DataFrame, by: str) -> go.Figure:
    """Return the funnel plot of observed minus expected improvement (%) per clinician or technique (`by`) against
    its episodes (analytics.on_track.observed_minus_expected), with 95 % and 99.8 % control limits."""
    fig = go.Figure()
    if table.empty:
        return _layout(fig, height=420, hovermode="closest")
    _funnel_limits(fig, table["clinic_mean"].iloc[0], table["sd"].iloc[0], table["episodes"])
    labels = [_label(value) for value in table[by]] if by == "technique" else list(table[by])
    fig.add_trace(
        go.Scatter(
            x=table["episodes"], y=table["difference"], mode="markers+text", text=labels,
            textposition="top center", name="Clinicians" if by == "clinician" else "Techniques",
            marker=dict(size=12, color=[HIGHLIGHT if outside else NEUTRAL for outside in table["outside95"]]),
            hovertemplate="%{text}: %{y:+.1f} % against expected, %{x} episodes<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="Episodes of care")
    fig.update_yaxes(title_text="Observed minus expected improvement (%)")
    return _layout(fig, height=440, hovermode="closest")


def clinician_funnel_figure(funnel: pd.DataFrame) -> go.Figure:
    """Return a funnel plot: adjusted mean improvement against caseload, with 95 % and 99.8 % control limits."""
    fig = go.Figure()
    if funnel.empty:
        return _layout(fig, height=420, hovermode="closest")
    _funnel_limits(fig, funnel["clinic_mean"].iloc[0], funnel["sd"].iloc[0], funnel["patients"])
    colors = [HIGHLIGHT if outside else NEUTRAL for outside in funnel["outside95"]]
    fig.add_trace(
        go.Scatter(
            x=funnel["patients"], y=funnel["adjusted_mean"], mode="markers+text", text=funnel["clinician"],
            textposition="top center", name="Clinicians", marker=dict(size=12, color=colors),
            hovertemplate="%{text}: %{y:.1f} points, %{x} episodes<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="Episodes of care (caseload)")
    fig.update_yaxes(title_text="Adjusted mean improvement (points)")
    return _layout(fig, height=440, hovermode="closest")


def safety_comparison_figure(comparison: pd.DataFrame) -> go.Figure:
    """Return mild side effects per 100 sessions by type for each technique and all (bars with exact Poisson error
    bars) beside the published events per 100 treatments (open markers).

    `comparison` comes from analytics.safety.safety_vs_published.
    """
    fig = go.Figure()
    is_published = comparison["published"].astype(bool)
    clinic, published = comparison[~is_published], comparison[is_published]
    order = comparison.groupby("code")["per_100"].max().sort_values().index.tolist()
    names = [("Any mild side effect" if c == "any" else SIDE_EFFECTS.get(c, c)) for c in order]
    for technique in _techniques(clinic.rename(columns={"source": "technique"})) if not clinic.empty else []:
        rows = clinic[clinic["source"] == technique].set_index("code").reindex(order)
        fig.add_trace(
            go.Bar(
                y=names, x=rows["per_100"], orientation="h", name=_label(technique),
                marker_color=_color(technique),
                error_x=dict(
                    type="data", symmetric=False, array=rows["ci95_high"] - rows["per_100"],
                    arrayminus=rows["per_100"] - rows["ci95_low"], thickness=1.2,
                ),
                customdata=rows[["ci95_low", "ci95_high"]].to_numpy(),
                hovertemplate=("%{x:.2f} events per 100 sessions (95 % CI %{customdata[0]:.2f} to "
                               "%{customdata[1]:.2f})<extra>" + _label(technique) + "</extra>"),
            )
        )
    for symbol, (source, rows) in zip(PUBLISHED_SYMBOLS, published.groupby("source", sort=False), strict=False):
        rows = rows.set_index("code").reindex(order)
        fig.add_trace(
            go.Scatter(
                y=names, x=rows["per_100"], mode="markers", name=source.split(",")[0] + " (published)",
                marker=dict(symbol=symbol, size=12, color="black", line=dict(width=2)),
                hovertemplate="%{x:.2f} events per 100 treatments<extra>" + source + "</extra>",
            )
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="Mild side effects: events per 100 sessions (published: per 100 treatments)")
    return _layout(fig, height=max(320, 80 + 70 * len(order)), hovermode="closest")


def serious_comparison_figure(comparison: pd.DataFrame) -> go.Figure:
    """Return significant-or-serious side effects per 100 sessions per technique and all, with exact Poisson
    intervals, beside Boyce's rate (with its interval) and Brady's upper bound (a bar from 0: no event was seen).

    `comparison` comes from analytics.safety.serious_vs_published.
    """
    fig = go.Figure()
    if comparison.empty:
        return _layout(fig, height=300, hovermode="closest")
    rows = comparison[comparison["severity"] == "significant or serious"].reset_index(drop=True)
    published = rows["source"].isin([BRADY_2014, BOYCE_2020])
    labels = [(s.split(",")[0] + " (published)") if p else _label(s)
              for s, p in zip(rows["source"], published, strict=True)]
    clinic = rows[~published & ~rows["bound"].astype(bool)]
    fig.add_trace(
        go.Scatter(
            x=clinic["per_100"], y=[labels[i] for i in clinic.index], mode="markers", name="This clinic",
            marker=dict(size=12, color=[_color(t) for t in clinic["source"]]),
            error_x=dict(type="data", symmetric=False, array=clinic["ci95_high"] - clinic["per_100"],
                         arrayminus=clinic["per_100"] - clinic["ci95_low"], thickness=2, width=6),
            customdata=clinic[["events", "sessions", "ci95_low", "ci95_high"]].to_numpy(),
            hovertemplate=("%{x:.3f} per 100 sessions (95 % CI %{customdata[2]:.3f} to %{customdata[3]:.3f}): "
                           "%{customdata[0]} in %{customdata[1]} sessions<extra></extra>"),
        )
    )
    rate = rows[published & ~rows["bound"].astype(bool)]
    fig.add_trace(
        go.Scatter(
            x=rate["per_100"], y=[labels[i] for i in rate.index], mode="markers", name="Published rate",
            marker=dict(size=12, symbol="diamond-open", color="black", line=dict(width=2)),
            error_x=dict(type="data", symmetric=False, array=rate["ci95_high"] - rate["per_100"],
                         arrayminus=rate["per_100"] - rate["ci95_low"], thickness=2, width=6, color="black"),
            customdata=rate[["events", "sessions"]].to_numpy(),
            hovertemplate="%{x:.3f} per 100 treatments: %{customdata[0]} in %{customdata[1]}<extra></extra>",
        )
    )
    bound = rows[rows["bound"].astype(bool)]
    fig.add_trace(
        go.Bar(
            x=bound["per_100"], y=[labels[i] for i in bound.index], orientation="h", name="Published upper bound",
            marker=dict(color="rgba(0,0,0,0.12)", line=dict(color="black", width=1.5)), width=0.35,
            customdata=bound[["sessions"]].to_numpy(),
            hovertemplate=("none seen in %{customdata[0]} treatments: at most %{x:.3f} per 100 "
                           "(one-sided 95 % bound)<extra></extra>"),
        )
    )
    fig.update_xaxes(title_text="Significant or serious side effects per 100 sessions (published: treatments)",
                     rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, height=max(280, 110 + 50 * len(rows)), hovermode="closest")
