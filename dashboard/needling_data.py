"""The needling record's reads and writes (#16), beside dashboard.resources and dashboard.actions in the page-data
layer: the session form's defaults, a session's STRICTA completeness in words, the Needling record page's figures,
and the planned course and practitioner writes.

The page's figures rest on every session of the filtered episodes, counted in the database (db.stricta_queries:
the page reads counts, never the sessions themselves), so they are kept per data version (the newest audit row that
records a change, dashboard.clinic_wide) and filter, computed on the worker: a save anywhere makes the next visit
compute them again, a sign-in does not. Dose and outcome reads the pain and the dose of a fixed sample of episodes,
as the technique page's models do.
"""

from __future__ import annotations

from collections.abc import Hashable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlmodel import Session

from analytics import dose_outcome, stricta
from clinic.vocabulary import STRICTA_LABELS, TECHNIQUE_LABELS
from dashboard import background, charts, clinic_wide, resources
from db import accounts, episodes, queries, stricta_queries
from db.access import Actor
from db.engine import write_session
from db.queries import OutcomeFilter
from db.validation import SessionInput

DOSE_EPISODES = resources.SAMPLE_EPISODES  # the episodes whose pain dose and outcome reads, at most
RECORDED_COLOR, NOT_RECORDED_COLOR = "#0072B2", "#767676"


# The session form --------------------------------------------------------------------------------------------------


def last_needling_defaults(actor: Actor, patient_id: int) -> dict:
    """Return the needling record of the patient's latest session (the form's defaults; empty when none)."""
    with Session(resources.engine()) as session:
        return stricta_queries.last_needling_defaults(session, actor=actor, patient_id=patient_id)


def stored_needling(actor: Actor, session_id: int) -> dict:
    """Return one session's needling record as stored now, the correction form's start. Read afresh, never cached:
    the form writes every item back, so a record read before another correction would undo it."""
    with Session(resources.engine()) as session:
        return stricta_queries.session_needling(session, actor=actor, session_id=session_id)


def completeness_words(record: SessionInput | dict) -> str:
    """Return how complete a session's needling record is, in words: "STRICTA: 8 of 9 applicable items recorded
    (incomplete: 89%; complete at 90% or more). Not recorded: depth." (`record` a checked entry, or the form's
    defaults)."""
    values = record.model_dump() if isinstance(record, SessionInput) else dict(record)
    if isinstance(values.get("adjuncts"), list):  # the form's defaults hold the codes chosen
        values["adjuncts"] = ";".join(values["adjuncts"]) or None
    frame = pd.DataFrame([{name: values.get(name) for name in ("technique", *stricta.ITEMS)}], dtype=object)
    applies, reports = stricta.applicable(frame).iloc[0], stricta.reported(frame).iloc[0]
    missing = [item for item in stricta.ITEMS if applies[item] and not reports[item]]
    share = float(stricta.session_completeness(frame).iloc[0])
    verdict = "complete" if share >= stricta.COMPLETE_AT else "incomplete"
    gaps = f" Not recorded: {', '.join(STRICTA_LABELS[item][0].lower() for item in missing)}." if missing else ""
    return (f"STRICTA: {int(reports.sum())} of {int(applies.sum())} applicable items recorded ({verdict}: "
            f"{share:.0%}; complete at {stricta.COMPLETE_AT:.0%} or more).{gaps}")


def completeness_labels(sessions: pd.DataFrame) -> pd.Series:
    """Return each session's STRICTA completeness as a short label, "9 of 9 ✓" (complete) or "5 of 13", by the
    frame's index; empty when the frame does not hold the needling record's columns."""
    if sessions.empty or not {"technique", *stricta.ITEMS} <= set(sessions.columns):
        return pd.Series("", index=sessions.index, dtype=object)
    applies, reports = stricta.applicable(sessions).sum(axis=1), stricta.reported(sessions).sum(axis=1)
    complete = reports >= stricta.COMPLETE_AT * applies
    return reports.astype(str) + " of " + applies.astype(str) + complete.map({True: " ✓", False: ""})


