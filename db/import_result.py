"""What an import did, or would do: its counts, every field it changes and the episodes of care it starts.

`db.import_plan` fills it in before anything is written; the preview, the import's report and the CLI read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from clinic.vocabulary import condition_words, counted


@dataclass(frozen=True)
class FieldChange:
    """One value that a row of the file changes in a stored session: where, which field, from what to what."""

    row: int  # the file line (header is line 1)
    patient_id: str
    session_date: str
    field: str
    old: str
    new: str
    session_id: int
    conflict: bool  # the session was corrected in the app after it was last imported
    applied: bool  # the import writes it (a conflict only when the file's values were chosen)

    def __str__(self) -> str:
        if not self.conflict:
            what = "update"
        else:
            what = "conflict, file's value taken" if self.applied else "conflict, kept as corrected in the app"
        return (f"{what}: row {self.row}, {self.patient_id} {self.session_date}: {self.field} "
                f"{_shown(self.old)} -> {_shown(self.new)}")


def _shown(value: str) -> str:
    return repr(value) if value == "" or len(value) > 40 or value != value.strip() or "\n" in value else value


@dataclass(frozen=True)
class NewEpisode:
    """An episode of care the import starts: at which row, for whom, its number and why (db.episodes' rule)."""

    row: int  # the file line of its first row
    patient_id: str
    condition: str | None
    number: int
    reason: str

    def __str__(self) -> str:
        return (f"new episode: row {self.row}, {self.patient_id} {condition_words(self.condition)}: "
                f"episode {self.number} ({self.reason})")


@dataclass(frozen=True)
class NewBaseline:
    """A stored episode of care that a row of the file comes before: the row becomes its session 1 and its baseline,
    from which every improvement of the course is then measured (recording it in the app asks first)."""

    row: int  # the file line of the episode's earliest new row
    patient_id: str
    condition: str | None
    number: int
    first_session: date  # the stored first session it comes before

    def __str__(self) -> str:
        return (f"new baseline: row {self.row}, {self.patient_id} {condition_words(self.condition)}: session 1 of "
                f"episode {self.number}, before its first session on {self.first_session}")


FIRST_EPISODE = "the first of this condition"
NUMBERED_IN_FILE = "numbered so in the file"


@dataclass
class ImportResult:
    """What an import did (or, from `plan_import`, would do)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # rows matching a session deleted in the app, left deleted
    conflicts: int = 0  # rows matching a session corrected in the app since its import, left as corrected
    new_clinicians: list[str] = field(default_factory=list)
    new_patients: int = 0
    changes: list[FieldChange] = field(default_factory=list)  # every field the file changes, conflicts included
    new_episodes: list[NewEpisode] = field(default_factory=list)  # episodes of care the import starts, by row
    new_baselines: list[NewBaseline] = field(default_factory=list)  # stored episodes given an earlier first, by row

    def summary(self) -> str:
        """Return what was done in a few words."""
        deleted = f", {self.deleted} left deleted" if self.deleted else ""
        kept = f", {self.conflicts} kept as corrected in the app" if self.conflicts else ""
        count = len(self.new_baselines)
        rebased = f", {counted(count, 'stored course')} given an earlier baseline" if count else ""
        return f"{self.inserted} added, {self.updated} updated, {self.unchanged} unchanged{deleted}{kept}{rebased}"

    def report(self, limit: int = 100) -> list[str]:
        """Return one line per changed field, then one per episode of care started after the patient's first, then
        one per stored episode given an earlier first session (at most `limit` of each, then how many more), for the
        command line."""
        lines = []
        for listed, more in ((self.changes, "changed values"), (self.later_episodes(), "new episodes of care"),
                             (self.new_baselines, "new baselines")):
            lines += [str(item) for item in listed[:limit]]
            if len(listed) > limit:
                lines.append(f"… and {len(listed) - limit:,} more {more}")
        return lines

    def later_episodes(self) -> list[NewEpisode]:
        """Return the episodes the import starts other than a patient's first for a condition: the rows where the
        file, or the rule for an empty `episode` cell, starts a new course of care."""
        return [episode for episode in self.new_episodes if episode.reason != FIRST_EPISODE]

    def episodes_table(self, episodes: list[NewEpisode] | None = None) -> pd.DataFrame:
        """Return the episodes of care the import starts (or those given): row, patient, condition, episode number
        and reason."""
        return pd.DataFrame([(e.row, e.patient_id, e.condition, e.number, e.reason)
                             for e in (self.new_episodes if episodes is None else episodes)],
                            columns=["row", "patient_id", "condition", "episode", "reason"])

    def baselines_table(self) -> pd.DataFrame:
        """Return the stored episodes given an earlier first session: row, patient, condition, episode number and
        the stored first session's date."""
        return pd.DataFrame([(b.row, b.patient_id, b.condition, b.number, b.first_session) for b in self.new_baselines],
                            columns=["row", "patient_id", "condition", "episode", "first_session"])

    def conflicting_sessions(self) -> dict[int, list[FieldChange]]:
        """Return the changes of each session corrected in the app since its import, by session id."""
        found: dict[int, list[FieldChange]] = {}
        for change in self.changes:
            if change.conflict:
                found.setdefault(change.session_id, []).append(change)
        return found

    def changes_table(self) -> pd.DataFrame:
        """Return the field changes as a table: row, patient, date, field, stored value, file's value, conflict."""
        return pd.DataFrame([(c.row, c.patient_id, c.session_date, c.field, c.old, c.new, c.conflict)
                             for c in self.changes],
                            columns=["row", "patient_id", "session_date", "field", "stored", "file", "conflict"])
