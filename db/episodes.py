"""Episodes of care: which one a session belongs to, starting and discharging one, and reading them (issue #14).

An episode of care is one patient's course of treatment for one condition, numbered 1, 2, 3… per patient and
condition (the interchange format's `episode` column), from its start to its discharge with a status.

**Which episode a session goes to** (docs/DESIGN.md section 5, "the app's documented rule"): the patient's latest
episode (highest number) for the session's condition, or episode 1 when there is none, unless
- that episode was discharged before the session's date, or
- the session is more than `gap_days` days (default 90; `EPISODE_GAP_DAYS`) after the episode's last session:
then the session may start a new course. Recording a session asks the clinician (`Question`), never deciding
silently either way; an import, which cannot ask, starts a new episode and lists it in its preview.

Recording a session dated before the episode's first session asks too: it would become session 1 and the
episode's baseline, from which every improvement of the course is measured, so a mistyped year must not slip in.
It has one answer, that the date is right; a wrong date is corrected instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import and_, func, select
from sqlmodel import Session

from clinic.vocabulary import DEFAULT_EPISODE_GAP_DAYS, EPISODE_STATUSES, condition_words
from db import audit
from db.access import AGGREGATE_READERS, CLINICAL_WRITERS, Actor, require_patient, require_role
from db.models import LIVE_SESSIONS, Episode, Patient, TreatmentSession
from db.validation import SLUG, InvalidInput, Problem, longer_than, range_problem, unstorable

GAP_SETTING = "EPISODE_GAP_DAYS"  # the environment variable (and, for the app, the Streamlit secret in lower case)
MAX_EPISODE_NUMBER = 999  # a patient's courses of care for one condition: far fewer; the column is an integer
GOAL_MAX = Episode.__table__.c.goal.type.length


def gap_days(value: object = None) -> int:
    """Return the long gap in days: `value` if given, else EPISODE_GAP_DAYS from the environment, else 90.

    Raises ValueError with a one-line reason for a setting that is not a whole number of days, 1 or more.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        value = os.environ.get(GAP_SETTING, "").strip() or DEFAULT_EPISODE_GAP_DAYS
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError(f"{GAP_SETTING}: '{text}' is not a whole number of days (1 or more)")
    return int(text)


# -- the rule ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Course:
    """What the rule reads of a patient's latest episode for one condition."""

    number: int
    last_session: date | None  # of its live sessions; None before its first
    discharged_on: date | None = None
    status: str | None = None
    first_session: date | None = None  # of its live sessions; None before its first, or not read (an import, which
    # cannot ask, lists a row before it as the episode's new baseline instead: db.import_plan)


@dataclass(frozen=True)
class Question:
    """A session that may start a new episode of care: the clinician decides, never the app."""

    condition: str | None
    session_date: date
    latest: Course  # the episode the session would otherwise continue
    gap_days: int  # the configured limit

    @property
    def days(self) -> int | None:
        """Return the days from the episode's last session to this one (None before its first session)."""
        return (self.session_date - self.latest.last_session).days if self.latest.last_session else None

    @property
    def discharged(self) -> bool:
        """Return whether the episode was discharged before this session's date."""
        return self.latest.discharged_on is not None and self.session_date > self.latest.discharged_on

    @property
    def before_first(self) -> bool:
        """Return whether this session is dated before the episode's first session (it would become its baseline)."""
        return self.latest.first_session is not None and self.session_date < self.latest.first_session

    @property
    def label(self) -> str:
        """Return the question itself, the label of its answers."""
        return "Is the date right?" if self.before_first else "Does this session start a new episode of care?"

    def reason(self) -> str:
        """Return why a new episode is asked about (or, by an import, started), in a few words."""
        latest = self.latest
        if self.before_first:
            return f"before the first session of episode {latest.number} on {latest.first_session}"
        if self.discharged:
            status = EPISODE_STATUSES[latest.status].lower() if latest.status in EPISODE_STATUSES else "discharged"
            return f"episode {latest.number} was discharged on {latest.discharged_on} ({status})"
        return (f"{self.days} days after the last session of episode {latest.number} on {latest.last_session}, "
                f"more than {self.gap_days}")

    def sentence(self) -> str:
        """Return the question in words, with the gap in days (or the first session's date)."""
        opening = f"This {condition_words(self.condition)} session on {self.session_date} comes {self.reason()}."
        if self.before_first:
            return (f"{opening} Saved, it becomes session 1 and the episode's baseline: every improvement of the "
                    "course is then measured from its pain. If the date is mistyped, correct it and save again.")
        return f"{opening} Does it start a new episode of care?"

    def choices(self) -> dict[bool, str]:
        """Return the answers in words, by whether they start a new episode (a session before the episode's first
        has one: it joins the episode)."""
        latest = self.latest
        if self.before_first:
            return {False: f"Yes: it is the first session of episode {latest.number}, and its baseline"}
        keep = f"No: it continues episode {latest.number}"
        if self.discharged:
            keep += f", which is reopened (its discharge on {latest.discharged_on} is withdrawn)"
        return {True: f"Yes: it starts episode {latest.number + 1}, a new course of care", False: keep}

    def answered_by(self, answer: Answer | None) -> bool:
        """Return whether `answer` answers this question: about its episode, with one of its choices."""
        return answer is not None and answer.episode == self.latest.number and answer.start_new in self.choices()


