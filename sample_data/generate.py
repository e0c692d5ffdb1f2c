"""Generate the demo data set: synthetic dry-needling sessions in the interchange format.

Run from the repo root as ``python -m sample_data.generate`` (writes ``sample_data/sessions.csv``) or import
``generate`` to build larger data sets for benchmarks. Everything comes from one seeded numpy generator and no
clock is read, so the same arguments always give byte-identical CSV.

What the invented clinic is like (clinicians, conditions, techniques, side-effect rates, notes) is in
``sample_data.parameters``; this module draws the episodes of care and their sessions from it: pain over the course
of treatment, drop-out of non-responders and of patients whose pain is already low, the edge cases, and per session
the side effects, notes and muscles treated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from clinic import side_effects as side_effect_text
from db.interchange import COLUMNS as INTERCHANGE_COLUMNS
from db.interchange import EXTRA_COLUMNS, STRICTA_COLUMNS, number_text
from sample_data import parameters
from sample_data.parameters import (
    ALL_SIDE_EFFECT_CODES,
    CLINICIANS,
    COMMON_NOTES,
    CONDITION_EFFECT,
    CONDITIONS,
    OTHER_REGIONS,
    REGION_MUSCLES,
    REGIONS,
    SCALES,
    SIDE_EFFECT_RATES,
    SIGNIFICANT_EVENTS,
    SPECIAL_NOTES,
    TECHNIQUE_MODEL,
    TECHNIQUE_RISK,
    TECHNIQUES,
    clinician_roster,
)

SEED = 20261124
CSV_PATH = Path(__file__).resolve().parent / "sessions.csv"

# The interchange columns of docs/DESIGN.md section 5, the two documented extra columns and the optional STRICTA
# columns (the needling record): defined once, in db/.
COLUMNS = INTERCHANGE_COLUMNS + EXTRA_COLUMNS + STRICTA_COLUMNS

MAX_SESSIONS = 10
GAP_DAYS_MAX = 45  # the longest gap between two sessions of an episode
# A clinic network as issue 15 describes it, for benchmarks: 60 clinicians over 25 months, episodes of 2-8 sessions,
# about 1.15 episodes per patient (a patient comes back for another condition). `generate(**NETWORK, patients=...)`.
NETWORK = {"clinicians": 60, "months": 25, "min_sessions": 2, "max_sessions": 8, "episodes_per_patient": 1.15}


def _add_months(day: date, months: int) -> date:
    """Return the same day of the month ``months`` later (day clamped to 28 to stay valid)."""
    month_index = day.month - 1 + months
    return date(day.year + month_index // 12, month_index % 12 + 1, min(day.day, 28))


def _pick(rng: np.random.Generator, pool: np.ndarray, count: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Return up to ``count`` distinct, sorted items of ``pool`` (weighted if given)."""
    count = min(count, pool.size)
    if count == 0:
        return pool[:0]
    p = None if weights is None else weights / weights.sum()
    return np.sort(rng.choice(pool, size=count, replace=False, p=p))


def _subset_table(names: list[str], join: Callable[[list[str]], str]) -> np.ndarray:
    """Return an array mapping each bitmask over ``names`` to ``join`` of the names it selects, in list order."""
    table = np.empty(1 << len(names), dtype=object)
    for mask in range(table.size):
        table[mask] = join([name for bit, name in enumerate(names) if mask >> bit & 1])
    return table


def _episode_patients(seed: int, patients: int, episodes: int) -> np.ndarray:
    """Return the patient of each of ``episodes`` episodes, in patient order: every patient one, some a second."""
    # A generator of its own, so the default data set (one episode per patient) draws nothing more.
    second = np.random.default_rng([seed, 1]).choice(patients, size=episodes - patients, replace=False)
    return np.repeat(np.arange(patients), 1 + np.bincount(second, minlength=patients))


