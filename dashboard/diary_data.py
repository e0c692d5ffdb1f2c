"""Every read and write of what patients report (issue #17): the diary, PGIC, PSFS, their alerts and aggregates.

Part of the page-data layer beside dashboard.resources and dashboard.actions (tests/app/test_page_data.py): the
pages My diary and Patient-reported, the diary panel on Patient progress and the technique page's alerts read and
write through here only. Cached loaders take (url, actor, …), so one user's reads are never served to another, and
db checks what the actor may read or write; every write is one transaction and clears the caches.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlmodel import Session

from analytics import patient_reported
from clinic import side_effects
from clinic.patient_reports import DIARY_WINDOWS, PATIENT_EFFECTS, effect_in_patient_words
from clinic.vocabulary import TECHNIQUE_LABELS
from dashboard import charts, clinic_wide, resources
from db import episodes, report_queries
from db import patient_reports as report_writes
from db.access import Actor
from db.engine import write_session

# How long a diary read is kept: what is due moves on with the clock (a window opens, a correction closes), so an
# answer an hour old would be wrong; a minute is short enough for a patient and spares the database on every run.
DUE_TTL_S = 60


def _write(write: Callable, **arguments):
    """Run one write in one transaction, then forget every cached read; return what the write returned."""
    with write_session(resources.engine()) as session:
        result = write(session, **arguments)
        session.flush()
        value = getattr(result, "id", result)
    resources.clear_after_write()
    return value


# -- reads ------------------------------------------------------------------------------------------------------------


@resources.on_this_database
@st.cache_data(show_spinner=False, ttl=DUE_TTL_S)
def _due(url: str, version: Hashable, actor: Actor, patient_id: int) -> pd.DataFrame:
    with Session(clinic_wide.engine(url)) as session:
        return report_queries.due_entries(session, actor=actor, patient_id=patient_id)


def due_entries(actor: Actor, patient_id: int) -> pd.DataFrame:
    """Return the patient's diary entries open now (session, date, window, until when), the most urgent first."""
    due = _due(actor, patient_id)
    diary = due[(due["kind"] == "diary") & (due["status"] == "due")]
    return diary.sort_values(["closes_at", "session_id"]).reset_index(drop=True)


def next_entry(actor: Actor, patient_id: int) -> pd.Timestamp | None:
    """Return when the patient's next diary entry opens, or None when none is coming."""
    due = _due(actor, patient_id)
    soon = due[(due["kind"] == "diary") & (due["status"] == "soon")]
    return None if soon.empty else pd.Timestamp(soon["opens_at"].min())


@resources.on_this_database
@st.cache_data(show_spinner=False, ttl=DUE_TTL_S)
def _reports(url: str, version: Hashable, actor: Actor, patient_id: int) -> dict:
    with Session(clinic_wide.engine(url)) as session:
        reports = report_queries.patient_reports(session, actor=actor, patient_id=patient_id)
        courses = episodes.patient_episodes(session, actor=actor, patient_id=patient_id)
    open_ones = courses[courses["discharged_on"].isna() & (courses["sessions"] > 0)]
    reports["episode_id"] = (int(open_ones.sort_values("last_session")["id"].iloc[-1])
                             if not open_ones.empty else None)
    return reports


def patient_reports(actor: Actor, patient_id: int) -> dict:
    """Return one patient's reports: `diary` (with `correctable`: still open to the patient's correction),
    `effects`, `history`, `annotations` (none for a patient), `pgic`, `psfs` (each activity's first and latest
    rating and the change), `psfs_activities` of the current episode with their `last_score`, the current
    `episode_id` (the latest open one with sessions, or None) and whether a PGIC answer is due (`pgic_due`)."""
    reports = dict(_reports(actor, patient_id))
    diary = reports["diary"].copy()
    now = pd.Timestamp.now(tz="UTC")
    diary["correctable"] = (pd.to_datetime(diary["correctable_until"], utc=True) > now) if len(diary) else []
    reports["diary"] = diary.sort_values("recorded_at", ascending=False, ignore_index=True)
    ratings, activities = reports["psfs_ratings"], reports["psfs_activities"]
    by_activity = ratings.sort_values("rated_at").groupby("activity_id")["score"]
    scores = pd.DataFrame({"first_score": by_activity.first(), "last_score": by_activity.last(),
                           "ratings": by_activity.size()})
    table = activities.merge(scores, left_on="activity_id", right_index=True, how="left")
    table["change"] = table["last_score"] - table["first_score"]
    reports["psfs"] = table
    reports["psfs_activities"] = table[table["episode_id"] == reports["episode_id"]]
    due = _due(actor, patient_id)
    reports["pgic_due"] = bool(((due["kind"] == "pgic") & (due["episode_id"] == reports["episode_id"])).any())
    return reports


