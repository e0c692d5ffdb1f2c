"""SQLModel tables (docs/DESIGN.md §2); the vocabularies they check are in `clinic.vocabulary`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Optional

from sqlalchemy import CheckConstraint, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from clinic.vocabulary import (
    ADJUNCTS,
    EPISODE_STATUSES,
    ESTIM_ITEMS,
    ESTIM_TECHNIQUE,
    MANIPULATIONS,
    NO_ADJUNCT,
    PAIN_SCALES,
    RANGES,
    SEVERITIES,
    SIDE_EFFECTS,
    SIDES,
    TECHNIQUES,
)

ROLES = ("clinician", "manager", "patient", "admin")


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def _one_of(column: str, values) -> str:
    """Return a CHECK clause admitting only these values, as `column = 'a' OR column = 'b' …`.

    Not `column IN ('a', 'b', …)`: SQLite builds a temporary index of a list of three or more constants each time
    it checks a row, which made the CHECKs the largest cost of a bulk insert (32,000 side-effect rows: 0.36 s with
    IN, 0.07 s with the comparisons). Both forms admit the same values, on SQLite and on PostgreSQL.
    """
    return " OR ".join(f"{column} = '{value}'" for value in values)


def _within(column: str) -> str:
    """Return a CHECK clause admitting NULL (not recorded) or a number within the column's range (RANGES); the
    electrical-stimulation columns only on an electrical session."""
    low, high, _ = RANGES[column]
    technique = f"technique = '{ESTIM_TECHNIQUE}' AND " if column in ESTIM_ITEMS else ""
    return f"{column} IS NULL OR ({technique}{column} >= {low:g} AND {column} <= {high:g})"


def _range_checks(table: str, columns) -> list[CheckConstraint]:
    return [CheckConstraint(_within(column), name=f"ck_{table}_{column}") for column in columns]


def _codes_joined(column: str, codes, alone: str) -> str:
    """Return a CHECK clause admitting NULL, `alone`, or distinct codes joined by ';' (each code is taken out of
    ';' || column || ';' in turn, and ';' must remain: a repeated, unknown or empty code leaves more)."""
    remainder = f"';' || {column} || ';'"
    for code in codes:
        remainder = f"replace({remainder}, ';{code};', ';')"
    return f"{column} IS NULL OR {column} = '{alone}' OR {remainder} = ';'"


SESSION_RANGED = ("insertions", "depth_mm", "needle_diameter_mm", "needle_length_mm", "twitch_count", "retention_s",
                  *ESTIM_ITEMS)

class User(SQLModel, table=True):
    """Someone who uses the app; the role decides what they may see (issue 4 adds login)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_one_of("role", ROLES), name="ck_users_role"),
        *_range_checks("users", ("years_practice",)),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(default="", max_length=128)
    role: str = Field(max_length=16)
    email: Optional[str] = Field(default=None, max_length=254, unique=True)  # maps an OpenID Connect login
    patient_id: Optional[int] = Field(default=None, foreign_key="patients.id")  # a patient account's one record
    password_hash: Optional[str] = Field(default=None, max_length=256)  # argon2id; None: cannot log in by password
    failed_logins: int = 0
    locked_until: Optional[datetime] = None
    last_login_at: Optional[datetime] = None
    # Every session of this account that logged in at or before this time is over, in every browser: set by a
    # logout, a password reset, a role change or disabling the account.
    sessions_valid_after: Optional[datetime] = None
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    # STRICTA item 5, the practitioner's background: needling training (free text) and years of needling practice.
    needling_training: Optional[str] = Field(default=None, max_length=500)
    years_practice: Optional[int] = None


# A search key (db.patient_search) is compared by code point on both backends, SQLite's binary collation and
# PostgreSQL's "C" (a language's collation sorts 'ab d' between 'abc' and 'abd'), so that a prefix is the range
# `>= 'abc' AND < 'abd'` that an index answers.
SEARCH_KEY = String(64).with_variant(String(64, collation="C"), "postgresql")


