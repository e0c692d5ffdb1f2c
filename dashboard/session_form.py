"""The session form's fields, shared by Record session (a new session) and Patient progress (a correction).

Each field's label, choices and wording live here once. The correction form is the compact one: its technique
and scale are select boxes, and its fields start from the stored session (`value`) instead of the page's keyed
state (`key`), so they take either keyword and pass it on to the widget.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from clinic.side_effects import Pair
from clinic.vocabulary import PAIN_SCALE_LABELS, SEVERITIES, SIDE_EFFECTS, TECHNIQUE_LABELS

SEVERITY_HELP = ("mild: short, reversible · significant: needs care or stops activities · "
                 "serious: hospital admission or lasting harm")


def _choose(container, label: str, labels: dict[str, str], *, compact: bool, key: str | None,
            value: str | None) -> str:
    """Draw a choice as a select box (compact) or horizontal radio buttons, on `value` or on keyed state."""
    options = list(labels)
    # An index only for a value: a keyed widget given one as well warns that it has two defaults.
    where = {"key": key} | ({} if value is None else {"index": options.index(value)})
    if compact:
        return container.selectbox(label, options, format_func=labels.get, **where)
    return container.radio(label, options, format_func=labels.get, horizontal=True, **where)


def session_date(container, *, key: str | None = None, value: date | None = None) -> date:
    """Draw the session's date (ISO, as the interchange file writes it)."""
    return container.date_input("Session date", format="YYYY-MM-DD",
                                **({"key": key} if key else {"value": value}))


def technique(container, *, compact: bool = False, key: str | None = None, value: str | None = None) -> str:
    """Draw the technique choice; return its code."""
    return _choose(container, "Technique", TECHNIQUE_LABELS, compact=compact, key=key, value=value)


def pain_scale(container, *, compact: bool = False, key: str | None = None, value: str | None = None) -> str:
    """Draw the pain scale choice; return its code."""
    return _choose(container, "Pain scale", PAIN_SCALE_LABELS, compact=compact, key=key, value=value)


def pain(container, label: str, **where) -> float | None:
    """Draw one pain score (whole steps; the scale chosen says its range); None when left empty."""
    return container.number_input(label, step=1.0, **where)


def pain_after(container, **where) -> float | None:
    """Draw the optional pain score right after the session."""
    return pain(container, "Pain right after (optional)", **where)


def side_effects(container, *, key: str | None = None, chosen: Iterable[Pair] = ()) -> list[Pair]:
    """Draw one multiselect per severity; return the side effects chosen as (code, severity) pairs.

    With `key`, each is keyed `{key}_{severity}` and the first explains the severities; otherwise each starts
    from the `chosen` pairs of its severity.
    """
    chosen = list(chosen)
    picked = {}
    for severity in SEVERITIES:
        if key:
            where = {"key": f"{key}_{severity}", "help": SEVERITY_HELP if severity == SEVERITIES[0] else None}
        else:
            where = {"default": [code for code, level in chosen if level == severity]}
        picked[severity] = container.multiselect(f"Side effects — {severity}", list(SIDE_EFFECTS),
                                                 format_func=SIDE_EFFECTS.get, **where)
    return [(code, severity) for severity, codes in picked.items() for code in codes]


def notes(container, **where) -> str:
    """Draw the session's free-text notes (seen by clinicians and admins, never in a report)."""
    return container.text_area("Notes", **where)
