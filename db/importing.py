"""Import validated sessions, all rows or none, in the caller's one transaction (docs/DESIGN.md section 5).

Built for files of 100,000 rows: `db.import_plan` reads what the database holds in a few queries and decides what
each row does; the writes then go out as bulk statements to the Core tables (ORM-enabled bulk INSERT … RETURNING
runs row by row), in the order `import_sessions` shows, each step a function below it in that order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime

from sqlalchemy import bindparam, delete, update
from sqlmodel import Session

from clinic import side_effects
from db import audit, bulk, import_plan, numbering, rollup_import, rollups
from db.access import CLINICAL_WRITERS, Actor, require_role
from db.fields import SESSION_FIELDS, audited
from db.file_validation import valid_rows
from db.import_plan import Plan, TakeFileValues
from db.import_result import ImportResult
from db.models import Episode, Patient, SideEffect, TreatmentSession, utcnow
from db.patient_search import search_id
from db.validation import SessionInput
from db.writes import get_or_create_clinician

_IMPORT_CACHE_KIB = 256 * 1024  # SQLite's page cache while importing; it takes only the pages it needs
_PATIENTS, _EPISODES, _SESSIONS = Patient.__table__, Episode.__table__, TreatmentSession.__table__
_AUDITED = (*SESSION_FIELDS, "clinician_id")  # an imported session's audited values, with its side effects


def plan_import(session: Session, *, actor: Actor, entries: Sequence[SessionInput],
                take_file_values: TakeFileValues = False, gap_days: int | None = None) -> ImportResult:
    """Return what importing these validated sessions would do (new, updated, unchanged), writing nothing.

    `result.changes` lists every field each update changes, `result.new_episodes` the episodes of care it starts;
    see `import_sessions` for `take_file_values` and `gap_days`.
    """
    require_role(actor, CLINICAL_WRITERS, "import clinical data")
    return import_plan.plan(session, valid_rows(entries), take_file_values, gap_days).result


def import_sessions(
    session: Session, *, actor: Actor, entries: Sequence[SessionInput], source: str = "",
    take_file_values: TakeFileValues = False, gap_days: int | None = None,
) -> ImportResult:
    """Write validated sessions in the caller's transaction: new ones inserted, changed ones updated, same ones left.

    A session is identified by patient, date, technique and entry order (docs/DESIGN.md section 5), so importing the
    same file twice changes nothing. A session that was deleted in the app stays deleted (restore it instead).
    A session corrected in the app since it was last imported is a conflict: left as corrected, unless
    `take_file_values` is True or holds its session id. A `clinician` cell may name a clinician account, or a new
    one that the import creates (audited); a cell naming an account of another role refuses the file.
    A row goes to the episode of care its `episode` cell numbers; with none, to the one `db.episodes`' rule gives
    (`gap_days`: the long gap, by default the configured one), which may start a new episode.
    Every inserted and updated session is audited, and so is the import itself.
    """
    require_role(actor, CLINICAL_WRITERS, "import clinical data")
    with _page_cache(session, _IMPORT_CACHE_KIB), bulk.collector_paused():
        plan = import_plan.plan(session, valid_rows(entries), take_file_values, gap_days)
        regions = _regions(plan)
        filled = [key for key, episode in plan.episodes.items() if regions.get(key) and not episode["body_region"]]
        _touch_rollups(session, plan, filled)
        now = utcnow()
        patient_ids = _create_patients(session, plan, now)
        clinician_ids = _create_clinicians(session, plan, actor, source)
        episode_ids = _create_episodes(session, plan, regions, filled, patient_ids, now)
        _write_sessions(session, actor, plan, episode_ids, clinician_ids, source, now)
        rollup_import.add_new_episodes(session, [episode_id for key, episode_id in episode_ids.items()
                                                 if key[0] not in plan.patients])  # those of new patients
        audit.record(session, actor, "import", "file", detail=f"{source}: {plan.result.summary()}")
    return plan.result


@contextmanager
def _page_cache(session: Session, kibibytes: int) -> Iterator[None]:
    """Give SQLite's page cache up to this much memory while the block runs, then the connection's own size again.

    An import writes every page of the new rows and of the indexes they go into; with SQLite's default of 2 MiB,
    the pages are written out to the WAL and read back several times before the commit.
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = session.connection()
    previous = int(connection.exec_driver_sql("PRAGMA cache_size").scalar())
    connection.exec_driver_sql(f"PRAGMA cache_size = -{int(kibibytes)}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {previous}")


def _regions(plan: Plan) -> dict[tuple, str | None]:
    """Return the body region of each episode of the file's rows: the first one the file gives it."""
    regions: dict[tuple, str | None] = {}
    for key, region in zip(plan.row_episodes, plan.rows.columns["body_region"], strict=True):
        if key is not None and not regions.get(key):
            regions[key] = region
    return regions