class Patient(SQLModel, table=True):
    """A person treated, known to managers only by a pseudonymous id."""

    __tablename__ = "patients"

    id: Optional[int] = Field(default=None, primary_key=True)
    pseudonym: str = Field(max_length=64, unique=True, index=True)
    name: Optional[str] = Field(default=None, max_length=128)  # identifying: clinicians and admins only
    created_at: datetime = Field(default_factory=utcnow)
    search_id: str = Field(sa_type=SEARCH_KEY, index=True)  # the pseudonym lower-cased (db.patient_search)


class PatientNameKey(SQLModel, table=True):
    """A patient's name folded for search (db.patient_search), from the start of one of its words to its end."""

    __tablename__ = "patient_name_keys"

    key: str = Field(sa_type=SEARCH_KEY, primary_key=True)  # first: the primary key's index answers a prefix
    patient_id: int = Field(foreign_key="patients.id", primary_key=True)


class Episode(SQLModel, table=True):
    """An episode of care: one patient, one condition, one course of treatment, from its start to its discharge."""

    __tablename__ = "episodes"
    __table_args__ = (
        CheckConstraint("number >= 1", name="ck_episodes_number_positive"),
        CheckConstraint(_one_of("status", EPISODE_STATUSES), name="ck_episodes_status"),
        # Discharged means both: a status and its date; open means neither.
        CheckConstraint("(status IS NULL) = (discharged_on IS NULL)", name="ck_episodes_discharge"),
        CheckConstraint("discharged_on IS NULL OR discharged_on >= started_on", name="ck_episodes_discharge_date"),
        # The patient's courses for one condition are 1, 2, 3…; also the index that finds them. (A NULL condition
        # is distinct to a unique index: for those the one writer at a time (db.engine.write_session) keeps them so.)
        Index("uq_episodes_patient_condition_number", "patient_id", "condition", "number", unique=True),
        # The technique page's filter choices: the distinct values, read from an index rather than every episode.
        Index("ix_episodes_condition", "condition"),
        Index("ix_episodes_body_region", "body_region"),
        *_range_checks("episodes", ("planned_sessions", "planned_per_week")),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patients.id")
    condition: Optional[str] = Field(default=None, max_length=64)
    body_region: Optional[str] = Field(default=None, max_length=64)
    number: int  # the `episode` of the interchange format: 1 for the patient's first course for this condition
    goal: Optional[str] = Field(default=None, max_length=500)
    started_on: date
    discharged_on: Optional[date] = None
    status: Optional[str] = Field(default=None, max_length=16)  # clinic.vocabulary.EPISODE_STATUSES; None: open
    created_at: datetime = Field(default_factory=utcnow)
    # The planned course (STRICTA item 3): number of sessions and sessions a week; None: not recorded.
    planned_sessions: Optional[int] = None
    planned_per_week: Optional[float] = None


class TreatmentSession(SQLModel, table=True):
    """One dry-needling session with its pain scores (named so as not to clash with a db Session)."""

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(_one_of("technique", TECHNIQUES), name="ck_sessions_technique"),
        CheckConstraint(_one_of("pain_scale", PAIN_SCALES), name="ck_sessions_pain_scale"),
        CheckConstraint(
            "pain_before >= 0 AND pain_before <= CASE pain_scale WHEN 'nrs_10' THEN 10 ELSE 100 END",
            name="ck_sessions_pain_before_range",
        ),
        CheckConstraint(
            "pain_after IS NULL OR (pain_after >= 0 AND "
            "pain_after <= CASE pain_scale WHEN 'nrs_10' THEN 10 ELSE 100 END)",
            name="ck_sessions_pain_after_range",
        ),
        CheckConstraint("session_number >= 1", name="ck_sessions_number_positive"),
        # Live sessions are numbered 1, 2, 3… per episode; a soft-deleted one keeps its old number out of the way.
        Index(
            "uq_sessions_episode_number_live", "episode_id", "session_number", unique=True,
            sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL"),
        ),
        # Covering indexes for the clinic-wide aggregates (db/queries.py), so they read narrow index entries, never
        # the wide rows: every episode's live first session (session_number = 1 leads), and an episode's live
        # sessions in order. deleted_at is a column as well as the WHERE clause because SQLite counts an index as
        # covering only if it holds every column the query names.
        Index(
            "ix_sessions_number_live", "session_number", "episode_id", "technique", "pain_scale", "pain_before",
            "session_date", "clinician_id", "deleted_at",
            sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "ix_sessions_episode_live", "episode_id", "session_number", "technique", "pain_scale", "pain_before",
            "deleted_at",
            sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL"),
        ),
        # The needling record (docs/DESIGN.md §5, optional STRICTA columns): each NULL or within its range or codes.
        *_range_checks("sessions", SESSION_RANGED),
        CheckConstraint(_one_of("side", SIDES), name="ck_sessions_side"),
        CheckConstraint(_one_of("manipulation", MANIPULATIONS), name="ck_sessions_manipulation"),
        CheckConstraint(_codes_joined("adjuncts", ADJUNCTS, NO_ADJUNCT), name="ck_sessions_adjuncts"),
        # A twitch count above 0 means a twitch response was elicited, and 0 that none was.
        CheckConstraint("twitch_count IS NULL OR twitch_response IS NULL OR (twitch_count > 0) = twitch_response",
                        name="ck_sessions_twitch_agrees"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    episode_id: int = Field(foreign_key="episodes.id", index=True)
    # k in docs/DESIGN.md section 3: date order within the episode, ties kept in entry (id) order.
    session_number: int
    session_date: date
    technique: str = Field(max_length=16)
    clinician_id: Optional[int] = Field(default=None, foreign_key="users.id")
    muscles: str = Field(default="", max_length=512)  # names joined by ';'
    twitch_response: Optional[bool] = None
    pain_scale: str = Field(default="vas_100", max_length=8)
    pain_before: float
    pain_after: Optional[float] = None
    notes: str = Field(default="")
    created_at: datetime = Field(default_factory=utcnow)
    deleted_at: Optional[datetime] = None  # clinical records are never hard-deleted
    deleted_by: Optional[int] = Field(default=None, foreign_key="users.id")
    deleted_reason: Optional[str] = Field(default=None, max_length=500)
    # The needling record (STRICTA items 2 and 4; docs/DESIGN.md §5): None = not recorded. Ranges in RANGES.
    insertions: Optional[int] = None
    side: Optional[str] = Field(default=None, max_length=16)  # clinic.vocabulary.SIDES
    depth_mm: Optional[float] = None
    needle_diameter_mm: Optional[float] = None
    needle_length_mm: Optional[float] = None
    twitch_count: Optional[int] = None
    retention_s: Optional[int] = None  # 0 = in and out
    manipulation: Optional[str] = Field(default=None, max_length=24)  # clinic.vocabulary.MANIPULATIONS
    estim_hz: Optional[float] = None  # estim_*: electrical sessions only
    estim_pulse_us: Optional[float] = None
    estim_ma: Optional[float] = None
    estim_minutes: Optional[float] = None
    adjuncts: Optional[str] = Field(default=None, max_length=128)  # codes joined by ';', or 'none' (recorded: none)


LIVE_SESSIONS = TreatmentSession.deleted_at.is_(None)  # soft-deleted sessions are in no figure, chart or export


class SideEffect(SQLModel, table=True):
    """A side effect observed in one session, with its severity (White et al.)."""

    __tablename__ = "side_effects"
    __table_args__ = (
        CheckConstraint(_one_of("code", SIDE_EFFECTS), name="ck_side_effects_code"),
        CheckConstraint(_one_of("severity", SEVERITIES), name="ck_side_effects_severity"),
        UniqueConstraint("session_id", "code", name="uq_side_effects_session_code"),
        Index("ix_side_effects_severity", "severity"),  # the few significant and serious events, found at once
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="sessions.id", ondelete="CASCADE")  # indexed by uq_side_effects_session_code
    code: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    # Significant and serious events stay at the top of the manager's page until a manager marks them reviewed.
    reviewed_at: Optional[datetime] = None
    reviewed_by: Optional[int] = Field(default=None, foreign_key="users.id")


# Roll-ups (db/rollups.py): the technique page's sums, kept current by every write, per technique and session
# number of all episodes and of each value of one filter: the episode's condition, body region, first clinician or
# first month. A row's `dimension` names that filter (or is "all"); the other filters' columns hold '' or 0, which is
# also how "none" is stored, so that a row has a unique key on both SQLite and PostgreSQL.
ROLLUP_DIMENSIONS = ("all", "condition", "body_region", "clinician_id", "first_month")
ROLLUP_CELL = ("dimension", "condition", "body_region", "clinician_id", "first_month", "technique")


class OutcomeRollup(SQLModel, table=True):
    """Sums over the live sessions of one cell and session number (see db/rollups.py for each measure)."""

    __tablename__ = "outcome_rollup"
    __table_args__ = (
        CheckConstraint(_one_of("dimension", ROLLUP_DIMENSIONS), name="ck_outcome_rollup_dimension"),
        UniqueConstraint(*ROLLUP_CELL, "session_number", name="uq_outcome_rollup_cell"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    dimension: str = Field(max_length=16)  # ROLLUP_DIMENSIONS: the one filter whose column this row keeps
    condition: str = Field(max_length=64)
    body_region: str = Field(max_length=64)
    clinician_id: int  # of the episode's first session
    first_month: int  # of the episode's first session, as yyyymm
    technique: str = Field(max_length=16)  # the episode's, that of its first session
    session_number: int
    sessions: int
    curve_sessions: int  # sessions of episodes with a baseline above 0
    sum_pain: float
    sum_improvement: float
    sum_pct: float
    sum_pct_squared: float
    baseline_zero: int  # first sessions of episodes left out for a baseline of 0
    single_session: int  # first sessions of episodes left out for having no follow-up


AUDIT_ACTIONS = (
    "create", "update", "delete", "restore", "login", "login_failed", "logout", "export", "import",
    "user_add", "user_disable", "user_password_reset",
)


class AuditEvent(SQLModel, table=True):
    """One append-only audit row: who did what to which record, when, with the values before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(_one_of("action", AUDIT_ACTIONS), name="ck_audit_action"),
        Index("ix_audit_entity", "entity", "entity_id"),
        # The audit page's filters, newest first: by patient, by user, by date range.
        Index("ix_audit_patient", "patient", "id"),
        Index("ix_audit_actor", "actor", "id"),
        Index("ix_audit_at", "at"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)  # id order is time order: the trail is only ever appended to
    actor_id: Optional[int] = Field(default=None, foreign_key="users.id")
    actor: str = Field(max_length=96)  # username at the time, kept even if the account is renamed
    action: str = Field(max_length=32)
    entity: str = Field(max_length=32)  # "session", "patient", "user", "file"
    entity_id: Optional[int] = None
    before: Optional[str] = Field(default=None, sa_type=Text)  # JSON
    after: Optional[str] = Field(default=None, sa_type=Text)  # JSON
    detail: str = Field(default="", max_length=500)
    patient: Optional[str] = Field(default=None, max_length=64)  # pseudonymous id of a clinical row's patient
    # The hash chain (db.audit): this row's hash covers its content and the previous row's hash.
    prev_hash: Optional[str] = Field(default=None, max_length=64)
    row_hash: Optional[str] = Field(default=None, max_length=64)
