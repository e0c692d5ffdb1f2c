"""Safety (DESIGN.md section 3): side effects per 100 sessions and share of patients with any, beside published rates.

Input is the per-session frame (one row per session) with `technique` (the technique used in that session: a
side effect belongs to the session where it happened), `side_effects` as `code:severity;…` (the interchange
format), and `patient_id` (or, without it, `episode_id`) to count patients.
"""

from __future__ import annotations

import pandas as pd

from analytics import outcomes

ALL = "all"  # severity of the rows that pool every severity of a type
ANY = "any"  # code of the rows that count sessions (or patients) with at least one side effect
ALERT_SEVERITIES = ("significant", "serious")  # flagged to managers at once (DESIGN.md section 2)
RATE_COLUMNS = [
    "technique", "code", "severity", "events", "sessions", "per_100_sessions", "ci95_low", "ci95_high",
    "patients_with", "patients", "patient_share", "patient_ci95_low", "patient_ci95_high",
]
EVENT_COLUMNS = ["session_index", "patient", "technique", "code", "severity"]

BRADY_2014 = "Brady et al. 2014, J Man Manip Ther 22(3):134–140 (7,629 treatments)"
BOYCE_2020 = "Boyce et al. 2020, Int J Sports Phys Ther 15(1):103–113 (20,464 treatments)"
# Published per-treatment rates (REFERENCES.md), per 100 treatments. Brady's "pain after treatment" is
# post-needling soreness here. `upper_per_100` is a one-sided upper estimate where the study saw no event.
PUBLISHED_RATES = pd.DataFrame(
    [
        (BRADY_2014, ANY, "mild", 19.18, None, 7629),
        (BRADY_2014, "bruising", "mild", 7.55, None, 7629),
        (BRADY_2014, "bleeding", "mild", 4.65, None, 7629),
        (BRADY_2014, "pain_during", "mild", 3.01, None, 7629),
        (BRADY_2014, "soreness", "mild", 2.19, None, 7629),
        (BRADY_2014, "aggravation", "mild", 0.88, None, 7629),
        (BRADY_2014, "drowsiness", "mild", 0.26, None, 7629),
        (BRADY_2014, "headache", "mild", 0.14, None, 7629),
        (BRADY_2014, "nausea", "mild", 0.13, None, 7629),
        (BRADY_2014, "fatigue", "mild", 0.04, None, 7629),
        (BRADY_2014, "emotional", "mild", 0.04, None, 7629),
        (BRADY_2014, ANY, "significant", 0.0, 0.04, 7629),
        (BOYCE_2020, ANY, "mild", 36.7, None, 20464),
        (BOYCE_2020, "bleeding", "mild", 16.0, None, 20464),
        (BOYCE_2020, "bruising", "mild", 7.7, None, 20464),
        (BOYCE_2020, "pain_during", "mild", 5.9, None, 20464),
        # 20 major events (pneumothorax, excessive bleeding, prolonged aggravation…): about 1 per 1,024 treatments
        (BOYCE_2020, ANY, "significant", 100 * 20 / 20464, None, 20464),
    ],
    columns=["source", "code", "severity", "per_100_treatments", "upper_per_100", "treatments"],
)


def side_effect_events(sessions: pd.DataFrame) -> pd.DataFrame:
    """Return one row per recorded side effect: the session's row number, patient, technique, code and severity.

    A type recorded twice in one session counts once (at its highest severity), so per-session rates are
    proportions and can carry Wilson intervals.
    """
    sessions = sessions.reset_index(drop=True)  # the row number identifies the session
    patient = sessions["patient_id"] if "patient_id" in sessions else sessions["episode_id"]
    if "side_effects" not in sessions:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    text = sessions["side_effects"].fillna("").astype(str)
    items = text.str.split(";").explode().str.strip()
    items = items[items != ""]
    if items.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    pairs = items.str.partition(":")
    events = pd.DataFrame(
        {
            "session_index": items.index,
            "patient": patient.loc[items.index].astype(str).to_numpy(),
            "technique": sessions["technique"].loc[items.index].to_numpy(),
            "code": pairs[0].str.strip().to_numpy(),
            "severity": pairs[2].str.strip().replace("", "unrecorded").to_numpy(),
        },
        columns=EVENT_COLUMNS,
    )
    order = {s: i for i, s in enumerate(("mild", *ALERT_SEVERITIES))}
    rank = events["severity"].map(order).fillna(-1)
    events = events.assign(rank=rank).sort_values("rank", kind="stable")
    return events.drop_duplicates(["session_index", "code"], keep="last").drop(columns="rank").sort_index()