def _touch_rollups(session: Session, plan: Plan, filled: list[tuple]) -> None:
    """Before anything is written, mark the stored patients whose episodes the import changes for the roll-ups.

    A re-import that changes nothing leaves the roll-ups alone. A patient new to the database has no sums to take
    out: its episodes' sums are added once written (`rollup_import`).
    """
    pseudonyms = plan.rows.columns["patient_id"]
    touched = {pseudonyms[i] for i in plan.new} | {pseudonyms[i] for i, _ in plan.updates} | {p for p, *_ in filled}
    rollups.touch_patients(session, touched.intersection(plan.patients))


def _create_patients(session: Session, plan: Plan, now: datetime) -> dict[str, int]:
    """Return the id of every patient of the file, creating the new ones."""
    ids = dict(plan.patients)
    new = [p for p in dict.fromkeys(plan.rows.columns["patient_id"]) if p not in ids]
    if new:
        before = bulk.highest_id(session, _PATIENTS)
        bulk.insert_columns(session, _PATIENTS, {"pseudonym": new, "search_id": [search_id(p) for p in new],
                                                 "created_at": now})
        ids.update(zip(new, bulk.inserted_ids(session, _PATIENTS, before, ("pseudonym",), [(p,) for p in new]),
                       strict=True))
    return ids


def _create_clinicians(session: Session, plan: Plan, actor: Actor, source: str) -> dict[str, int]:
    """Return the id of every account by username, creating (and auditing) the clinicians new to the database."""
    ids = dict(plan.users)
    for username in plan.result.new_clinicians:
        ids[username] = get_or_create_clinician(session, username, actor, f"import {source}").id
    return ids


def _create_episodes(session: Session, plan: Plan, regions: dict[tuple, str | None], filled: list[tuple],
                     patient_ids: dict[str, int], now: datetime) -> dict[tuple, int]:
    """Return the id of every episode of the file's rows, creating the new ones the rows written go to.

    As `db.episodes.new_episode`: a new episode takes its body region from the file and starts on its first row's
    date, and an existing episode without a region (those `filled`) takes the first region the file gives it.
    """
    ids = {key: episode["id"] for key, episode in plan.episodes.items() if key in regions}
    if filled:
        session.execute(
            update(_EPISODES).where(_EPISODES.c.id == bindparam("b_id")).values(body_region=bindparam("region")),
            [{"b_id": plan.episodes[key]["id"], "region": regions[key]} for key in filled],
        )
    new = [(episode.patient_id, episode.condition, episode.number) for episode in plan.result.new_episodes]
    if new:
        first: dict[tuple, date] = {}
        for key, day in zip(plan.row_episodes, plan.rows.columns["session_date"], strict=True):
            if key is not None:
                first[key] = min(first.get(key, day), day)
        before = bulk.highest_id(session, _EPISODES)
        keys = [(patient_ids[p], c, n) for p, c, n in new]
        bulk.insert_columns(session, _EPISODES, {
            "patient_id": [patient for patient, _, _ in keys], "condition": [c for _, c, _ in keys],
            "number": [n for _, _, n in keys], "body_region": [regions[key] for key in new],
            "started_on": [first[key] for key in new], "created_at": now,
        })
        ids.update(zip(new, bulk.inserted_ids(session, _EPISODES, before, ("patient_id", "condition", "number"), keys),
                       strict=True))
    return ids


def _write_sessions(session: Session, actor: Actor, plan: Plan, episode_ids: dict[tuple, int],
                    clinician_ids: dict[str, int], source: str, now: datetime) -> None:
    """Update the changed sessions and insert the new ones, numbered by date in their episodes; every one audited."""
    columns = plan.rows.columns
    # Every row's stored values, column by column; then the changed rows' and the new rows' share of them.
    stored = plan.stored | {
        "episode_id": [None if key is None else episode_ids[key] for key in plan.row_episodes],
        "clinician_id": [clinician_ids[c] if c else None for c in columns["clinician"]],
    }
    updates = [(current, {name: values[index] for name, values in stored.items()}, columns["side_effects"][index])
               for index, current in plan.updates]
    every_row = len(plan.new) == len(plan.rows)
    new = stored if every_row else {name: [values[i] for i in plan.new] for name, values in stored.items()}
    new_effects = columns["side_effects"] if every_row else [columns["side_effects"][i] for i in plan.new]

    before = bulk.highest_id(session, _SESSIONS)  # the new sessions take the ids after it, in file order
    moved, new["session_number"] = _numbers(plan.live, updates, new, before)
    # Each episode's (condition, number) by id, for the audit rows: those stored and those just created.
    episodes = {episode["id"]: key[1:] for key, episode in plan.episodes.items()}
    episodes |= {episode_id: key[1:] for key, episode_id in episode_ids.items()}
    with numbering.renumbering(session, moved):  # the numbers of moved sessions are free for the writes below
        _update_sessions(session, actor, updates, episodes, source)
        if plan.new:
            bulk.insert_columns(session, _SESSIONS, new | {"created_at": now})
    ids = _new_session_ids(session, before, new) if plan.new else []
    _insert_side_effects(session, ids, new_effects)
    created = {name: new[name] for name in _AUDITED} | {
        "side_effects": list(map(side_effects.format, new_effects)),
        "episode": [episodes[episode_id][1] for episode_id in new["episode_id"]]}
    pseudonyms = columns["patient_id"] if every_row else [columns["patient_id"][i] for i in plan.new]
    audit.record_many(session, actor, "create", "session", ids, created, detail=f"import {source}",
                      patients=pseudonyms)  # a new session's patient is its row's


