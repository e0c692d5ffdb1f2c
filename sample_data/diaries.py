"""Generate the demo patient reports: soreness diaries, PGIC answers and PSFS ratings for the sample sessions.

Run from the repo root as ``python -m sample_data.diaries`` (writes ``sample_data/diary.csv``, ``pgic.csv`` and
``psfs.csv``, in the files of docs/DESIGN.md §5 "Patient-reported data in files", sorted as an export sorts them).
Everything is derived from the committed ``sessions.csv`` with one seeded numpy generator and no clock, so the same
sessions always give byte-identical files; ``python -m db seed`` loads them after the sessions.

The invented reporting (issue #17; docs/METHODS.md "Patient-reported outcomes"):
- About 60 % of patients keep the diary, the demo patient ``P0002`` always. A keeper skips a whole session's diary
  now and then (15 %) and single entries more often the later they are due, so the 72 h entry is the most often
  missing, as in diary studies.
- Soreness peaks at 6–24 h and fades by 72 h (Martín-Pintado-Zugasti 2014): a per-session peak (deep 4.5,
  electrical 4, superficial 2.5 of 10, sd 1.5) times 0.9, 1, 0.55 and 0.2 at 6, 24, 48 and 72 h, plus noise;
  cold spray or massage (when the sessions file records adjuncts) lowers it by about one point.
- Entries at their real time: the window's nominal hour plus noise, inside the window, after the session's noon.
- Side effects mostly mild (bruising, tiredness, headache…), soreness over 72 h where the 72 h score is still
  high, and exactly three significant ones, one of them the demo patient's, so the alerts show something.
- PGIC before most follow-up sessions, following the patient's pain (much improved when pain fell by half); PSFS:
  two or three activities named at the first session, rated then and before every second session after it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from clinic import side_effects as side_effect_text
from clinic.patient_reports import DIARY_WINDOWS, PATIENT_EFFECT_CODES, WINDOW_HOURS
from db import report_exchange

SEED = 20261202
HERE = Path(__file__).resolve().parent
SESSIONS_CSV = HERE / "sessions.csv"
PATHS = {"diary": HERE / "diary.csv", "pgic": HERE / "pgic.csv", "psfs": HERE / "psfs.csv"}
DEMO_PATIENT = "P0002"
KEEPER_SHARE = 0.6
SKIP_SESSION = 0.15
ANSWERED = {6: 0.65, 24: 0.85, 48: 0.75, 72: 0.6}  # chance a keeper fills each window
PEAK = {"superficial": 2.5, "deep": 4.5, "electrical": 4.0}
PROFILE = {6: 0.9, 24: 1.0, 48: 0.55, 72: 0.2}
SOOTHING = ("cold_spray", "massage")
MILD_EFFECTS = {  # checklist code -> chance per session's diary (reported in one entry)
    "bruising": 0.10, "bleeding": 0.02, "fatigue": 0.06, "headache": 0.03, "nausea": 0.01, "faintness": 0.01,
    "other": 0.01,
}
FIRST_WINDOW = {"bruising": 24, "bleeding": 6, "fatigue": 6, "headache": 6, "nausea": 6, "faintness": 6,
                "other": 24, "soreness_over_72h": 72}
NOTES = ("Stiff first thing in the morning", "Took paracetamol in the evening", "Better after a hot shower",
         "Sore when turning, fine at rest", "Slept well")
OTHER_NOTE = "Itchy red patch where the needle went in"
ACTIVITIES = {
    "neck_pain": ("Turning my head to reverse the car", "Reading for half an hour", "Sleeping through the night"),
    "low_back_pain": ("Putting on socks", "Sitting through a film", "Lifting the shopping"),
    "plantar_fasciitis": ("First steps in the morning", "Walking the dog for 30 minutes", "Standing at work"),
    "lateral_epicondylalgia": ("Lifting a kettle", "Typing for an hour", "Opening jars"),
    "shoulder_pain": ("Reaching the top shelf", "Putting on a coat", "Sleeping on that side"),
    "headache": ("Working at the screen all day", "Reading", "Driving for an hour"),
    "sciatica": ("Walking to the shops", "Sitting at my desk", "Getting out of the car"),
    "carpal_tunnel": ("Holding a phone", "Writing by hand", "Buttoning a shirt"),
    "hamstring_strain": ("Running 5 km", "Climbing stairs two at a time", "Bending to tie my shoes"),
    "other": ("Carrying a bag", "Climbing stairs", "Housework"),
}


def _moment(day: str, hours: float) -> datetime:
    """Return the time `hours` after noon (UTC) of `day`, to the minute: db.patient_reports.session_moment of an
    imported session."""
    noon = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
    return noon + timedelta(minutes=round(hours * 60))


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"  # as db.report_exchange.moment_text


def read_sessions(path: Path = SESSIONS_CSV) -> pd.DataFrame:
    """Return the sample sessions with each one's entry order among the patient's sessions of that date and
    technique (`session_entry`, as the interchange identifies a session), its number and pain on 0–100."""
    sessions = pd.read_csv(path, dtype=str, keep_default_na=False)
    sessions["session_entry"] = sessions.groupby(["patient_id", "session_date", "technique"]).cumcount() + 1
    sessions["number"] = sessions.groupby("patient_id").cumcount() + 1  # one episode per patient, dates in order
    scale = np.where(sessions["pain_scale"] == "nrs_10", 10.0, 1.0)
    sessions["pain"] = sessions["pain_before"].astype(float) * scale
    if "adjuncts" not in sessions:
        sessions["adjuncts"] = ""
    return sessions


def _diary(rng: np.random.Generator, sessions: pd.DataFrame, keepers: set[str]) -> list[list[str]]:
    rows = []
    for s in sessions.itertuples(index=False):
        demo = s.patient_id == DEMO_PATIENT
        if s.patient_id not in keepers or (not demo and rng.random() < SKIP_SESSION):
            continue
        soothed = any(code in SOOTHING for code in s.adjuncts.split(";"))
        peak = max(0.0, rng.normal(PEAK[s.technique], 1.5) - (1.0 if soothed else 0.0))
        filled = [w for w in DIARY_WINDOWS if demo and w != 48 or not demo and rng.random() < ANSWERED[w]]
        if demo and s.number % 3:  # the demo patient misses a 48 h entry now and then, as others do
            filled = sorted({*filled, 48})
        if not filled:
            continue
        scores = {w: int(np.clip(round(peak * PROFILE[w] + rng.normal(0, 0.7)), 0, 10)) for w in DIARY_WINDOWS}
        effects: dict[int, list[tuple[str, str]]] = {w: [] for w in filled}
        for code, chance in MILD_EFFECTS.items():
            if rng.random() < chance:
                window = min((w for w in filled if w >= FIRST_WINDOW[code]), default=filled[-1])
                effects[window].append((code, "mild"))
        if 72 in filled and scores[72] >= 3:
            effects[72].append(("soreness_over_72h", "mild"))
        for w in filled:
            start, end = WINDOW_HOURS[w]
            hours = float(np.clip(w + rng.normal(0, 3), start + 0.5, end - 0.5))
            pairs = sorted(effects[w], key=lambda p: PATIENT_EFFECT_CODES.index(p[0]))
            note = OTHER_NOTE if any(c == "other" for c, _ in pairs) else (
                NOTES[int(rng.integers(len(NOTES)))] if rng.random() < 0.06 else "")
            rows.append([s.patient_id, s.session_date, s.technique, str(s.session_entry), str(w),
                         _text(_moment(s.session_date, hours)), str(scores[w]),
                         side_effect_text.format(pairs), note])
    return rows


def _make_significant(rows: list[list[str]]) -> None:
    """Raise three reported effects to `significant`: the demo patient's first, and two others spread out."""
    with_effect = [i for i, row in enumerate(rows) if row[7]]
    demo = [i for i in with_effect if rows[i][0] == DEMO_PATIENT]
    chosen = ([demo[0]] if demo else []) + [with_effect[len(with_effect) // 3], with_effect[2 * len(with_effect) // 3]]
    for i in chosen[:3]:
        (code, _), *others = side_effect_text.parse(rows[i][7])
        rows[i][7] = side_effect_text.format([(code, "significant"), *others])


def _pgic_score(rng: np.random.Generator, improvement: float) -> int:
    """Return a PGIC answer that follows the share of pain gone since the first session (with some noise)."""
    centre = 1.3 if improvement >= 0.5 else 2.2 if improvement >= 0.3 else 3.2 if improvement >= 0.1 else \
        4.0 if improvement > -0.1 else 5.3
    return int(np.clip(round(centre + rng.normal(0, 0.6)), 1, 7))


def _pgic_and_psfs(rng: np.random.Generator, sessions: pd.DataFrame, keepers: set[str]):
    pgic, psfs = [], []
    for patient, own in sessions.groupby("patient_id", sort=True):
        if patient not in keepers:
            continue
        own = own.reset_index(drop=True)
        condition, baseline = own.loc[0, "condition"], own.loc[0, "pain"]
        demo = patient == DEMO_PATIENT
        for k in range(1, len(own)):
            if demo or rng.random() < 0.7:
                s = own.loc[k]
                improvement = (baseline - s["pain"]) / baseline if baseline else 0.0
                by = "clinician" if not demo and rng.random() < 0.1 else "patient"
                answered = _moment(s["session_date"], -18 + rng.normal(0, 2))  # the evening before
                pgic.append([patient, condition, "1", _text(answered), str(_pgic_score(rng, improvement)), by,
                             s["session_date"], s["technique"], str(s["session_entry"])])
        count = 3 if demo else int(rng.choice([2, 3], p=[0.4, 0.6]))
        named_by = "patient" if demo or rng.random() < 0.7 else "clinician"
        named = _moment(own.loc[0, "session_date"], -1)
        start = [float(np.clip(round(rng.normal(3, 1.5)), 0, 8)) for _ in range(count)]
        for k in range(0, len(own), 2):
            s = own.loc[k]
            gone = max(-0.3, (baseline - s["pain"]) / baseline) if baseline else 0.0
            for position in range(count):
                score = start[position] if k == 0 else np.clip(
                    round(start[position] + gone * (10 - start[position]) * rng.uniform(0.6, 1.2)
                          + rng.normal(0, 0.8)), 0, 10)
                rated = _moment(s["session_date"], -1 + position / 60)
                psfs.append([patient, condition, "1", str(position + 1), ACTIVITIES[condition][position],
                             _text(named), named_by, _text(rated), str(int(score)), named_by])
    return pgic, psfs


def generate(sessions_csv: Path = SESSIONS_CSV, seed: int = SEED) -> dict[str, pd.DataFrame]:
    """Return the three tables (`diary`, `pgic`, `psfs`) of text cells for the sessions file, sorted by their
    keys as db.report_exchange sorts an export."""
    rng = np.random.default_rng(seed)
    sessions = read_sessions(sessions_csv)
    patients = sorted(sessions["patient_id"].unique())
    keepers = {p for p in patients if p == DEMO_PATIENT or rng.random() < KEEPER_SHARE}
    diary = _diary(rng, sessions, keepers)
    _make_significant(diary)
    pgic, psfs = _pgic_and_psfs(rng, sessions, keepers)
    return report_exchange.sorted_tables({"diary": diary, "pgic": pgic, "psfs": psfs})


def to_csv_text(table: pd.DataFrame) -> str:
    """Return the CSV text written for a table: no index, LF line ends, empty cells empty."""
    return table.to_csv(index=False, lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    """Write the three files (into the directory given as the only argument, else sample_data/) and return 0."""
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else HERE
    for kind, table in generate().items():
        (directory / PATHS[kind].name).write_text(to_csv_text(table), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