@dataclass(frozen=True)
class Answer:
    """The clinician's answer to a `Question`: whether the session starts a new episode after episode `episode`."""

    episode: int  # the number of the episode the question named: an answer about another episode is no answer
    start_new: bool


class EpisodeUndecided(Exception):
    """Raised by a write that would need the clinician's answer to `question` and has none; nothing was written."""

    def __init__(self, question: Question):
        self.question = question
        super().__init__(question.sentence())


def question(latest: Course | None, session_date: date, gap: int, condition: str | None) -> Question | None:
    """Return the question a session on `session_date` raises about the `latest` episode, or None when it simply
    joins it (or, with no episode yet, starts episode 1). A back-dated session never raises the gap question; one
    before the first session raises the baseline question when `latest` says when that was."""
    if latest is None:
        return None
    asked = Question(condition, session_date, latest, gap)
    too_late = asked.days is not None and asked.days > gap
    return asked if asked.discharged or too_late or asked.before_first else None


# -- reading ----------------------------------------------------------------------------------------------------------


def _same_condition(condition: str | None):
    return Episode.condition.is_(None) if condition is None else Episode.condition == condition


def latest_episode(session: Session, patient_id: int, condition: str | None) -> Episode | None:
    """Return the patient's latest episode (highest number) for this condition, or None."""
    return session.scalars(
        select(Episode).where(Episode.patient_id == patient_id, _same_condition(condition))
        .order_by(Episode.number.desc()).limit(1)
    ).first()


def course(session: Session, episode: Episode) -> Course:
    """Return what the rule reads of an episode: its number, first and last live session and discharge."""
    first, last = session.execute(
        select(func.min(TreatmentSession.session_date), func.max(TreatmentSession.session_date))
        .where(TreatmentSession.episode_id == episode.id, LIVE_SESSIONS)
    ).one()
    return Course(episode.number, last, episode.discharged_on, episode.status, first)


EPISODE_COLUMNS = ["id", "number", "condition", "body_region", "goal", "started_on", "discharged_on", "status",
                   "sessions", "first_session", "last_session", "planned_sessions", "planned_per_week"]


def patient_episodes(session: Session, *, actor: Actor, patient_id: int) -> pd.DataFrame:
    """Return the patient's episodes of care by condition and number: `EPISODE_COLUMNS` (live sessions counted)."""
    require_patient(actor, patient_id)
    s = TreatmentSession
    stmt = (
        select(Episode.id, Episode.number, Episode.condition, Episode.body_region, Episode.goal, Episode.started_on,
               Episode.discharged_on, Episode.status, func.count(s.id), func.min(s.session_date),
               func.max(s.session_date), Episode.planned_sessions, Episode.planned_per_week)
        .outerjoin(s, and_(s.episode_id == Episode.id, s.deleted_at.is_(None)))
        .where(Episode.patient_id == patient_id)
        .group_by(Episode.id)
        .order_by(Episode.condition, Episode.number)
    )
    return pd.DataFrame(session.execute(stmt).all(), columns=EPISODE_COLUMNS)