def entry_history(reports: dict, entry_id: int) -> list[str]:
    """Return an entry's earlier values in plain words, oldest first ("First saved Tue 1 Dec 18:02: soreness 6 …"),
    each severity in the words the patient chose, as entry_words reads the entry back."""
    rows = reports["history"][reports["history"]["entry_id"] == entry_id]
    return [f"{'First saved' if row.version == 1 else 'Changed'} {pd.Timestamp(row.valid_from):%a %-d %b %H:%M}: "
            f"soreness {row.soreness} of 10{_effect_words(row.side_effects)}"
            f"{f' · “{row.note}”' if row.note else ''} (replaced {pd.Timestamp(row.replaced_at):%a %-d %b %H:%M})"
            for row in rows.itertuples()]


def _effect_words(packed: str) -> str:
    pairs = side_effects.parse(packed)  # the history keeps the effects as `code:severity` text
    return "".join(f" · {effect_in_patient_words(code, severity)}" for code, severity in pairs)


@resources.on_this_database
@st.cache_data(show_spinner="Summarising what patients reported…", ttl=3600)
def clinic_reports(url: str, version: Hashable, actor: Actor, by: str) -> dict:
    """Return the managers' aggregates by `by` ("technique" or "adjunct"): `soreness` means at 24/48/72 h with
    95 % intervals, `resolution` (Kaplan–Meier), `effects` per 100 sessions from both sources, `pgic` and `psfs`
    tables, their `figures`, and the `entries`, `sessions` and `patients` they rest on."""
    with Session(clinic_wide.engine(url)) as session:
        diary = report_queries.diary_soreness(session, actor=actor)
        effects = report_queries.reported_effects(session, actor=actor)
        pgic = report_queries.pgic_answers(session, actor=actor)
        psfs = report_queries.psfs_ratings(session, actor=actor)
    tables = {
        "soreness": patient_reported.soreness_means(diary, by),
        "resolution": patient_reported.resolution_curve(diary, by),
        "effects": patient_reported.effect_rates(effects, by),
        "pgic": patient_reported.pgic_improved(pgic, by),
        "psfs": patient_reported.psfs_summary(psfs, by),
    }
    return tables | {
        "entries": len(diary), "sessions": diary["session_id"].nunique(), "patients": diary["patient_id"].nunique(),
        "figures": {"soreness": soreness_means_figure(tables["soreness"], by),
                    "resolution": resolution_figure(tables["resolution"], by),
                    "effects": effects_figure(tables["effects"], by)},
    }


# -- figures (pure: frame in, Figure out) -----------------------------------------------------------------------------

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000", "#882255", "#44546A")  # Okabe–Ito and greys
HOURS_AXIS = dict(title="Hours after the session", tickvals=list(DIARY_WINDOWS), range=[0, 78])


def group_label(value: str) -> str:
    """Return a technique or adjunct code in words."""
    return TECHNIQUE_LABELS.get(value, str(value).replace("_", " ").capitalize())


def _colors(groups) -> dict:
    return {group: charts.TECHNIQUE_COLORS.get(group, PALETTE[i % len(PALETTE)]) for i, group in enumerate(groups)}


def _figure(fig: go.Figure, y_title: str, height: int = 380) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), font=charts.FONT, yaxis_title=y_title,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def soreness_figure(diary: pd.DataFrame) -> go.Figure:
    """Return one patient's soreness (0–10) by hours after each session, a line per session, the latest darkest."""
    fig = go.Figure()
    sessions = sorted(diary["session_date"].unique())
    for k, day in enumerate(sessions):
        rows = diary[diary["session_date"] == day].sort_values("window_h")
        fade = 0.25 + 0.75 * (k + 1) / len(sessions)
        fig.add_trace(go.Scatter(x=rows["window_h"], y=rows["soreness"], mode="lines+markers", name=str(day),
                                 line=dict(color=f"rgba(68,84,106,{fade:.2f})", width=3),
                                 marker=dict(size=9), hovertemplate="%{x} h: soreness %{y}<extra>" + str(day)
                                 + "</extra>"))
    fig.update_xaxes(**HOURS_AXIS)
    fig.update_yaxes(range=[-0.3, 10.3], dtick=2)
    return _figure(fig, "Soreness (0–10)", 340)


def soreness_means_figure(table: pd.DataFrame, by: str) -> go.Figure:
    """Return mean soreness at 24/48/72 h per group with 95 % intervals as error bars."""
    fig = go.Figure()
    groups = list(dict.fromkeys(table[by])) if not table.empty else []
    colors = _colors(groups)
    for offset, group in enumerate(groups):
        rows = table[table[by] == group]
        x = rows["window_h"] + (offset - (len(groups) - 1) / 2) * 2.5  # side by side, not on top of each other
        fig.add_trace(go.Scatter(
            x=x, y=rows["mean_soreness"], mode="lines+markers", name=group_label(group),
            line=dict(color=colors[group], width=3), marker=dict(size=9),
            error_y=dict(type="data", symmetric=False, array=rows["ci95_high"] - rows["mean_soreness"],
                         arrayminus=rows["mean_soreness"] - rows["ci95_low"]),
            customdata=rows[["window_h", "entries"]].to_numpy(),
            hovertemplate="%{customdata[0]} h: mean %{y:.1f} (n = %{customdata[1]})<extra></extra>"))
    fig.update_xaxes(**{**HOURS_AXIS, "tickvals": [24, 48, 72], "range": [12, 84]})
    fig.update_yaxes(rangemode="tozero")
    return _figure(fig, "Mean soreness (0–10)")


