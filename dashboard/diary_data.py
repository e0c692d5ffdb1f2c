"""Every read and write of what patients report (issue #17): the diary, PGIC, PSFS, their alerts and aggregates.

Part of the page-data layer beside dashboard.resources and dashboard.actions (tests/app/test_page_data.py): the
pages My diary and Patient-reported, the diary panel on Patient progress and the technique page's alerts read and
write through here only. Cached loaders take (url, actor, …), so one user's reads are never served to another, and
db checks what the actor may read or write; every write is one transaction and clears the caches.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from clinic.patient_reports import PATIENT_EFFECTS
from dashboard import resources
from db import patient_reports
from db.access import Actor
from db.engine import database_url, write_session

# How long a diary read is kept: what is due moves on with the clock (a window opens, a correction closes), so an
# answer an hour old would be wrong; a minute is short enough for a patient and spares the database on every run.
DUE_TTL_S = 60


def _on_this_database(load: Callable) -> Callable:
    """Return the cached `load(url, …)` called with DATABASE_URL first (as dashboard.resources does)."""

    @functools.wraps(load)
    def on_this_database(*args, **kwargs):
        return load(database_url(), *args, **kwargs)

    return on_this_database


def _write(write: Callable, **arguments):
    """Run one write in one transaction, then forget every cached read; return what the write returned."""
    with write_session(resources.engine()) as session:
        result = write(session, **arguments)
        session.flush()
        value = getattr(result, "id", result)
    resources.clear_after_write()
    return value


# -- a patient's diary: the writes --------------------------------------------------------------------------------


def _checked(soreness: int | None, effects: dict[str, str | None]) -> list[tuple[str, str]]:
    """Return the checked effects as (code, severity) pairs, or raise ValueError naming the field a patient left."""
    if soreness is None:
        raise ValueError("Soreness: tap a number from 0 (not sore) to 10.")
    for code, severity in effects.items():
        if severity is None:
            raise ValueError(f"{PATIENT_EFFECTS[code]}: tap how bad it was, or untick it.")
    return list(effects.items())


def record_entry(actor: Actor, session_id: int, soreness: int | None, effects: dict[str, str | None],
                 note: str) -> int:
    """Store the patient's diary entry for one of their sessions, now, in the window the time falls in; return its
    id. ValueError names the field refused; nothing is written then."""
    pairs = _checked(soreness, effects)
    return _write(patient_reports.record_diary_entry, actor=actor, session_id=session_id, soreness=soreness,
                  note=note, effects=pairs)


def correct_entry(actor: Actor, entry_id: int, soreness: int | None, effects: dict[str, str | None],
                  note: str) -> int:
    """Correct the patient's own entry (within a day of saving it; the old values are kept); return its id."""
    pairs = _checked(soreness, effects)
    return _write(patient_reports.correct_diary_entry, actor=actor, entry_id=entry_id, soreness=soreness,
                  note=note, effects=pairs)


def record_pgic(actor: Actor, episode_id: int, score: int | None, before_session_id: int | None = None) -> int:
    """Store a PGIC answer (1 very much improved … 7 very much worse) for the episode; return its id."""
    if score is None:
        raise ValueError("Your answer: tap the one that fits best.")
    return _write(patient_reports.record_pgic, actor=actor, episode_id=episode_id, score=score,
                  before_session_id=before_session_id)


def name_activities(actor: Actor, episode_id: int, named: list[tuple[str, int | None]]) -> None:
    """Name the episode's PSFS activities (up to three, in order) with a first 0–10 rating each, all or none."""
    chosen = [(position, name.strip(), rating) for position, (name, rating) in enumerate(named, start=1)
              if name and name.strip()]
    if not chosen:
        raise ValueError("Activity 1: name at least one activity you find hard.")
    for position, _, rating in chosen:
        if rating is None:
            raise ValueError(f"Activity {position}: tap how well you can do it now (0–10).")
    with write_session(resources.engine()) as session:
        for position, name, rating in chosen:
            activity = patient_reports.name_psfs_activity(session, actor=actor, episode_id=episode_id,
                                                          position=position, name=name)
            patient_reports.rate_psfs_activity(session, actor=actor, activity_id=activity.id, score=rating)
    resources.clear_after_write()


def rate_activities(actor: Actor, ratings: dict[int, int | None]) -> None:
    """Store a 0–10 rating of each PSFS activity rated (those left blank are skipped), all or none."""
    given = {activity: score for activity, score in ratings.items() if score is not None}
    if not given:
        raise ValueError("Ratings: tap a number for at least one activity.")
    with write_session(resources.engine()) as session:
        for activity, score in given.items():
            patient_reports.rate_psfs_activity(session, actor=actor, activity_id=activity, score=score)
    resources.clear_after_write()


def annotate_entry(actor: Actor, entry_id: int, text: str) -> int:
    """Add a clinician's note to a diary entry (the entry never changes); return the note's id."""
    return _write(patient_reports.annotate_entry, actor=actor, entry_id=entry_id, text=text)


def review_effect(actor: Actor, effect_id: int) -> None:
    """Mark a patient-reported significant or serious side effect as reviewed, so it leaves the alerts."""
    _write(patient_reports.review_patient_effect, actor=actor, effect_id=effect_id)