def discharge_statuses(session: Session, *, actor: Actor) -> pd.Series:
    """Return every episode's discharge status by episode id (None: still open), as analytics.missing_data takes it."""
    require_role(actor, AGGREGATE_READERS, "read clinic-wide outcomes")
    rows = session.execute(select(Episode.id, Episode.status)).all()
    return pd.Series(dict(rows), dtype=object, name="status")


ALL_EPISODE_COLUMNS = ["id", "patient_id", "condition", "number", "started_on", "discharged_on", "status"]


def all_episodes(session: Session, *, actor: Actor) -> pd.DataFrame:
    """Return every episode of care: `ALL_EPISODE_COLUMNS`, the patient by pseudonymous id (for the exports)."""
    require_role(actor, CLINICAL_WRITERS, "read every patient's sessions")
    stmt = (
        select(Episode.id, Patient.pseudonym, Episode.condition, Episode.number, Episode.started_on,
               Episode.discharged_on, Episode.status)
        .join(Patient, Patient.id == Episode.patient_id)
        .order_by(Patient.pseudonym, Episode.condition, Episode.number)
    )
    return pd.DataFrame(session.execute(stmt).all(), columns=ALL_EPISODE_COLUMNS)


# -- writing ----------------------------------------------------------------------------------------------------------


def _values(episode: Episode) -> dict:
    """Return an episode's values as the audit trail records them."""
    return {"episode": episode.number, "condition": episode.condition, "body_region": episode.body_region,
            "goal": episode.goal, "started_on": episode.started_on, "discharged_on": episode.discharged_on,
            "status": episode.status}


def new_episode(session: Session, patient_id: int, condition: str | None, body_region: str | None,
                started_on: date, goal: str | None = None) -> Episode:
    """Add the patient's next episode for this condition (number 1 for the first) and return it; not audited."""
    latest = latest_episode(session, patient_id, condition)
    episode = Episode(patient_id=patient_id, condition=condition, body_region=body_region, goal=goal or None,
                      number=latest.number + 1 if latest else 1, started_on=started_on)
    session.add(episode)
    session.flush()
    return episode


def episode_for_session(session: Session, actor: Actor, patient: Patient, *, condition: str | None,
                        body_region: str | None, session_date: date, gap: int, answer: Answer | None) -> Episode:
    """Return the episode a new session goes to by the rule above, starting or reopening one as `answer` says.

    Raises EpisodeUndecided when the session raises a question that `answer` does not answer. A reopened episode
    is audited as `actor`, whom the caller has let record sessions; a new one is audited with its first session
    (`episode` in the session's audit row).
    """
    latest = latest_episode(session, patient.id, condition)
    if latest is None:
        return new_episode(session, patient.id, condition, body_region, session_date)
    asked = question(course(session, latest), session_date, gap, condition)
    if asked is not None:
        if not asked.answered_by(answer):
            raise EpisodeUndecided(asked)
        if answer.start_new:
            return new_episode(session, patient.id, condition, body_region, session_date)
        if asked.discharged:
            _reopen(session, actor, latest, f"a session on {session_date} continues it")
    if body_region and not latest.body_region:
        latest.body_region = body_region
    return latest


def _reopen(session: Session, actor: Actor, episode: Episode, why: str) -> None:
    before = {"status": episode.status, "discharged_on": episode.discharged_on}
    episode.status = episode.discharged_on = None
    session.flush()
    audit.record(session, actor, "update", "episode", episode.id, before=before,
                 after={"status": None, "discharged_on": None}, detail=f"reopened: {why}")


def _today(today: date | None) -> date:
    return today or date.today()


