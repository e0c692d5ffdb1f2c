"""The adjusted comparison of techniques in words: the mixed model's differences, and how many comparisons a table
shows with their Holm-adjusted p-values (the tables are `analytics.comparison`'s)."""

from __future__ import annotations

import pandas as pd

from analytics.comparison import ANCOVA


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
    what = "at their last session" if model == ANCOVA else "over their follow-up sessions"
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


def multiple_comparison_sentence(table: pd.DataFrame) -> str:
    """Return a plain sentence on how many comparisons a table shows and their Holm-adjusted p-values ("" if none)."""
    if table.empty:
        return ""
    reference = table["reference"].iloc[0]
    if len(table) == 1:
        return (f"One comparison is shown ({table['technique'].iloc[0]} against {reference}), so its p-value needs "
                "no adjustment for multiple comparisons.")
    techniques = table["technique"].tolist()
    named = ", ".join(techniques[:-1]) + f" and {techniques[-1]}"
    adjusted = "; ".join(f"{row.technique} {_p_text(row.p_holm)}" for row in table.itertuples())
    return (
        f"{len(table)} comparisons are shown ({named}, each against {reference}): the more comparisons, the likelier "
        f"one of them looks like a difference by chance alone. Holm-adjusted p-values allow for this, keeping the "
        f"chance of any false difference among the {len(table)} at 5 %: {adjusted}. The other models fitted to the "
        "same data answer the same questions another way; they are not further comparisons."
    )
