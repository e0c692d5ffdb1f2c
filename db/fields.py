"""A session's fields: the columns an entry fills, and a session's values as the audit trail records them."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from clinic import side_effects
from db.models import TreatmentSession
from db.validation import SessionInput

# The one list: the session columns an entry gives under the same name, in the table's order. The rest of a session
# is its episode, number and clinician (an entry names them by patient, condition and username) and bookkeeping.
SESSION_FIELDS = tuple(name for name in TreatmentSession.model_fields if name in SessionInput.model_fields)
AUDITED_FIELDS = (*SESSION_FIELDS, "side_effects")  # what a correction compares, before and after


def session_values(entry: SessionInput) -> dict:
    """Return the stored column values of a validated session (everything but its episode and clinician)."""
    values = {name: getattr(entry, name) for name in SESSION_FIELDS}
    values["muscles"] = ";".join(entry.muscles)
    return values


def stored_columns(columns: Mapping[str, list]) -> dict[str, list]:
    """Return `session_values` of many validated sessions at once, given and returned column by column."""
    stored = {name: columns[name] for name in SESSION_FIELDS}
    stored["muscles"] = [";".join(muscles) for muscles in columns["muscles"]]
    return stored


def audited(values: Mapping, effects: Iterable[side_effects.Pair], fields: Iterable[str] = SESSION_FIELDS) -> dict:
    """Return a session's values of these fields (those it has) and its side effects as `code:severity;…`."""
    return {name: values[name] for name in fields if name in values} | {"side_effects": side_effects.format(effects)}


def keep_absent(values: dict[str, list], absent: Collection[str], matched: list[dict | None]) -> None:
    """Give each row matching a stored session that session's values of the STRICTA columns the file does not have
    (docs/DESIGN.md section 5): a file from before them leaves the needling record as it is. A kept twitch count that
    the file's twitch response contradicts is dropped, the file's response being the newer word."""
    if not absent or not any(current is not None for current in matched):
        return
    for name in absent:
        values[name] = [value if current is None else current[name]
                        for value, current in zip(values[name], matched, strict=True)]
    if "twitch_count" in absent:
        values["twitch_count"] = [None if count is not None and response is not None and (count > 0) != response
                                  else count
                                  for count, response in zip(values["twitch_count"], values["twitch_response"],
                                                             strict=True)]