def start_episode(session: Session, *, actor: Actor, patient_id: int, condition: str | None,
                  body_region: str | None = None, goal: str = "", started_on: date,
                  today: date | None = None) -> Episode:
    """Start the patient's next episode of care for a condition, with a goal; audited. Returns it with its number.

    Raises InvalidInput naming the field of a condition or body region that is not a code, a goal too long or not
    storable, or a start in the future.
    """
    require_role(actor, CLINICAL_WRITERS, "start episodes of care")
    condition, body_region = (value.strip() or None if value else None for value in (condition, body_region))
    goal = (goal or "").strip()
    problems = [Problem(name, f"'{value}' must be lower-case letters, digits and '_' (at most 64)")
                for name, value in (("condition", condition), ("body_region", body_region))
                if value and not SLUG.match(value)]
    if problem := unstorable(goal) or longer_than(goal, GOAL_MAX):
        problems.append(Problem("goal", problem))
    if started_on > _today(today):
        problems.append(Problem("started_on", f"{started_on} is in the future"))
    if problems:
        raise InvalidInput(problems)
    if session.get(Patient, patient_id) is None:
        raise ValueError(f"patient: no patient {patient_id}")
    episode = new_episode(session, patient_id, condition, body_region, started_on, goal)
    audit.record(session, actor, "create", "episode", episode.id, after=_values(episode), detail="episode started")
    return episode


def discharge_episode(session: Session, *, actor: Actor, episode_id: int, status: str, discharged_on: date,
                      today: date | None = None) -> Episode:
    """Discharge an open episode with a status and a date; audited. Raises InvalidInput naming what is refused.

    The date is neither before the episode's start or last session nor in the future.
    """
    require_role(actor, CLINICAL_WRITERS, "discharge episodes of care")
    episode = session.get(Episode, episode_id)
    if episode is None:
        raise ValueError(f"episode: no episode {episode_id}")
    problems = []
    if episode.status is not None:
        problems.append(Problem("status", f"episode {episode.number} was already discharged on "
                                          f"{episode.discharged_on} ({EPISODE_STATUSES[episode.status].lower()})"))
    if status not in EPISODE_STATUSES:
        problems.append(Problem("status", f"unknown discharge status '{status}'; use one of "
                                          f"{', '.join(EPISODE_STATUSES)}"))
    last = course(session, episode).last_session
    if discharged_on > _today(today):
        problems.append(Problem("discharged_on", f"{discharged_on} is in the future"))
    elif last is not None and discharged_on < last:
        problems.append(Problem("discharged_on", f"{discharged_on} is before the episode's last session on {last}"))
    elif discharged_on < episode.started_on:
        problems.append(Problem("discharged_on", f"{discharged_on} is before the episode started on "
                                                 f"{episode.started_on}"))
    if problems:
        raise InvalidInput(problems)
    episode.status, episode.discharged_on = status, discharged_on
    session.flush()
    audit.record(session, actor, "update", "episode", episode.id, before={"status": None, "discharged_on": None},
                 after={"status": status, "discharged_on": discharged_on}, detail="episode discharged")
    return episode


PLANNED = ("planned_sessions", "planned_per_week")


def plan_course(session: Session, *, actor: Actor, episode_id: int, planned_sessions: float | None,
                planned_per_week: float | None) -> Episode:
    """Record an episode's planned course (STRICTA item 3): the number of sessions (1–50) and sessions a week
    (0.25–7); None clears one (not recorded). Audited when it changes. Raises InvalidInput naming a value refused."""
    require_role(actor, CLINICAL_WRITERS, "plan courses of care")
    episode = session.get(Episode, episode_id)
    if episode is None:
        raise ValueError(f"episode: no episode {episode_id}")
    planned = dict(zip(PLANNED, (planned_sessions, planned_per_week), strict=True))
    problems = [Problem(name, problem) for name, value in planned.items() if (problem := range_problem(name, value))]
    if problems:
        raise InvalidInput(problems)
    planned["planned_sessions"] = None if planned_sessions is None else int(planned_sessions)
    planned["planned_per_week"] = None if planned_per_week is None else float(planned_per_week)
    before = {name: getattr(episode, name) for name in PLANNED}
    if before != planned:
        episode.planned_sessions, episode.planned_per_week = planned["planned_sessions"], planned["planned_per_week"]
        session.flush()
        audit.record(session, actor, "update", "episode", episode.id, before=before, after=planned,
                     detail="course planned")
    return episode
