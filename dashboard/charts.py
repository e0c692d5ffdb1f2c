"""Pure plotly builders: tidy DataFrame in, Figure out. No Streamlit, no SQL."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from clinic.vocabulary import MINIMAL_PCT, MODERATE_PCT, SIDE_EFFECTS, SUBSTANTIAL_PCT, TECHNIQUE_LABELS, TECHNIQUES

# Okabe–Ito palette: distinguishable with every common colour-vision deficiency; one colour per technique everywhere.
# Only its hues with at least 3:1 contrast on white (WCAG 1.4.11 for lines and markers): orange #E69F00 (2.25:1)
# and sky blue #56B4E9 (2.31:1) are not used.
TECHNIQUE_COLORS = {"superficial": "#D55E00", "deep": "#0072B2", "electrical": "#009E73"}
BEFORE_COLOR, AFTER_COLOR = "#0072B2", "#AA4499"
IMPROVEMENT_COLOR = "#44546A"  # a patient's own bars: a neutral slate, never mistaken for a technique
BANDS = [  # (from %, to %, label, fill) for the IMMPACT bands: shades of grey, so no band shares a technique's hue
    (MINIMAL_PCT, MODERATE_PCT, "minimal", "rgba(0,0,0,0.03)"),
    (MODERATE_PCT, SUBSTANTIAL_PCT, "important", "rgba(0,0,0,0.06)"),
    (SUBSTANTIAL_PCT, 100, "substantial", "rgba(0,0,0,0.10)"),
]
BAND_LABEL_MARGIN = 86  # px right of the plot for the band labels, so they never sit on a bar or a line
CONFIG = {"displayModeBar": False}  # plotly's toolbar covered chart titles on touch screens; drag zooms anyway
FONT = dict(size=14)


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _layout(fig: go.Figure, height: int, hovermode: str = "x unified") -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=max(10, fig.layout.margin.r or 0), t=40, b=10),  # keeps room made for band labels
        font=FONT,
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        hovermode=hovermode,
    )
    return fig


def _add_bands(fig: go.Figure, row: int | None = None, col: int | None = None) -> None:
    """Shade the IMMPACT bands behind a chart (or one subplot), each with a dotted line and, right of the plot, a
    label at its floor.

    Built as layout shapes in one update: plotly's add_hrect/add_hline validate the whole figure on every call,
    which cost more than the rest of the technique page once its figures were cached.
    """
    x, y = "x", "y"
    if row is not None:
        subplot = fig.get_subplot(row, col)
        x, y = subplot.xaxis.plotly_name.replace("axis", ""), subplot.yaxis.plotly_name.replace("axis", "")
    across = dict(xref=f"{x} domain", x0=0, x1=1, yref=y)
    shapes, labels = [], []
    for low, high, label, fill in BANDS:
        shapes.append(dict(type="rect", y0=low, y1=high, fillcolor=fill, line_width=0, layer="below", **across))
        shapes.append(dict(type="line", y0=low, y1=low, line=dict(dash="dot", color="grey", width=1), **across))
        labels.append(dict(text=label, xref=f"{x} domain", x=1, xanchor="left", yref=y, y=low,
                           yanchor="bottom", showarrow=False, font=dict(size=12), align="left"))
    fig.update_layout(shapes=[*fig.layout.shapes, *shapes], annotations=[*fig.layout.annotations, *labels],
                      margin_r=BAND_LABEL_MARGIN)


EXPECTED_COLOR = "#882255"  # the expected-recovery band: Okabe–Ito's wine, no technique's hue


def _expected_band(fig: go.Figure, band: pd.DataFrame, simple: bool) -> None:
    """Draw an episode's expected-recovery band (rows of analytics.expected_recovery.expected_bands with a band
    shown) in the improvement subplot, behind the patient's bars: the 10th–90th and 25th–75th percentiles shaded and
    the median dashed; `simple` (for the patient) draws the 25th–75th only."""
    band = band.sort_values("session_number")
    x = list(band["session_number"])
    if len(band) == 1:  # one session's band (before any follow-up): as wide as a bar, so that it shows
        band, x = pd.concat([band, band]), [x[0] - 0.4, x[0] + 0.4]
    edges = [("q25", "q75", 0.22, "Half of earlier patients like this", "50 % band")]
    if not simple:
        edges.insert(0, ("q10", "q90", 0.10, "8 in 10 of earlier patients like this", "80 % band"))
    for low, high, alpha, name, short in edges:
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1], y=list(band[high]) + list(band[low][::-1]), fill="toself", name=name, mode="lines",
                fillcolor=_rgba(EXPECTED_COLOR, alpha), line=dict(width=0), hoverinfo="skip",
                legendgroup=short,
            ),
            row=2, col=1,
        )
    if not simple:
        fig.add_trace(
            go.Scatter(
                x=x, y=band["q50"], name="Expected (median)", mode="lines",
                line=dict(color=EXPECTED_COLOR, dash="dash"),
                customdata=band[["q25", "q75", "q10", "q90"]].to_numpy(),
                hovertemplate="Expected: %{y:.0f} % (50 % band %{customdata[0]:.0f} to %{customdata[1]:.0f}, 80 % "
                              "band %{customdata[2]:.0f} to %{customdata[3]:.0f})<extra></extra>",
            ),
            row=2, col=1,
        )


def patient_progress_figure(improvement: pd.DataFrame, band: pd.DataFrame | None = None, *,
                            simple: bool = False) -> go.Figure:
    """Return the patient chart: pain before/after each session (0–100) above cumulative improvement in %.

    `improvement` is one episode's rows from analytics.outcomes.cumulative_improvement. With `band` (its rows of
    analytics.expected_recovery.expected_bands where a band is shown), the expected-recovery band is drawn behind
    the improvement; `simple` draws the patient's version (the middle half only).
    """
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12, row_heights=[0.5, 0.5],
        subplot_titles=("Pain (0–100)", "Improvement since the first session (%)"),
    )
    x = improvement["session_number"]
    dates = improvement["session_date"].astype(str)
    fig.add_trace(
        go.Scatter(
            x=x, y=improvement["pain_before_points"], name="Pain before session", mode="lines+markers",
            line=dict(color=BEFORE_COLOR, width=3), marker=dict(size=10), customdata=dates,
            hovertemplate="Session %{x} (%{customdata})<br>Pain before: %{y:.0f} / 100<extra></extra>",
        ),
        row=1, col=1,
    )
    if "pain_after_points" in improvement and improvement["pain_after_points"].notna().any():
        fig.add_trace(
            go.Scatter(
                x=x, y=improvement["pain_after_points"], name="Pain right after", mode="markers",
                marker=dict(size=10, symbol="diamond-open", color=AFTER_COLOR, line=dict(width=2)),
                hovertemplate="Pain after: %{y:.0f} / 100<extra></extra>",
            ),
            row=1, col=1,
        )
    if improvement["improvement_pct"].notna().any():
        _add_bands(fig, row=2, col=1)
        if band is not None and not band.empty:
            _expected_band(fig, band, simple)
        fig.add_trace(
            go.Bar(
                x=x, y=improvement["improvement_pct"], name="Improvement", marker_color=IMPROVEMENT_COLOR,
                width=None if band is None or band.empty else 0.4,  # narrow over a band, which shows either side
                customdata=improvement["improvement_points"],
                hovertemplate="Improvement: %{y:.0f} % (%{customdata:.0f} points)<extra></extra>",
            ),
            row=2, col=1,
        )
    fig.update_yaxes(range=[0, 105], title_text="points", row=1, col=1)
    low = min(0.0, float(improvement["improvement_pct"].min(skipna=True) or 0.0))
    if band is not None and not band.empty:
        low = min(low, float(band["q25" if simple else "q10"].min()))
    fig.update_yaxes(range=[min(low, 0) - 5, 105], title_text="%", row=2, col=1)
    fig.update_xaxes(title_text="Session", dtick=1, row=2, col=1)
    # Legend under the chart: above it, it collides with the subplot titles on a phone-width screen.
    return _layout(fig, height=600).update_layout(
        legend=dict(orientation="h", yanchor="top", y=-0.14, x=0), margin=dict(b=40)
    )


def technique_curve_figure(curve: pd.DataFrame) -> go.Figure:
    """Return mean cumulative improvement (%) by session number per technique, with 95 % interval ribbons.

    Points with fewer than 10 episodes are drawn hollow; the hover shows the number of episodes of care.
    """
    fig = go.Figure()
    _add_bands(fig)
    for technique in TECHNIQUES:
        rows = curve[curve["technique"] == technique]
        if rows.empty:
            continue
        color = TECHNIQUE_COLORS[technique]
        ribbon = rows.dropna(subset=["ci95_low_pct", "ci95_high_pct"])
        fig.add_trace(
            go.Scatter(
                x=list(ribbon["session_number"]) + list(ribbon["session_number"][::-1]),
                y=list(ribbon["ci95_high_pct"]) + list(ribbon["ci95_low_pct"][::-1]),
                fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0), hoverinfo="skip",
                showlegend=False, legendgroup=technique,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=rows["session_number"], y=rows["mean_improvement_pct"], name=TECHNIQUE_LABELS[technique],
                mode="lines+markers", legendgroup=technique, line=dict(color=color, width=3),
                marker=dict(size=9, symbol=["circle-open" if s else "circle" for s in rows["small"]]),
                customdata=rows[["patients", "ci95_low_pct", "ci95_high_pct"]].to_numpy(),
                hovertemplate=(
                    "%{y:.1f} % (95 % CI %{customdata[1]:.1f} to %{customdata[2]:.1f}), "
                    "%{customdata[0]} episodes<extra>" + TECHNIQUE_LABELS[technique] + "</extra>"
                ),
            )
        )
    fig.update_xaxes(title_text="Session number", dtick=1)
    # Improvement cannot exceed 100 %; a one- or two-episode interval would stretch the axis far past it (to 160 %)
    # and flatten every curve, so the axis stops at 100 and such ribbons are cut at its edge.
    lowest = float(curve["mean_improvement_pct"].min()) if not curve.empty else 0.0
    fig.update_yaxes(title_text="Mean improvement since session 1 (%)", range=[min(-10.0, lowest - 5), 100])
    return _layout(fig, height=480)


def responder_figure(responders: pd.DataFrame) -> go.Figure:
    """Return the share of responders per technique and threshold, with 95 % Wilson intervals as error bars."""
    fig = go.Figure()
    for technique in TECHNIQUES:
        rows = responders[responders["technique"] == technique]
        if rows.empty:
            continue
        fig.add_trace(
            go.Bar(
                x=[f"≥ {t} %" for t in rows["threshold_pct"]], y=100 * rows["share"],
                name=TECHNIQUE_LABELS[technique], marker_color=TECHNIQUE_COLORS[technique],
                error_y=dict(
                    type="data", symmetric=False,
                    array=100 * (rows["ci95_high"] - rows["share"]),
                    arrayminus=100 * (rows["share"] - rows["ci95_low"]),
                ),
                customdata=rows[["responders", "patients"]].to_numpy(),
                hovertemplate="%{y:.0f} % (%{customdata[0]} of %{customdata[1]} episodes)<extra></extra>",
            )
        )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="Episodes reaching the improvement (%)", range=[0, 100])
    fig.update_xaxes(title_text="Improvement at the last session")
    return _layout(fig, height=380, hovermode="closest")


def side_effect_figure(rates: pd.DataFrame) -> go.Figure:
    """Return side effects per 100 sessions by type (horizontal bars), one colour per technique."""
    fig = go.Figure()
    order = (
        rates[rates["code"] != "any"].groupby("code")["per_100_sessions"].max().sort_values().index.tolist()
    )
    for technique in TECHNIQUES:
        rows = rates[(rates["technique"] == technique) & (rates["code"] != "any")].set_index("code").reindex(order)
        fig.add_trace(
            go.Bar(
                y=[SIDE_EFFECTS.get(code, code) for code in order], x=rows["per_100_sessions"].fillna(0),
                orientation="h", name=TECHNIQUE_LABELS[technique], marker_color=TECHNIQUE_COLORS[technique],
                hovertemplate="%{x:.1f} per 100 sessions<extra>" + TECHNIQUE_LABELS[technique] + "</extra>",
            )
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="Side effects per 100 sessions")
    return _layout(fig, height=max(300, 60 + 45 * len(order)), hovermode="closest")