def resolution_figure(curve: pd.DataFrame, by: str) -> go.Figure:
    """Return the Kaplan–Meier share of sessions whose soreness has resolved by each diary window, per group."""
    fig = go.Figure()
    groups = list(dict.fromkeys(curve[by])) if not curve.empty else []
    colors = _colors(groups)
    for group in groups:
        rows = curve[curve[by] == group]
        fig.add_trace(go.Scatter(
            x=[0, *rows["window_h"]], y=[0, *(100 * rows["resolved_share"])], mode="lines+markers",
            name=group_label(group), line=dict(color=colors[group], width=3, shape="hv"), marker=dict(size=8),
            hovertemplate="%{x} h: %{y:.0f} % resolved<extra></extra>"))
    fig.update_xaxes(**HOURS_AXIS)
    fig.update_yaxes(range=[0, 100])
    return _figure(fig, "Sessions with soreness resolved (%)")


def effects_figure(table: pd.DataFrame, by: str) -> go.Figure:
    """Return side effects per 100 sessions (any, and significant or serious) as patients and clinicians report
    them, per group, with 95 % intervals."""
    fig = go.Figure()
    rows = table[(table["side_effect"] == patient_reported.ANY) & (table["severity"] == patient_reported.ANY)]
    for source, color in (("patient", "#AA4499"), ("clinician", "#0072B2")):
        own = rows[rows["source"] == source]
        fig.add_trace(go.Bar(
            x=own[by].map(group_label), y=own["per_100_sessions"], name=f"{source.capitalize()}-reported",
            marker_color=color, error_y=dict(type="data", symmetric=False,
                                             array=own["ci95_high"] - own["per_100_sessions"],
                                             arrayminus=own["per_100_sessions"] - own["ci95_low"]),
            customdata=own[["events", "sessions"]].to_numpy(),
            hovertemplate="%{y:.1f} per 100 sessions (%{customdata[0]} in %{customdata[1]})<extra></extra>"))
    fig.update_layout(barmode="group")
    return _figure(fig, "Side effects per 100 sessions")


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
    return _write(report_writes.record_diary_entry, actor=actor, session_id=session_id, soreness=soreness,
                  note=note, effects=pairs)


def correct_entry(actor: Actor, entry_id: int, soreness: int | None, effects: dict[str, str | None],
                  note: str) -> int:
    """Correct the patient's own entry (within a day of saving it; the old values are kept); return its id."""
    pairs = _checked(soreness, effects)
    return _write(report_writes.correct_diary_entry, actor=actor, entry_id=entry_id, soreness=soreness,
                  note=note, effects=pairs)


def record_pgic(actor: Actor, episode_id: int, score: int | None, before_session_id: int | None = None) -> int:
    """Store a PGIC answer (1 very much improved … 7 very much worse) for the episode; return its id."""
    if score is None:
        raise ValueError("Your answer: tap the one that fits best.")
    return _write(report_writes.record_pgic, actor=actor, episode_id=episode_id, score=score,
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
            activity = report_writes.name_psfs_activity(session, actor=actor, episode_id=episode_id,
                                                          position=position, name=name)
            report_writes.rate_psfs_activity(session, actor=actor, activity_id=activity.id, score=rating)
    resources.clear_after_write()


def rate_activities(actor: Actor, ratings: dict[int, int | None]) -> None:
    """Store a 0–10 rating of each PSFS activity rated (those left blank are skipped), all or none."""
    given = {activity: score for activity, score in ratings.items() if score is not None}
    if not given:
        raise ValueError("Ratings: tap a number for at least one activity.")
    with write_session(resources.engine()) as session:
        for activity, score in given.items():
            report_writes.rate_psfs_activity(session, actor=actor, activity_id=activity, score=score)
    resources.clear_after_write()


def annotate_entry(actor: Actor, entry_id: int, text: str) -> int:
    """Add a clinician's note to a diary entry (the entry never changes); return the note's id."""
    return _write(report_writes.annotate_entry, actor=actor, entry_id=entry_id, text=text)


def review_effect(actor: Actor, effect_id: int) -> None:
    """Mark a patient-reported significant or serious side effect as reviewed, so it leaves the alerts."""
    _write(report_writes.review_patient_effect, actor=actor, effect_id=effect_id)