def patient_completeness(actor: Actor, patient_id: int, sessions: pd.DataFrame) -> pd.Series:
    """Return the STRICTA label ("9 of 9 ✓") of each of the patient's `sessions` (a frame with `session_id` and
    `technique`, as dashboard.resources.patient_record gives it), by the frame's index."""
    record = _patient_needling(actor, patient_id)
    joined = sessions[["session_id", "technique"]].merge(record, on="session_id", how="left")
    joined.index = sessions.index
    return completeness_labels(joined)


@resources.on_this_database
@st.cache_data(show_spinner=False, ttl=3600)
def _patient_needling(url: str, version: Hashable, actor: Actor, patient_id: int) -> pd.DataFrame:
    with Session(clinic_wide.engine(url)) as session:
        return stricta_queries.patient_needling(session, actor=actor, patient_id=patient_id)


# The Needling record page ------------------------------------------------------------------------------------------


def needling_record(actor: Actor, where: OutcomeFilter) -> background.Analysis:
    """Return the Needling record page's figures for the filter (`value`, None until first computed): `sessions`
    and `episodes` counted, the share `complete`, the `completeness` by clinician and month with its `heat_map`
    figure, the STRICTA `table` (`python -m db summary --stricta`'s), its `markdown` for a methods section, the
    `dose` table with `figures`, one per dose, and the dates it covers (`first`, `last`).

    Kept once for everyone allowed to read clinic-wide figures, per data version and filter, and computed on the
    process's worker (dashboard.clinic_wide): at a network's size the read takes seconds, and a page shows the last
    result meanwhile."""
    return clinic_wide.clinic_wide("needling record", actor, _needling_record, where)


def _needling_record(reading: clinic_wide.Reading, where: OutcomeFilter) -> dict:
    # Counts made in the database, never every session (#15): a million sessions as one frame took ~770 MB.
    actor = reading.actor
    with Session(reading.engine) as session:
        counts, values = stricta_queries.stricta_counts(session, actor=actor, where=where)
        episodes = queries.count_episodes(session, actor=actor, where=where) if counts["sessions"].sum() else 0
        dates = stricta_queries.covered_dates(session, actor=actor, where=where)
        # Each sampled session's pain and dose in one read of only those columns: the pain read through
        # queries.outcome_sessions (with pseudonyms, dates, regions) added 16 MB to the page's peak at 1M sessions.
        # Only the sessions up to the one the outcome is read at (dose_outcome.ANSWER_SESSION): the pain and dose
        # after it are not read, and reading them raised the page's peak by 7 MB at a million sessions. Each part's
        # episodes are summarised as it is read: the sample held whole raised it by 7 MB more (8 on PostgreSQL).
        parts = stricta_queries.sample_needling(session, actor=actor, where=where, episodes=DOSE_EPISODES,
                                                columns=dose_outcome.SESSION_COLUMNS, up_to=dose_outcome.ANSWER_SESSION)
        doses = [dose_outcome.episode_doses(part[list(dose_outcome.SESSION_COLUMNS)]) for part in parts]
    counts["complete"] = stricta.complete_counted(counts)
    totals = record_totals(counts, episodes, dates)
    completeness = by_clinician_and_month(counts)
    table = stricta.table_from_counts(counts, values)
    dose = dose_outcome.dose_table(doses[0] if len(doses) == 1 else pd.concat(doses, ignore_index=True))
    return {
        **totals,
        "completeness": completeness,
        "heat_map": completeness_figure(completeness) if len(completeness) else None,
        "table": table,
        "markdown": methods_markdown(table, totals, where),
        "dose": dose,
        "figures": {column: dose_figure(dose[dose["dose"] == column], title)
                    for column, title in dose_outcome.dose_titles().items()},
    }


def record_totals(counts: pd.DataFrame, episodes: int, dates: tuple) -> dict:
    """Return the `sessions` and `episodes` counted, the share `complete` (None without sessions) and the dates
    covered, `first` and `last` (`dates`: stricta_queries.covered_dates; None without sessions), from
    `stricta_queries.completeness_counts` with a column `complete` (analytics.stricta.complete_counted)."""
    sessions = int(counts["sessions"].sum())
    if not sessions:
        return {"sessions": 0, "episodes": 0, "complete": None, "first": None, "last": None}
    complete = int(counts.loc[counts["complete"], "sessions"].sum())
    first, last = dates
    return {"sessions": sessions, "episodes": episodes, "complete": complete / sessions, "first": first, "last": last}


