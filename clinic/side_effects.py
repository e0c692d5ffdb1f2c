"""The one reader and writer of the side-effect text `code:severity;code:severity` (docs/DESIGN.md §5).

The text exists only at the edges: interchange files, the audit trail's before/after values and the session
form's summary. Inside the project side effects are (code, severity) pairs, or tidy rows of a frame.
"""

from __future__ import annotations

from collections.abc import Iterable

from clinic.vocabulary import SIDE_EFFECTS

Pair = tuple[str, str]


def parse(text: str | None) -> list[Pair]:
    """Return `code:severity;…` as (code, severity) pairs; raise ValueError naming an item without a colon."""
    pairs = []
    for item in filter(None, (part.strip() for part in (text or "").split(";"))):
        code, sep, severity = item.partition(":")
        if not sep:
            raise ValueError(f"'{item}' is not code:severity")
        pairs.append((code.strip(), severity.strip()))
    return pairs


def format(pairs: Iterable[Pair]) -> str:  # noqa: A001 - the module's name says what is formatted
    """Return (code, severity) pairs as the text `code:severity;…`."""
    return ";".join(f"{code}:{severity}" for code, severity in pairs)


def describe(pairs: Iterable[Pair], *, none: str = "none") -> str:
    """Return pairs in words, for people: 'bruising (mild), headache (significant)', or `none`."""
    words = [f"{SIDE_EFFECTS.get(code, code).lower()} ({severity})" for code, severity in pairs]
    return ", ".join(words) or none