def _pooled(events: pd.DataFrame) -> pd.DataFrame:
    """Return the events with their pooled rows added: every severity of a type, and any type ("any")."""
    all_severities = events.assign(severity=ALL)
    any_type = events.assign(code=ANY)
    return pd.concat([events, all_severities, any_type, any_type.assign(severity=ALL)], ignore_index=True)


def safety_rates(sessions: pd.DataFrame) -> pd.DataFrame:
    """Return side effects per 100 sessions and the share of patients with any, per technique, type and severity.

    One row per technique, code and severity seen, plus pooled rows: severity "all" (the type at any severity)
    and code "any" (sessions or patients with at least one side effect). Both rates carry 95 % Wilson intervals;
    the session rate in per-100 units, the patient share as a fraction 0–1. A type never seen has no row.
    """
    sessions = sessions.reset_index(drop=True)
    events = _pooled(side_effect_events(sessions))
    patient = sessions["patient_id"] if "patient_id" in sessions else sessions["episode_id"]
    session_counts = sessions.groupby("technique").size().rename("sessions").reset_index()
    patient_counts = patient.astype(str).groupby(sessions["technique"]).nunique().rename("patients")
    keys = ["technique", "code", "severity"]
    counts = (
        events.drop_duplicates(["session_index", "code", "severity"]).groupby(keys).size().rename("events")
        .reset_index()
    )
    # outcomes.side_effect_rates computes the per-100 rate and its Wilson interval; severity rides along the merge.
    rates = outcomes.side_effect_rates(counts, session_counts)
    with_any = events.drop_duplicates(["patient", *keys]).groupby(keys).size().rename("patients_with")
    rates = rates.merge(with_any.reset_index(), on=keys, how="left")
    rates["patients"] = rates["technique"].map(patient_counts).astype(int)
    rates["patient_share"] = rates["patients_with"] / rates["patients"]
    rates["patient_ci95_low"], rates["patient_ci95_high"] = outcomes.wilson_interval(
        rates["patients_with"], rates["patients"]
    )
    return rates[RATE_COLUMNS].sort_values(
        ["technique", "per_100_sessions", "code", "severity"], ascending=[True, False, True, True]
    ).reset_index(drop=True)


def safety_vs_published(rates: pd.DataFrame) -> pd.DataFrame:
    """Return the clinic's mild rates per type beside the published per-treatment rates, one row per type and source.

    Columns: code, source (a technique code for the clinic, or the publication), per_100, ci95_low, ci95_high
    (NaN for published figures), and `published` (True for the literature). Only the types a publication reports
    are kept, so the chart compares like with like.
    """
    published = PUBLISHED_RATES[PUBLISHED_RATES["severity"] == "mild"]
    clinic = rates[(rates["severity"] == "mild") & rates["code"].isin(published["code"])]
    clinic = pd.DataFrame(
        {
            "code": clinic["code"],
            "source": clinic["technique"],
            "per_100": clinic["per_100_sessions"],
            "ci95_low": clinic["ci95_low"],
            "ci95_high": clinic["ci95_high"],
            "published": False,
        }
    )
    literature = pd.DataFrame(
        {
            "code": published["code"],
            "source": published["source"],
            "per_100": published["per_100_treatments"],
            "ci95_low": float("nan"),
            "ci95_high": float("nan"),
            "published": True,
        }
    )
    return pd.concat([clinic, literature], ignore_index=True)


def alert_events(sessions: pd.DataFrame) -> pd.DataFrame:
    """Return every significant or serious side effect with the session's date, technique, clinician and patient."""
    sessions = sessions.reset_index(drop=True)
    events = side_effect_events(sessions)
    events = events[events["severity"].isin(ALERT_SEVERITIES)]
    rows = sessions.loc[events["session_index"]]
    out = pd.DataFrame(
        {
            "session_date": rows["session_date"].to_numpy() if "session_date" in rows else None,
            "technique": events["technique"].to_numpy(),
            "code": events["code"].to_numpy(),
            "severity": events["severity"].to_numpy(),
            "clinician": rows["clinician"].to_numpy() if "clinician" in rows else None,
            "patient_id": events["patient"].to_numpy(),
        }
    )
    return out.sort_values("session_date", ascending=False, kind="stable").reset_index(drop=True)