def generate(
    seed: int = SEED,
    patients: int = 300,
    start: date = date(2025, 5, 1),
    months: int = 18,
    *,
    clinicians: int = len(CLINICIANS),
    min_sessions: int = 1,
    max_sessions: int = MAX_SESSIONS,
    episodes_per_patient: float = 1.0,
) -> pd.DataFrame:
    """Return synthetic sessions, one row per session, in the interchange format plus body_region and muscles.

    The defaults give the demo data set; ``NETWORK`` holds the arguments of a clinic network's shape. A patient's
    second episode (``episodes_per_patient`` above 1, at most 2) is for another condition.
    """
    if not 1 <= min_sessions <= max_sessions <= MAX_SESSIONS:
        raise ValueError(f"sessions per episode: need 1 <= min_sessions <= max_sessions <= {MAX_SESSIONS}")
    if not 1.0 <= episodes_per_patient <= 2.0:
        raise ValueError("episodes_per_patient: need a value from 1 to 2")
    if clinicians < 1:
        raise ValueError("clinicians: need at least one")
    rng = np.random.default_rng(seed)
    n = round(patients * episodes_per_patient)  # episodes of care
    first_day = np.datetime64(start, "D")
    span_days = int((np.datetime64(_add_months(start, months), "D") - first_day).astype(int))
    # Episodes start early enough for their first min_sessions sessions to fall before the end date.
    first_days = span_days - GAP_DAYS_MAX * (min_sessions - 1)
    if first_days < 1:
        raise ValueError(f"months: {months} months cannot hold {min_sessions} sessions {GAP_DAYS_MAX} days apart")
    k = np.arange(MAX_SESSIONS)
    roster, roster_weights, roster_technique = clinician_roster(clinicians)

    # --- the episodes of care, one per patient unless episodes_per_patient > 1 --------------------------------
    clinician = rng.choice(clinicians, size=n, p=roster_weights)
    tech_u = rng.random(n)
    technique = (tech_u[:, None] > np.cumsum(roster_technique[clinician], axis=1)).sum(axis=1)
    technique = np.minimum(technique, 2)  # the cumulative sum can fall a rounding error short of 1
    cond_names = list(CONDITIONS)
    cond_p = np.array([CONDITIONS[c][0] for c in cond_names])
    condition = rng.choice(len(cond_names), size=n, p=cond_p / cond_p.sum())
    patient_of = np.arange(n) if n == patients else _episode_patients(seed, patients, n)
    again = np.flatnonzero(patient_of[1:] == patient_of[:-1]) + 1  # a patient's second episode
    same = again[condition[again] == condition[again - 1]]
    condition[same] = (condition[same] + 1) % len(cond_names)  # the import would merge two of one condition
    other_region = rng.integers(0, len(OTHER_REGIONS), size=n)
    region_of_condition = np.array([REGIONS.index(CONDITIONS[c][1]) if CONDITIONS[c][1] else -1 for c in cond_names])
    region = region_of_condition[condition]
    region[region < 0] = REGIONS.index(next(iter(OTHER_REGIONS))) + other_region[region < 0]
    scale = (rng.random(n) < 0.20).astype(np.int64)  # 0 = vas_100, 1 = nrs_10
    baseline = np.clip(rng.normal(67.0, 10.0, size=n), 25.0, 100.0)
    max_effect = np.array([TECHNIQUE_MODEL[t][0] for t in TECHNIQUES])[technique]
    cond_effect = np.array([CONDITION_EFFECT.get(c, 0.0) for c in cond_names])[condition]
    # Patient random effect; more room to improve when the baseline is high.
    effect = max_effect + cond_effect + 0.004 * (baseline - 67.0) + rng.normal(0.0, 0.18, size=n)
    effect = np.clip(effect, -0.15, 0.95)
    tau = np.array([TECHNIQUE_MODEL[t][1] for t in TECHNIQUES])[technique] * np.exp(rng.normal(0.0, 0.3, size=n))
    first_offset = rng.integers(0, first_days, size=n)

    # --- up to MAX_SESSIONS per patient as (patients x sessions) matrices ---------------------------------
    # Pain before session k+1 reflects k sessions of treatment; session 1's pain is the baseline itself.
    improvement = effect[:, None] * (1.0 - np.exp(-k[None, :] / tau[:, None]))
    noise = rng.normal(0.0, 6.0, size=(n, MAX_SESSIONS))
    noise[:, 0] = 0.0
    before = np.clip(baseline[:, None] * (1.0 - improvement) + noise, 0.0, 100.0)

    gap_u = rng.random((n, MAX_SESSIONS))
    gaps = np.where(
        gap_u < 0.85,
        rng.integers(5, 11, size=(n, MAX_SESSIONS)),
        np.where(
            gap_u < 0.97, rng.integers(11, 22, size=(n, MAX_SESSIONS)), rng.integers(22, 46, size=(n, MAX_SESSIONS))
        ),
    )
    gaps[:, 0] = 0
    offsets = first_offset[:, None] + np.cumsum(gaps, axis=1)

    # Drop-out after each session: some never come back after the first; courses are planned for a few
    # sessions, so the chance of stopping grows with k; non-responders give up; patients who improved a lot,
    # or whose pain is already low, are discharged.
    relative = (baseline[:, None] - before) / np.maximum(baseline[:, None], 1.0)
    hazard = np.broadcast_to(0.06 + 0.035 * k[None, :], (n, MAX_SESSIONS)).copy()
    hazard[:, 0] = 0.10
    hazard[:, 2:] = np.where(relative[:, 2:] < 0.10, 0.30, hazard[:, 2:])
    hazard[:, 1:] = np.where(relative[:, 1:] >= 0.50, 0.25, hazard[:, 1:])
    hazard[:, 1:] = np.where(before[:, 1:] <= 20.0, 0.50, hazard[:, 1:])
    stop = rng.random((n, MAX_SESSIONS)) < hazard
    stop[:, : min_sessions - 1] = False
    stop[:, max_sessions - 1] = True
    planned = stop.argmax(axis=1) + 1
    # Sessions that would fall on or after the end date have not happened yet: the episode is still open.
    held = (offsets < span_days).sum(axis=1)
    sessions = np.minimum(planned, held)

    # --- edge cases, chosen among patients who can show them -------------------------------------------------
    ids = np.arange(n)
    last_relative = relative[ids, np.minimum(sessions, 3) - 1]
    switchers = _pick(rng, ids[sessions >= 4], round(0.05 * n), weights=np.exp(-3.0 * last_relative[sessions >= 4]))
    switch_at = rng.integers(2, 4, size=switchers.size)  # sessions before the switch
    switch_to = (technique[switchers] + rng.integers(1, 3, size=switchers.size)) % 3
    same_pool = ids[(sessions >= 2) & ~np.isin(ids, switchers)]
    same_day = _pick(rng, same_pool, round(0.03 * n))
    same_day_at = (rng.random(same_day.size) * (sessions[same_day] - 1)).astype(np.int64) + 1
    mixed = _pick(rng, ids[sessions >= 2], round(0.03 * n))
    mixed_at = (rng.random(mixed.size) * (sessions[mixed] - 1)).astype(np.int64) + 1
    zero_pool = ids[(sessions >= 2) & ~np.isin(ids, mixed)]
    zero_baseline = _pick(rng, zero_pool, max(1, round(n / 150)))

    session_technique = np.repeat(technique[:, None], MAX_SESSIONS, axis=1)
    session_technique[switchers] = np.where(
        k[None, :] >= switch_at[:, None], switch_to[:, None], technique[switchers][:, None]
    )
    gaps[same_day, same_day_at] = 0
    offsets = first_offset[:, None] + np.cumsum(gaps, axis=1)
    session_scale = np.repeat(scale[:, None], MAX_SESSIONS, axis=1)
    session_scale[mixed] = np.where(k[None, :] >= mixed_at[:, None], 1 - scale[mixed][:, None], scale[mixed][:, None])
    # Baseline 0 (treated for stiffness, say): percent improvement is undefined for these episodes.
    zero_noise = np.abs(rng.normal(0.0, 3.0, size=(zero_baseline.size, MAX_SESSIONS))) * (
        rng.random((zero_baseline.size, MAX_SESSIONS)) < 0.4
    )
    zero_noise[:, 0] = 0.0
    before[zero_baseline] = zero_noise

    # --- flatten to one row per session, patient by patient in session order ----------------------------------
    rows, ks = np.nonzero(k[None, :] < sessions[:, None])
    s = rows.size
    tech = session_technique[rows, ks]
    sc = session_scale[rows, ks]
    pain = before[rows, ks]

    immediate = np.array([TECHNIQUE_MODEL[t][2] for t in TECHNIQUES])[tech]
    after = np.clip(pain * (1.0 - immediate * rng.uniform(0.0, 2.0, size=s)) + rng.normal(0.0, 3.0, size=s), 0.0, 100.0)
    has_after = rng.random(s) < 0.70

    def on_scale(values: np.ndarray) -> np.ndarray:
        return np.where(sc == 1, np.rint(values / 10.0), np.rint(values)).astype(np.int64)

    # A patient who had no pain before cannot have less after (keeps the zero-baseline edge case tidy).
    after = np.where(np.isin(rows, zero_baseline), np.minimum(after, pain), after)
    pain_before = on_scale(pain)
    pain_after = pd.arrays.IntegerArray(np.where(has_after, on_scale(after), 0), ~has_after)

    covered = rng.random(s) < 0.10
    session_clinician = np.where(
        covered, (clinician[rows] + rng.integers(1, max(clinicians, 2), size=s)) % clinicians, clinician[rows]
    )
    # The second of two sessions on one date is with the same clinician as the first.
    is_same_day = np.zeros(s, dtype=bool)
    is_same_day[1:] = (rows[1:] == rows[:-1]) & (offsets[rows[1:], ks[1:]] == offsets[rows[:-1], ks[:-1]])
    second = np.flatnonzero(is_same_day)
    session_clinician[second] = session_clinician[second - 1]

    twitch_yes = rng.random(s) < np.array([TECHNIQUE_MODEL[t][3] for t in TECHNIQUES])[tech]
    twitch = np.where(twitch_yes, "yes", "no").astype(object)
    twitch[rng.random(s) < 0.05] = ""

    side_effects, notes = _side_effects_and_notes(rng, tech, rows)
    body_region, muscles = _muscles(rng, region, rows)
    needling = _needling(seed, tech, rows, offsets[rows, ks], span_days, session_clinician, twitch)

    width = max(4, len(str(patients)))
    patient_ids = np.array([f"P{i + 1:0{width}d}" for i in range(patients)], dtype=object)
    return pd.DataFrame(
        {
            "patient_id": patient_ids[patient_of[rows]],
            "session_date": (first_day + offsets[rows, ks].astype("timedelta64[D]")).astype(str),
            "technique": np.array(TECHNIQUES, dtype=object)[tech],
            "pain_scale": np.array(SCALES, dtype=object)[sc],
            "pain_before": pain_before,
            "pain_after": pain_after,
            "side_effects": side_effects,
            "condition": np.array(cond_names, dtype=object)[condition[rows]],
            "clinician": np.array(roster, dtype=object)[session_clinician],
            "twitch_response": twitch,
            "notes": notes,
            "body_region": body_region,
            "muscles": muscles,
            **needling,
        },
        columns=COLUMNS,
    )


