"""SQLModel tables of what patients report (issue #17): diary entries, their side effects, PGIC and PSFS.

Kept apart from db/models.py; db/engine.py imports this module, so every user of `SQLModel.metadata` (the
migrations' env, `create_all` in tests) sees these tables. The vocabularies the CHECKs hold are in
`clinic.patient_reports`; docs/DESIGN.md ("Patient-reported data") gives the rules the writes in
db/patient_reports.py keep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from clinic.patient_reports import DIARY_WINDOWS, ENTERED_BY, PATIENT_EFFECT_CODES
from clinic.vocabulary import SEVERITIES
from db.models import _one_of, utcnow

WINDOWS_CHECK = " OR ".join(f"window_h = {window}" for window in DIARY_WINDOWS)


class DiaryEntry(SQLModel, table=True):
    """A patient's soreness diary entry for one session and window (6, 24, 48 or 72 h), at its real time."""

    __tablename__ = "diary_entries"
    __table_args__ = (
        CheckConstraint(WINDOWS_CHECK, name="ck_diary_entries_window"),
        CheckConstraint("soreness >= 0 AND soreness <= 10", name="ck_diary_entries_soreness"),
        UniqueConstraint("session_id", "window_h", name="uq_diary_entries_session_window"),  # one per window
        Index("ix_diary_entries_patient", "patient_id", "recorded_at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="sessions.id")
    patient_id: int = Field(foreign_key="patients.id")  # the session's patient, kept for scoped reads
    window_h: int  # clinic.patient_reports.DIARY_WINDOWS: the window the real time falls in
    soreness: int  # NRS 0–10 where needled
    note: str = Field(default="", sa_type=Text)
    recorded_at: datetime = Field(default_factory=utcnow)  # real time of the first recording, never changed
    created_by: Optional[int] = Field(default=None, foreign_key="users.id")  # the patient's account, or an importer
    corrected_at: Optional[datetime] = None  # the latest correction (history: DiaryEntryVersion)


class DiaryEntryVersion(SQLModel, table=True):
    """The values a diary entry had before one correction: version 1 is the first recording."""

    __tablename__ = "diary_entry_versions"
    __table_args__ = (
        CheckConstraint("version >= 1", name="ck_diary_entry_versions_version"),
        CheckConstraint("soreness >= 0 AND soreness <= 10", name="ck_diary_entry_versions_soreness"),
        UniqueConstraint("entry_id", "version", name="uq_diary_entry_versions_entry_version"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="diary_entries.id")
    version: int
    soreness: int
    note: str = Field(default="", sa_type=Text)
    side_effects: str = Field(default="", sa_type=Text)  # `code:severity;…` (clinic.side_effects) as they were
    valid_from: datetime  # when these values were recorded (the entry's recorded_at, or an earlier correction)
    replaced_at: datetime = Field(default_factory=utcnow)
    replaced_by: Optional[int] = Field(default=None, foreign_key="users.id")


class PatientSideEffect(SQLModel, table=True):
    """A side effect a patient reported in a diary entry; significant and serious ones alert like recorded ones."""

    __tablename__ = "patient_side_effects"
    __table_args__ = (
        CheckConstraint(_one_of("code", PATIENT_EFFECT_CODES), name="ck_patient_side_effects_code"),
        CheckConstraint(_one_of("severity", SEVERITIES), name="ck_patient_side_effects_severity"),
        UniqueConstraint("entry_id", "code", name="uq_patient_side_effects_entry_code"),
        Index("ix_patient_side_effects_severity", "severity"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="diary_entries.id")
    code: str = Field(max_length=32)  # clinic.patient_reports.PATIENT_EFFECT_CODES
    severity: str = Field(max_length=16)
    reviewed_at: Optional[datetime] = None
    reviewed_by: Optional[int] = Field(default=None, foreign_key="users.id")


class DiaryAnnotation(SQLModel, table=True):
    """A clinician's note on a diary entry; it never changes the entry."""

    __tablename__ = "diary_annotations"
    __table_args__ = (Index("ix_diary_annotations_entry", "entry_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="diary_entries.id")
    author_id: Optional[int] = Field(default=None, foreign_key="users.id")
    at: datetime = Field(default_factory=utcnow)
    text: str = Field(sa_type=Text)


class PgicResponse(SQLModel, table=True):
    """A Patient Global Impression of Change answer (1 very much improved … 7 very much worse) for one episode."""

    __tablename__ = "pgic_responses"
    __table_args__ = (
        CheckConstraint("score >= 1 AND score <= 7", name="ck_pgic_responses_score"),
        CheckConstraint(_one_of("entered_by", ENTERED_BY), name="ck_pgic_responses_entered_by"),
        Index("ix_pgic_responses_patient", "patient_id", "answered_at"),
        Index("ix_pgic_responses_episode", "episode_id"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patients.id")
    episode_id: int = Field(foreign_key="episodes.id")
    answered_at: datetime = Field(default_factory=utcnow)
    score: int
    before_session_id: Optional[int] = Field(default=None, foreign_key="sessions.id")  # the session it preceded
    recorded_by: Optional[int] = Field(default=None, foreign_key="users.id")
    entered_by: str = Field(max_length=16)  # patient, or the clinician or admin who asked on the patient's behalf


class PsfsActivity(SQLModel, table=True):
    """One of up to three activities a patient finds hard, named at the start of an episode (PSFS)."""

    __tablename__ = "psfs_activities"
    __table_args__ = (
        CheckConstraint("position >= 1 AND position <= 3", name="ck_psfs_activities_position"),
        CheckConstraint(_one_of("entered_by", ENTERED_BY), name="ck_psfs_activities_entered_by"),
        UniqueConstraint("episode_id", "position", name="uq_psfs_activities_episode_position"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    episode_id: int = Field(foreign_key="episodes.id")
    position: int  # 1–3
    name: str = Field(max_length=200)
    named_at: datetime = Field(default_factory=utcnow)
    named_by: Optional[int] = Field(default=None, foreign_key="users.id")
    entered_by: str = Field(max_length=16)


class PsfsRating(SQLModel, table=True):
    """A 0–10 rating of one PSFS activity (0 unable, 10 as well as before); the first is the baseline."""

    __tablename__ = "psfs_ratings"
    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 10", name="ck_psfs_ratings_score"),
        CheckConstraint(_one_of("entered_by", ENTERED_BY), name="ck_psfs_ratings_entered_by"),
        Index("ix_psfs_ratings_activity", "activity_id", "rated_at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="psfs_activities.id")
    rated_at: datetime = Field(default_factory=utcnow)
    score: int
    rated_by: Optional[int] = Field(default=None, foreign_key="users.id")
    entered_by: str = Field(max_length=16)


REPORT_TABLES = (DiaryEntry, DiaryEntryVersion, PatientSideEffect, DiaryAnnotation, PgicResponse, PsfsActivity,
                 PsfsRating)
