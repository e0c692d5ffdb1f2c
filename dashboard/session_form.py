"""The session form's fields, shared by Record session (a new session) and Patient progress (a correction).

Each field's label, choices and wording live here once. The correction form is the compact one: its technique
and scale are select boxes, and its fields start from the stored session (`value`) instead of the page's keyed
state (`key`), so they take either keyword and pass it on to the widget.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from clinic.side_effects import Pair
from clinic.vocabulary import (
    ADJUNCT_LABELS,
    ADJUNCTS,
    ESTIM_ITEMS,
    ESTIM_TECHNIQUE,
    MANIPULATION_LABELS,
    NO_ADJUNCT,
    PAIN_SCALE_LABELS,
    RANGES,
    SEVERITIES,
    SIDE_EFFECTS,
    SIDE_LABELS,
    STRICTA_LABELS,
    TECHNIQUE_LABELS,
)

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
    """Draw one pain score (whole steps; the scale chosen says its range) as it was entered, 30 as "30" and 45.5 mm
    as "45.5", not "30.00"; None when left empty."""
    return container.number_input(label, step=1.0, format="%g", **where)


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


TWITCH = {"Yes": True, "No": False, "Not recorded": None}  # the local twitch response's choices, as shown


def twitch_response(container, *, key: str | None = None, value: bool | None = None) -> bool | None:
    """Draw whether a local twitch response was elicited (Yes, No, Not recorded); return True, False or None."""
    options = list(TWITCH)
    stored = None if value is None else bool(value)
    where = {"key": key} if key else {"index": next(i for i, label in enumerate(options) if TWITCH[label] is stored)}
    return TWITCH[container.radio("Local twitch response", options, horizontal=True, **where)]


def notes(container, **where) -> str:
    """Draw the session's free-text notes (seen by clinicians and admins, never in a report)."""
    return container.text_area("Notes", **where)


# The needling record (STRICTA, docs/DESIGN.md §5) --------------------------------------------------------------------
# Each field's label is the vocabulary's name, so a refusal ("Depth: 200 is outside 0–150 mm") names it as shown.
NEEDLING_ITEMS = ("insertions", "side", "depth_mm", "needle_diameter_mm", "needle_length_mm", "twitch_count",
                  "retention_s", "manipulation")
STEPS = {"depth_mm": 1.0, "needle_diameter_mm": 0.01, "needle_length_mm": 5.0, "estim_hz": 1.0,
         "estim_pulse_us": 10.0, "estim_ma": 0.5, "estim_minutes": 1.0}
FORMATS = {"depth_mm": "%.1f", "needle_diameter_mm": "%.2f", "needle_length_mm": "%.0f", "estim_hz": "%.1f",
           "estim_pulse_us": "%.0f", "estim_ma": "%.1f", "estim_minutes": "%.0f"}
ADJUNCT_CHOICES = {**ADJUNCT_LABELS, NO_ADJUNCT: "None"}
# Short enough for the four to sit beside the side on a laptop; the help says what pistoning is.
MANIPULATIONS = {code: label.removesuffix(" (in and out)").replace(" and ", " + ")
                 for code, label in MANIPULATION_LABELS.items()}
# One line under the group rather than a help icon per field: each icon is one more Tab on the way to Save.
GUIDE = ("Retention in seconds (600 = 10 min; 0 = in and out). Pistoning = in and out, rotation = turned. A second "
         "click on a chosen side or manipulation clears it. Adjuncts: 'None' records that none was given; nothing "
         "selected means not recorded.")


def stricta_label(name: str) -> str:
    """Return a needling item's label with its unit: "Depth (mm)", "Retention (s, 0 = in and out)"."""
    label, unit = STRICTA_LABELS[name]
    if name == "retention_s":
        return f"{label} (s, 0 = in and out)"
    return f"{label} ({unit})" if unit and unit != "needle insertions" else label