def _side_effects_and_notes(
    rng: np.random.Generator, tech: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the side_effects and notes columns for sessions of techniques ``tech`` and patients ``rows``."""
    s = tech.size
    codes = list(SIDE_EFFECT_RATES)
    rates = np.array([SIDE_EFFECT_RATES[c] for c in codes])
    tech_share = np.bincount(tech, minlength=3) / max(s, 1)
    risk = TECHNIQUE_RISK / max(float(tech_share @ TECHNIQUE_RISK), 1e-9)
    happened = rng.random((s, len(codes))) < rates[None, :] * risk[tech][:, None]
    effect_mask = (happened * (1 << np.arange(len(codes)))).sum(axis=1)
    as_mild = _subset_table(codes, lambda chosen: side_effect_text.format((c, "mild") for c in chosen))
    side_effects = as_mild[effect_mask]

    notes = np.full(s, "", dtype=object)
    noted = rng.random(s) < 0.03
    notes[noted] = np.array(COMMON_NOTES, dtype=object)[rng.integers(0, len(COMMON_NOTES), size=int(noted.sum()))]
    # Significant events on deep or electrical sessions, at most one per patient: about 1 per 600 sessions
    # (Boyce 2020 saw 1 major event per 1,024), at least 3 from 1,000 sessions up so the demo shows the flag.
    candidates = rng.permutation(np.flatnonzero(tech != 0))
    candidates = candidates[np.sort(np.unique(rows[candidates], return_index=True)[1])]
    significant = np.sort(candidates[: max(3, s // 600) if s >= 1000 else s // 300])
    for j, i in enumerate(significant):
        code, note = SIGNIFICANT_EVENTS[j % len(SIGNIFICANT_EVENTS)]
        present = dict(side_effect_text.parse(side_effects[i]))
        present[code] = "significant"
        side_effects[i] = side_effect_text.format((c, present[c]) for c in ALL_SIDE_EFFECT_CODES if c in present)
        notes[i] = note
    plain = np.flatnonzero(~noted & ~np.isin(np.arange(s), significant))
    for note, i in zip(SPECIAL_NOTES, _pick(rng, plain, len(SPECIAL_NOTES)), strict=False):
        notes[i] = note
    return side_effects, notes


def _muscles(rng: np.random.Generator, region: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the body_region and muscles columns for patients in regions ``region``, sessions of ``rows``."""
    # Each patient has favourite muscles (weights); each session treats 1-4 of the region's muscles, drawn
    # without replacement by exponential keys divided by the weights (Efraimidis-Spirakis).
    s = rows.size
    region_muscles = [REGION_MUSCLES[r] for r in REGIONS]
    widest = max(len(m) for m in region_muscles)
    region_size = np.array([len(m) for m in region_muscles])
    favour = rng.gamma(0.8, size=(region.size, widest)) / (1.0 + 0.4 * np.arange(widest))[None, :] + 1e-6
    keys = rng.exponential(size=(s, widest)) / favour[rows]
    keys[np.arange(widest)[None, :] >= region_size[region[rows]][:, None]] = np.inf
    count = np.minimum(rng.choice(4, size=s, p=[0.30, 0.35, 0.25, 0.10]) + 1, region_size[region[rows]])
    chosen = keys.argsort(axis=1).argsort(axis=1) < count[:, None]
    muscle_mask = (chosen * (1 << np.arange(widest))).sum(axis=1)
    muscle_tables = [_subset_table(m, ";".join) for m in region_muscles]
    muscle_lookup = np.empty((len(REGIONS), 1 << widest), dtype=object)
    for r, table in enumerate(muscle_tables):
        muscle_lookup[r, : table.size] = table
    return np.array(REGIONS, dtype=object)[region[rows]], muscle_lookup[region[rows], muscle_mask]


def _needling(seed: int, tech: np.ndarray, rows: np.ndarray, day: np.ndarray, span_days: int,
              clinician: np.ndarray, twitch: np.ndarray) -> dict[str, np.ndarray]:
    """Return the STRICTA columns as cells for sessions of techniques ``tech``, episodes ``rows``, days ``day`` into
    the window, clinicians ``clinician`` and twitch answers ``twitch``. A generator of its own (``[seed, 2]``) draws
    every value of every session, recorded or not, so no other column changes. Gaps: a session is documented with
    the clinician's diligence, lower early in the window; a documented one records each item mostly, another rarely.
    """
    rng, s, p = np.random.default_rng([seed, 2]), tech.size, parameters
    early = p.NEEDLING_EARLY + (1.0 - p.NEEDLING_EARLY) * day / max(span_days - 1, 1)
    documented = rng.random(s) < p.NEEDLING_DILIGENCE[clinician % p.NEEDLING_DILIGENCE.size] * early
    recorded = {item: (rng.random(s) < np.where(documented, chance, p.UNDOCUMENTED_CHANCE))  # estim_*: electrical
                & ((tech == 2) if item.startswith("estim_") else True) for item, chance in p.ITEM_RECORDED.items()}
    recorded["twitch_count"] &= twitch != ""  # a count says whether there was a twitch: only beside the answer
    side = rng.choice(len(p.SIDES), size=int(rows.max(initial=-1)) + 1, p=p.SIDE_WEIGHTS)[rows]  # the episode's
    side[rng.random(s) < 0.10] = p.SIDES.index("bilateral")
    depth = np.rint(p.DEPTH_MM[tech, 0] * np.exp(p.DEPTH_MM[tech, 1] * rng.standard_normal(s)))
    depth = np.where(tech == 0, np.clip(depth, 2, 10), np.clip(depth, 8, 65)).astype(np.int64)
    lengths, minutes = p.NEEDLE_LENGTHS, rng.choice(p.ESTIM_MINUTES, size=s)
    retention = np.select([tech == 0, tech == 1], [rng.choice(p.RETENTION_SUPERFICIAL, size=s),
                                                   rng.choice(p.RETENTION_DEEP, size=s)], minutes * 60)
    added = rng.random((s, len(p.ADJUNCT_CHANCE))) < np.array(list(p.ADJUNCT_CHANCE.values()))[None, :]
    adjuncts = _subset_table(list(p.ADJUNCT_CHANCE), lambda chosen: ";".join(chosen) or "none")
    values = {
        "insertions": np.maximum(1, rng.poisson(p.INSERTIONS_MEAN[tech])),
        "side": np.array(p.SIDES, dtype=object)[side],
        "depth_mm": depth,
        "needle_diameter_mm": p.NEEDLE_DIAMETERS[_categories(rng, p.DIAMETER_WEIGHTS[tech])],
        "needle_length_mm": lengths[np.minimum(np.searchsorted(lengths, depth + 10), lengths.size - 1)],
        "twitch_count": np.where(twitch == "yes", 1 + rng.poisson(p.TWITCH_MEAN[tech]), 0),
        "retention_s": retention,
        "manipulation": np.array(p.MANIPULATIONS, dtype=object)[_categories(rng, p.MANIPULATION_WEIGHTS[tech])],
        "estim_hz": rng.choice(p.ESTIM_HZ, size=s),
        "estim_pulse_us": rng.choice(p.ESTIM_PULSE_US, size=s),
        "estim_ma": np.rint(rng.uniform(*p.ESTIM_MA, size=s) * 2) / 2,
        "estim_minutes": minutes,
        "adjuncts": adjuncts[(added * (1 << np.arange(added.shape[1]))).sum(axis=1)],
    }
    return {name: _cells(values[name], recorded[name]) for name in STRICTA_COLUMNS}


def _categories(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Return one category per row of ``weights`` (each row's chances of the categories), drawn at once."""
    chosen = (rng.random(len(weights))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
    return np.minimum(chosen, weights.shape[1] - 1)  # a cumulative sum a rounding error short of 1


def _cells(values: np.ndarray, recorded: np.ndarray) -> np.ndarray | pd.arrays.IntegerArray:
    """Return values as cells: integers, other numbers as the export writes them, codes; missing if not recorded."""
    if values.dtype.kind == "i":
        return pd.arrays.IntegerArray(values.astype(np.int64), ~recorded)
    if values.dtype != object:
        uniques, at = np.unique(values, return_inverse=True)
        values = np.array([number_text(value) for value in uniques.tolist()], dtype=object)[at.reshape(-1)]
    return np.where(recorded, values, "").astype(object)


def to_csv_text(frame: pd.DataFrame) -> str:
    """Return the CSV text written for ``frame``: no index, LF line ends, empty cells for missing values."""
    return frame.to_csv(index=False, lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    """Write ``sample_data/sessions.csv`` (or the path given as the only argument) and return 0."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else CSV_PATH
    frame = generate()
    path.write_text(to_csv_text(frame), encoding="utf-8", newline="")
    print(f"wrote {len(frame)} sessions of {frame['patient_id'].nunique()} patients to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