def by_clinician_and_month(counts: pd.DataFrame) -> pd.DataFrame:
    """Return per clinician and month (`YYYY-MM`) the `sessions`, those `complete` (at least COMPLETE_AT of their
    applicable STRICTA items) and their `share`, with a row per clinician and month that has sessions, from
    `stricta_queries.completeness_counts` with a column `complete` (analytics.stricta.complete_counted)."""
    if not counts["sessions"].sum():
        return pd.DataFrame(columns=["clinician", "month", "sessions", "complete", "share"])
    frame = pd.DataFrame({
        "clinician": counts["clinician"].fillna("not recorded"),
        "month": counts["month"],
        "sessions": counts["sessions"],
        "complete": counts["sessions"].where(counts["complete"], 0),
    })
    grouped = frame.groupby(["clinician", "month"]).sum()
    grouped["share"] = grouped["complete"] / grouped["sessions"]
    grouped = grouped.reset_index().astype({"sessions": int, "complete": int})
    grouped["month"] = [f"{month // 100:04d}-{month % 100:02d}" for month in grouped["month"]]
    return grouped


def completeness_figure(completeness: pd.DataFrame) -> go.Figure:
    """Return the share of complete sessions as a heat map: clinicians down, months across, sessions on hover."""
    share = completeness.pivot(index="clinician", columns="month", values="share")
    count = completeness.pivot(index="clinician", columns="month", values="sessions").reindex_like(share)
    fig = go.Figure(go.Heatmap(
        z=share.to_numpy() * 100, x=list(share.columns), y=list(share.index), zmin=0, zmax=100,
        colorscale="Blues", colorbar=dict(title="% complete"), customdata=count.to_numpy(),
        hovertemplate="%{y}, %{x}: %{z:.0f} % of %{customdata} sessions complete<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_xaxes(title=None, type="category")
    fig.update_layout(height=max(220, 60 + 32 * len(share)), margin=dict(l=10, r=10, t=30, b=10), font=charts.FONT)
    return fig


def dose_figure(rows: pd.DataFrame, title: str) -> go.Figure:
    """Return one dose's groups as points with their 95 % interval and n: hollow where fewer than 10 episodes,
    grey for the episodes whose dose was not recorded."""
    shown = rows[rows["episodes"] > 0]
    fig = go.Figure()
    for recorded in (True, False):
        part = shown[(shown["group"] != dose_outcome.NOT_RECORDED) == recorded]
        color = RECORDED_COLOR if recorded else NOT_RECORDED_COLOR
        fig.add_trace(go.Scatter(
            x=part["group"], y=part["mean_improvement_pct"], mode="markers+text", name="recorded" if recorded
            else "not recorded", text=[f"n = {n}" for n in part["episodes"]], textposition="middle right",
            marker=dict(size=12, color=color, symbol=["circle-open" if small else "circle" for small in part["small"]]),
            error_y=dict(type="data", symmetric=False, array=part["ci95_high_pct"] - part["mean_improvement_pct"],
                         arrayminus=part["mean_improvement_pct"] - part["ci95_low_pct"], color=color),
            hovertemplate="%{x}: %{y:.1f} % (%{text})<extra></extra>",
        ))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(rows["group"]), title=title)
    fig.update_yaxes(title="Improvement at session 4 (%)", zeroline=True)
    fig.update_layout(height=360, showlegend=False, margin=dict(l=10, r=10, t=30, b=10), font=charts.FONT)
    return fig


def methods_markdown(table: pd.DataFrame, totals: dict, where: OutcomeFilter) -> str:
    """Return the STRICTA table as Markdown for a methods section: a sentence saying what it covers (`totals`, as
    `record_totals` gives them), then the table (completeness in percent, the distribution as `summary --stricta`
    words it)."""
    if not totals["sessions"]:
        return "No sessions match these filters.\n"
    period = f"{totals['first']:%Y-%m-%d} to {totals['last']:%Y-%m-%d}"
    sentence = (
        f"Needling was recorded in routine care for {totals['sessions']:,} sessions of "
        f"{totals['episodes']:,} episodes of care ({period}; {filter_words(where)}), following STRICTA "
        f"(MacPherson et al. 2010) items 1–6. {totals['complete']:.0%} of sessions recorded at least "
        f"{stricta.COMPLETE_AT:.0%} of the items that applied to them (electrical stimulation parameters apply to "
        "electrical dry needling only). Table: completeness and distribution of each item by technique "
        "(median and interquartile range, or shares)."
    )
    header = "| Technique | Item | Applicable sessions | Reported | Completeness | Distribution |"
    lines = [sentence, "", header, "| --- | --- | ---: | ---: | ---: | --- |"]
    for row in table.itertuples():
        technique = TECHNIQUE_LABELS.get(row.technique, "All techniques")
        item = item_words(row.item)
        distribution = str(row.distribution).replace("|", "/") if pd.notna(row.distribution) else ""
        lines.append(f"| {technique} | {item} | {row.applicable_sessions} | {row.reported_sessions} | "
                     f"{row.completeness:.0%} | {distribution} |")
    return "\n".join(lines) + "\n"


def item_words(item: str) -> str:
    """Return a STRICTA item in words with its unit: "Depth (mm)", "Retention (s)", "Side"."""
    label, unit = STRICTA_LABELS.get(item, (item, ""))
    unit = unit.split(" (")[0] if unit not in ("", "needle insertions") else ""
    return f"{label} ({unit})" if unit else label


def filter_words(where: OutcomeFilter) -> str:
    """Return a filter in words for the methods sentence ("all episodes" when none is set)."""
    parts = [
        ", ".join(c.replace("_", " ") for c in where.conditions),
        ", ".join(TECHNIQUE_LABELS[t].lower() for t in where.techniques),
        ", ".join(f"first seen by {c}" for c in where.clinicians),
        where.dates_in_words(),
    ]
    return "; ".join(p for p in parts if p) or "all episodes"


def table_csv(table: pd.DataFrame) -> bytes:
    """Return the STRICTA table as CSV, the contract's columns and rounding."""
    return table.to_csv(index=False, lineterminator="\n").encode("utf-8")


# Writes: the planned course and the practitioner's background (STRICTA items 3 and 5) --------------------------------


def plan_course(actor: Actor, episode_id: int, planned_sessions: int | None, planned_per_week: float | None) -> None:
    """Set an episode's planned course (sessions, sessions a week; None: not recorded); InvalidInput naming what is
    refused. Audited in the same transaction."""
    with write_session(resources.engine()) as session:
        episodes.plan_course(session, actor=actor, episode_id=episode_id, planned_sessions=planned_sessions,
                             planned_per_week=planned_per_week)
    resources.clear_after_write()


def start_planned_episode(actor: Actor, patient_id: int, planned_sessions: int | None,
                          planned_per_week: float | None, **fields) -> int:
    """Start a patient's next episode of care (condition, body_region, goal, started_on) with its planned course, in
    one transaction: both or neither. Return its number; InvalidInput naming each field refused."""
    with write_session(resources.engine()) as session:
        episode = episodes.start_episode(session, actor=actor, patient_id=patient_id, **fields)
        episodes.plan_course(session, actor=actor, episode_id=episode.id, planned_sessions=planned_sessions,
                             planned_per_week=planned_per_week)
        number = episode.number
    resources.clear_after_write()
    return number


def set_needling_background(actor: Actor, username: str, training: str | None, years: int | None) -> None:
    """Set a staff account's needling training and years of needling practice (STRICTA item 5; admins, or a
    clinician their own); ValueError naming what is refused. Audited in the same transaction."""
    with write_session(resources.engine()) as session:
        accounts.set_needling_background(session, actor=actor, username=username, training=training, years=years)
    resources.clear_after_write()
