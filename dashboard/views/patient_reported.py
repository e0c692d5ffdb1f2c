"""Patient-reported, for managers: soreness after needling, side effects as patients report them, PGIC and PSFS.

Aggregates only: no patient is named or listed here (db.report_queries gives managers pseudonymous inputs).
"""

import streamlit as st

from clinic.patient_reports import (
    PATIENT_EFFECTS,
    PGIC_SCALE,
    PSFS_MID,
    PSFS_MID_SHOWN,
    RESOLVED_AT_OR_BELOW,
    SOURCES,
)
from dashboard import charts, diary_data
from dashboard.auth import current_actor
from dashboard.tables import show_table

GROUPINGS = {"technique": "By technique", "adjunct": "By adjunct (cold spray, massage, none…)"}
CAVEAT = (
    "Observational clinic data, not a trial: patients were not randomised to techniques or adjuncts, and those who "
    "fill in their diary may differ from those who do not. Differences may reflect who received what."
)

actor = current_actor()
st.title("Patient-reported")
st.caption(CAVEAT)
by = st.segmented_control("Group", list(GROUPINGS), format_func=GROUPINGS.get, default="technique", required=True,
                          key="reported_by")
data = diary_data.clinic_reports(actor, by)
group = "Technique" if by == "technique" else "Adjunct"
named = {by: group}

if data["entries"] == 0:
    st.info("No diary entries yet. Patients fill in their diary on their phone after each session (*My diary*).")
else:
    st.caption(f"**{data['entries']:,} diary entries** after {data['sessions']:,} sessions of "
               f"{data['patients']:,} patients. A session with two adjuncts counts under each"
               + ("; *Not recorded*: sessions whose adjuncts were not recorded, kept apart from *None*."
                  if by == "adjunct" else "."))

st.header("Soreness after needling")
soreness = data["soreness"]
if not soreness.empty:
    st.plotly_chart(data["figures"]["soreness"], key="reported_soreness_chart", config=charts.CONFIG)
    st.caption("Mean soreness where needled (0 = none, 10 = worst imaginable) about 24, 48 and 72 hours after a "
               "session, as patients reported it, with 95 % t intervals; n is the number of entries at each point. "
               f"Source of the time points: {SOURCES['diary']}.")
    show_table(soreness.assign(**{by: soreness[by].map(diary_data.group_label)}), "reported_soreness_table",
               window_h="Hours after", entries="Entries (n)", mean_soreness="Mean soreness (0–10)", **named)

st.header("Time until soreness resolves")
resolution = data["resolution"]
if not resolution.empty:
    st.plotly_chart(data["figures"]["resolution"], key="reported_resolution_chart", config=charts.CONFIG)
    st.caption(f"Kaplan–Meier share of sessions whose soreness had resolved (an entry of {RESOLVED_AT_OR_BELOW} of "
               "10 or less) by each diary time. A session whose diary stops before that counts until its last entry "
               "(censored), so missing entries do not read as soreness that never went.")
    show_table(resolution[[by, "window_h", "at_risk", "resolved", "censored", "resolved_share"]]
               .assign(**{by: resolution[by].map(diary_data.group_label)}), "reported_resolution_table",
               percent=("resolved_share",), window_h="Hours after", at_risk="Sessions at risk (n)",
               resolved="Resolved", censored="Diary stopped", resolved_share="Resolved by then", **named)

st.header("Side effects, as patients and clinicians report them")
effects = data["effects"]
if not effects.empty:
    st.plotly_chart(data["figures"]["effects"], key="reported_effects_chart", config=charts.CONFIG)
    st.caption("Side effects per 100 sessions on the same sessions (those with a diary), from the patient's diary "
               "and from the clinician's record, with exact Poisson 95 % intervals. The clinicians' codes are counted "
               "under the checklist item that covers them; an item counts once per session.")
    wide = effects.pivot_table(index=[by, "side_effect", "severity"], columns="source",
                               values=["per_100_sessions", "events"], aggfunc="first").reset_index()
    wide.columns = [f"{value}_{source}" if source else value for value, source in wide.columns]
    wide[by] = wide[by].map(diary_data.group_label)
    wide["side_effect"] = wide["side_effect"].map(lambda c: PATIENT_EFFECTS.get(c, "Any side effect"))
    wide["severity"] = wide["severity"].map({"any": "any", "significant_or_serious": "significant or serious"})
    show_table(wide, "reported_effects_table", side_effect="Side effect",
               per_100_sessions_patient="Patients: per 100 sessions", events_patient="Patients: events",
               per_100_sessions_clinician="Clinicians: per 100 sessions", events_clinician="Clinicians: events",
               **named)

left, right = st.columns(2)
with left:
    st.header("Global impression of change")
    pgic = data["pgic"]
    if pgic.empty:
        st.caption("No answers yet.")
    else:
        show_table(pgic.assign(**{by: pgic[by].map(diary_data.group_label)}), "reported_pgic_table",
                   episodes="Episodes (n)", improved="Much or very much improved", share="Share", **named)
        st.caption(f"Each episode's latest answer: '{PGIC_SCALE[1].lower()}' or '{PGIC_SCALE[2].lower()}', with "
                   f"Wilson 95 % intervals. Source: {SOURCES['pgic']}.")
with right:
    st.header("Patient-Specific Functional Scale")
    psfs = data["psfs"]
    if psfs.empty:
        st.caption("No activity rated twice yet.")
    else:
        show_table(psfs.assign(**{by: psfs[by].map(diary_data.group_label)}), "reported_psfs_table",
                   percent=("share_mid",), episodes="Episodes (n)", mean_change="Mean change (points)",
                   reached_mid=f"Improved ≥ {PSFS_MID_SHOWN}", share_mid="Share",
                   share_ci95_low="Share: 95 % CI low", share_ci95_high="Share: 95 % CI high", **named)
        st.caption(f"Change of the mean rating (0–10) of an episode's activities, from the first to the latest "
                   f"rating, with 95 % t intervals; {PSFS_MID['small']} / {PSFS_MID['medium']} / "
                   f"{PSFS_MID['large']} points are a small / medium / large important change. "
                   f"Source: {SOURCES['psfs']}.")