def _number(container, name: str, where: dict):
    step = {"step": 1} if RANGES[name][2] else {"step": STEPS[name], "format": FORMATS[name]}  # whole numbers
    return container.number_input(stricta_label(name), placeholder="not recorded", **step, **where)


def _where(name: str, key: str | None, values: dict | None) -> dict:
    """Return a widget's keyword for its start: its key (`{key}name`) or its stored value."""
    return {"key": f"{key}{name}"} if key is not None else {"value": (values or {}).get(name)}


def needling(container, *, technique: str, key: str | None = None, values: dict | None = None) -> dict:
    """Draw the session's needling record: a "Needling" group, the "Electrical stimulation" group (electrical
    needling only) and the adjuncts; return each item's value by its interchange name (None: not recorded; the
    electrical items absent unless the technique is electrical).

    With `key`, each widget is keyed `{key}{name}` (the page sets their starting values); otherwise each starts
    from `values` (a stored session's).
    """
    record = {}
    box = container.container(border=True, key=f"{key or 'stored_'}needling_group")
    box.markdown("**Needling**")
    box.caption(GUIDE)
    first, second, third = box.columns(3)
    record["insertions"] = _number(first, "insertions", _where("insertions", key, values))
    record["depth_mm"] = _number(second, "depth_mm", _where("depth_mm", key, values))
    record["twitch_count"] = _number(third, "twitch_count", _where("twitch_count", key, values))
    first, second, third = box.columns(3)
    record["needle_diameter_mm"] = _number(first, "needle_diameter_mm", _where("needle_diameter_mm", key, values))
    record["needle_length_mm"] = _number(second, "needle_length_mm", _where("needle_length_mm", key, values))
    record["retention_s"] = _number(third, "retention_s", _where("retention_s", key, values))
    first, second = box.columns([3, 4])
    record["side"] = _segments(first, "side", SIDE_LABELS, key, values)
    record["manipulation"] = _segments(second, "manipulation", MANIPULATIONS, key, values)
    if technique == ESTIM_TECHNIQUE:
        box = container.container(border=True, key=f"{key or 'stored_'}electrical_group")
        box.markdown("**Electrical stimulation**")
        for column, name in zip(box.columns(len(ESTIM_ITEMS)), ESTIM_ITEMS, strict=True):
            record[name] = _number(column, name, _where(name, key, values))
    record["adjuncts"] = adjuncts(container, key=key, values=values)
    return record


def removed_stimulation(values: dict, technique: str) -> str | None:
    """Return the stored electrical stimulation (`values`, a stored session's record) that saving the session as
    `technique` removes, in words ("stimulation frequency 80 Hz, intensity 7 mA"), or None when it removes none:
    stimulation is recorded with electrical needling only, so any other technique drops it."""
    if technique == ESTIM_TECHNIQUE:
        return None
    removed = [f"{STRICTA_LABELS[name][0].lower()} {values[name]:g} {STRICTA_LABELS[name][1]}"
               for name in ESTIM_ITEMS if values.get(name) is not None]
    return ", ".join(removed) or None


def _segments(container, name: str, labels: dict[str, str], key: str | None, values: dict | None) -> str | None:
    """Draw a coded item as one-click segments (a second click clears it); return its code or None."""
    where = _where(name, key, values)
    if "value" in where:
        where = {"default": where["value"]}
    return container.segmented_control(stricta_label(name), list(labels), format_func=labels.get, **where)


def adjuncts(container, *, key: str | None = None, values: dict | None = None) -> list[str]:
    """Draw the adjuncts as pills, 'None' among them; return the codes chosen (none chosen: not recorded)."""
    if key is not None:
        where = {"key": f"{key}adjuncts"}
    else:
        stored = (values or {}).get("adjuncts")
        where = {"default": [code for code in (stored or "").split(";") if code in ADJUNCT_CHOICES]}
    return container.pills(stricta_label("adjuncts"), [*ADJUNCTS, NO_ADJUNCT], selection_mode="multi",
                           format_func=ADJUNCT_CHOICES.get, **where)