def _numbers(live: dict[int, dict], updates: list, new: dict[str, list], before: int
             ) -> tuple[dict[int, int], list[int]]:
    """Number the sessions of every episode the import touches by date, as `db.numbering.in_date_order` does.

    Returns the number of each existing session whose number or episode changes, and the number of each new row.
    A new row is numbered as the id it will take, after `before` in file order (checked once inserted): after the
    existing sessions of its date, and in file order among the new ones.
    """
    episode_of = {sid: stored["episode_id"] for sid, stored in live.items()}
    touched = set(new["episode_id"])
    for current, values, _ in updates:
        touched.update((current["episode_id"], values["episode_id"]))
        episode_of[current["session_id"]] = values["episode_id"]
    existing = {sid: episode for sid, episode in episode_of.items() if episode in touched}
    first = before + 1
    numbers = numbering.in_date_order(
        [(episode, live[sid]["session_date"], sid, sid) for sid, episode in existing.items()]
        + [(episode, day, first + i, first + i)
           for i, (episode, day) in enumerate(zip(new["episode_id"], new["session_date"], strict=True))]
    )
    moved = {sid: numbers[sid] for sid, episode in existing.items()
             if (episode, numbers[sid]) != (live[sid]["episode_id"], live[sid]["session_number"])}
    return moved, [numbers[first + i] for i in range(len(new["episode_id"]))]


def _update_sessions(session: Session, actor: Actor, updates: list, episodes: dict[int, tuple], source: str) -> None:
    """Write the changed sessions' values and side effects, each update audited with the values before and after
    (and the condition and number of its episode of care, by id in `episodes`, when the session moves)."""
    if not updates:
        return
    names = list(updates[0][1])
    session.execute(
        update(_SESSIONS).where(_SESSIONS.c.id == bindparam("b_id")).values({k: bindparam(f"v_{k}") for k in names}),
        [{"b_id": current["session_id"], **{f"v_{k}": values[k] for k in names}} for current, values, _ in updates],
    )
    ids = [current["session_id"] for current, _, _ in updates]
    for chunk in bulk.chunks(ids):
        session.execute(delete(SideEffect).where(SideEffect.session_id.in_(chunk)))
    _insert_side_effects(session, ids, [effects for _, _, effects in updates])
    for current, values, effects in updates:
        before, after = audited(current, current["side_effects"], _AUDITED), audited(values, effects, _AUDITED)
        for values_of, episode_id in ((before, current["episode_id"]), (after, values["episode_id"])):
            values_of["condition"], values_of["episode"] = episodes[episode_id]
        changed = {k for k in after if before.get(k) != after[k]}
        audit.record(session, actor, "update", "session", current["session_id"], detail=f"import {source}",
                     before={k: before.get(k) for k in changed}, after={k: after[k] for k in changed})


def _new_session_ids(session: Session, before: int, new: dict[str, list]) -> list[int]:
    """Return the ids of the sessions just inserted, in file order, found by their (episode, number), unique while live.

    Their numbers assumed ids above `before` in insertion order (SQLite gives them, and so does a PostgreSQL
    sequence under the write lock). Should the ids say otherwise, their episodes are numbered again.
    """
    keys = list(zip(new["episode_id"], new["session_number"], strict=True))
    ids = bulk.inserted_ids(session, _SESSIONS, before, ("episode_id", "session_number"), keys)
    if not (ids[0] > before and all(a < b for a, b in zip(ids, ids[1:], strict=False))):
        numbering.renumber(session, set(new["episode_id"]))
    return ids


def _insert_side_effects(session: Session, session_ids: list[int], effects: list[list[side_effects.Pair]]) -> None:
    rows = [(session_id, code, severity)
            for session_id, pairs in zip(session_ids, effects, strict=True) if pairs
            for code, severity in pairs]
    if rows:
        session_id, code, severity = (list(column) for column in zip(*rows, strict=True))
        bulk.insert_columns(session, SideEffect.__table__, {"session_id": session_id, "code": code,
                                                            "severity": severity})
