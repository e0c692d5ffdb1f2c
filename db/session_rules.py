"""The rules between a session's fields, as functions: SessionInput's model validator (db/validation.py) and the
import's fast path (db/file_validation.py) share them, so each rule is defined once."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from clinic.vocabulary import ESTIM_ITEMS, ESTIM_TECHNIQUE, PAIN_SCALES


def rule_problems(values: dict, skipping: Collection[str] = ()) -> list[str]:
    """Return why these values break a rule between fields (each as `name: reason`), checking only the rules that
    read no field named in `skipping`."""
    skipped = set(skipping)

    def rule(check, *fields: str, name: str | None = None) -> str | None:
        """Return `check` of these fields' values (after `name`, for a check that names its field), unless skipped."""
        if not skipped.isdisjoint(fields):
            return None
        return check(*([name] if name else []), *(values[field] for field in fields))

    problems = (
        rule(pain_problem, "pain_before", "pain_scale", name="pain_before"),
        rule(pain_problem, "pain_after", "pain_scale", name="pain_after"),
        rule(date_problem, "session_date", "today"),
        *(rule(estim_problem, item, "technique", name=item) for item in ESTIM_ITEMS),
        rule(twitch_problem, "twitch_count", "twitch_response"),
    )
    return [problem for problem in problems if problem]


def pain_problem(name: str, value: float | None, scale: str) -> str | None:
    """Return why a pain score does not fit its scale (as `name: reason`), or None when it fits or is absent."""
    if value is None:
        return None
    maximum = PAIN_SCALES.get(scale, 100)
    if not 0 <= value <= maximum:
        label = "0–10 (NRS)" if scale == "nrs_10" else "0–100 (VAS, mm)"
        return f"{name}: {value:g} is outside the scale {label}"
    if scale == "nrs_10" and value != int(value):
        return f"{name}: {value:g} is not a whole number; the NRS has whole numbers 0–10"
    return None


def estim_problem(name: str, value: float | None, technique: str) -> str | None:
    """Return why an electrical-stimulation value is refused on this technique (as `name: reason`), or None."""
    if value is not None and technique != ESTIM_TECHNIQUE:
        return f"{name}: only with technique {ESTIM_TECHNIQUE} (this session is {technique})"
    return None


def twitch_problem(count: int | None, response: bool | None) -> str | None:
    """Return why a twitch count contradicts the twitch response (as `twitch_count: reason`), or None."""
    if count is None or response is None or (count > 0) == response:
        return None
    said = "no" if count > 0 else "yes"
    return f"twitch_count: {count} contradicts twitch response '{said}' (a count above 0 means yes, 0 means no)"


def date_problem(session_date: date, today: date | None) -> str | None:
    """Return why a session date is refused (as `session_date: reason`), or None."""
    if session_date > (today or date.today()):
        return f"session_date: {session_date.isoformat()} is in the future"
    return None
