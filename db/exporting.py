"""Export every live session as interchange rows, which import back to the same data (docs/DESIGN.md section 5)."""

from __future__ import annotations

import pandas as pd
from sqlmodel import Session

from clinic import side_effects
from db import audit, episodes, queries, stricta_queries
from db.access import Actor
from db.interchange import EXPORT_COLUMNS, NUMBER_COLUMNS, STRICTA_COLUMNS, YES_NO_TEXT, number_text


def export_table(session: Session, *, actor: Actor, purpose: str = "") -> pd.DataFrame:
    """Return every live session as interchange rows (text cells), in patient, date and entry order; audited.

    `purpose` names the file format in the audit row (e.g. "FHIR bundle").
    """
    frame = queries.all_sessions(session, actor=actor)
    needling = stricta_queries.needling_record(session, actor=actor).set_index("session_id")
    effects = queries.all_side_effects(session, actor=actor)
    courses = episodes.all_episodes(session, actor=actor)
    numbers = dict(zip(courses["id"], courses["number"], strict=True))
    audit.record(session, actor, "export", "file", detail=f"{purpose + ': ' if purpose else ''}{len(frame)} sessions")
    pairs: dict[int, list[side_effects.Pair]] = {}
    for session_id, code, severity in zip(effects["session_id"], effects["code"], effects["severity"], strict=True):
        pairs.setdefault(session_id, []).append((code, severity))
    out = pd.DataFrame(
        {
            "patient_id": frame["patient_id"],
            "session_date": frame["session_date"].map(lambda d: d.isoformat()),
            "technique": frame["technique"],
            "pain_scale": frame["pain_scale"],
            "pain_before": frame["pain_before"].map(number_text),
            "pain_after": frame["pain_after"].map(number_text),
            "side_effects": [side_effects.format(pairs.get(session_id, ())) for session_id in frame["session_id"]],
            "condition": frame["condition"].fillna(""),
            "clinician": frame["clinician"].fillna(""),
            "twitch_response": frame["twitch_response"].map(YES_NO_TEXT).fillna(""),
            "notes": frame["notes"],
            "body_region": frame["body_region"].fillna(""),
            "muscles": frame["muscles"],
            "episode": frame["episode_id"].map(numbers),
            **{name: _needling_cells(name, frame["session_id"].map(needling[name])) for name in STRICTA_COLUMNS},
        },
        columns=EXPORT_COLUMNS,
    )
    return out.astype(str)


def _needling_cells(name: str, values: pd.Series) -> pd.Series:
    """Return a STRICTA column's values as its cells: numbers as `number_text` writes them, '' when not recorded."""
    if name in NUMBER_COLUMNS:
        return values.map(number_text)
    return values.astype(object).where(values.notna(), "")
