"""Needling record (managers, admins; #16): how completely the clinic records its needling (STRICTA), the table a
methods section can use, and improvement at session 4 by the dose given, descriptively."""

import streamlit as st

from analytics.dose_outcome import CAVEAT, NOT_RECORDED
from clinic.vocabulary import ANSWER_SESSION, CONDITIONS, TECHNIQUE_LABELS, TECHNIQUES, condition_words
from dashboard import charts, needling_data, resources
from dashboard.analysis_status import being_computed
from dashboard.auth import current_actor
from dashboard.tables import show_table
from db.queries import OutcomeFilter

INTRO = (
    "What each session records of the needling itself, after STRICTA (MacPherson et al. 2010, items 1–6): "
    "insertions, side, depth, needle size, twitch responses, retention, manipulation, electrical stimulation and "
    "adjuncts. A session is complete when it records at least 90 % of the items that apply to it (the electrical "
    "items apply to electrical dry needling only)."
)
FILTER_KEYS = ("needling_conditions", "needling_techniques", "needling_clinicians", "needling_period")

actor = current_actor()
st.title("Needling record")
st.caption(INTRO)

# Streamlit forgets a widget's value when another page is shown; a copy under another key brings it back.
for key in FILTER_KEYS:
    if key not in st.session_state and f"kept_{key}" in st.session_state:
        st.session_state[key] = st.session_state[f"kept_{key}"]

choices = resources.filter_choices(actor)
with st.expander("Filters", expanded=True, icon=":material/filter_list:"):
    left, right = st.columns(2)
    conditions = left.multiselect("Condition", [c for c in CONDITIONS if c in choices["conditions"]],
                                  key="needling_conditions", placeholder="All conditions", format_func=condition_words)
    techniques = right.multiselect("Technique", TECHNIQUES, key="needling_techniques", placeholder="All techniques",
                                   format_func=TECHNIQUE_LABELS.get)
    clinicians = left.multiselect("Clinician (first session)", choices["clinicians"], key="needling_clinicians",
                                  placeholder="All clinicians")
    period = right.date_input("First session between", key="needling_period", format="YYYY-MM-DD",
                              **({} if "needling_period" in st.session_state else {"value": ()}),
                              help="Episodes of care whose first session falls in this range. Leave empty for all.")
for key in FILTER_KEYS:
    st.session_state[f"kept_{key}"] = st.session_state[key]
start, end = (tuple(period) + (None, None))[:2] if period else (None, None)
where = OutcomeFilter(conditions=tuple(sorted(conditions)), techniques=tuple(sorted(techniques)),
                      clinicians=tuple(sorted(clinicians)), start=start, end=end)



analysis = needling_data.needling_record(actor, where)
if analysis.fault:
    st.warning("The needling record could not be computed. If it happens again, tell your administrator the "
               f"reference {analysis.fault}.", icon=":material/error:")
if analysis.running_for is not None:
    being_computed(lambda: needling_data.needling_record(actor, where))
data = analysis.value
if data is None:
    st.stop()
if not analysis.current:
    note, button = st.columns([5, 1], vertical_alignment="center")
    note.caption(f"As of {analysis.as_of:%d %b %Y %H:%M}, before the latest changes.")
    button.button("Refresh", key="refresh_needling", on_click=analysis.refresh, icon=":material/refresh:")
if not data["sessions"]:
    st.info("No sessions match these filters — widen the filters or record sessions first.")
    st.stop()

with st.container(key="needling_summary"):
    st.caption(f"**{data['sessions']:,} sessions** of {data['episodes']:,} episodes of care, "
               f"{data['first']:%Y-%m-%d} to {data['last']:%Y-%m-%d}: {needling_data.filter_words(where)}.")
sessions, complete, episodes = st.columns(3)
sessions.metric("Sessions", f"{data['sessions']:,}")
complete.metric("Complete needling record", f"{data['complete']:.0%}",
                help="Sessions recording at least 90 % of the STRICTA items that apply to them.")
episodes.metric("Episodes of care", f"{data['episodes']:,}")

st.header("Completeness by clinician and month")
st.caption("Share of each clinician's sessions in a month whose needling record is complete; hover for the count.")
if data["heat_map"] is not None:
    st.plotly_chart(data["heat_map"], key="completeness_heat_map", config=charts.CONFIG)
with st.expander("As a table", icon=":material/table:"):
    show_table(data["completeness"], "completeness_table", percent=("share",), month="Month",
               complete="Complete", share="Complete (%)")

st.header("STRICTA table")
st.caption("Per technique (and all together), each item's completeness among the sessions it applies to and its "
           "distribution: median (interquartile range) for numbers, shares for codes. The same table as "
           "`python -m db summary --stricta`.")
show_table(data["table"].assign(item=data["table"]["item"].map(needling_data.item_words)), "stricta_table",
           percent=("completeness",), item="Item",
           applicable_sessions="Applicable sessions", reported_sessions="Reported", distribution="Distribution")
csv, markdown = st.columns(2)
csv.download_button("Download the table (CSV)", needling_data.table_csv(data["table"]), "stricta_table.csv",
                    "text/csv", key="download_stricta_csv", icon=":material/download:")
markdown.download_button("Download for a methods section (Markdown)", data["markdown"], "stricta_methods.md",
                         "text/markdown", key="download_stricta_markdown", icon=":material/description:")
with st.expander("Preview of the methods text", icon=":material/description:"):
    st.code(data["markdown"], language="markdown", wrap_lines=True)

st.header(f"Dose and outcome at session {ANSWER_SESSION}")
st.warning(CAVEAT, icon=":material/info:")
dose = data["dose"]
st.caption(
    f"Each point is the mean improvement at session {ANSWER_SESSION} (percent of the first pain) of the episodes "
    f"whose mean dose per session over sessions 1 to {ANSWER_SESSION - 1} falls in the group, with its 95 % "
    f"interval and number of episodes (n); hollow points rest on fewer than 10. Grey: episodes whose dose was "
    f"{NOT_RECORDED}. {dose.attrs['episodes']:,} episodes reached session {ANSWER_SESSION}"
    + (f" ({dose.attrs['excluded_baseline_zero']} with a first pain of 0 have no percentage and are left out)"
       if dose.attrs["excluded_baseline_zero"] else "")
    + f"; at most {needling_data.DOSE_EPISODES:,} episodes, a fixed sample, are read."
)
tabs = st.tabs([needling_data.item_words(column) + (" · electrical" if column.startswith("estim") else "")
                for column in data["figures"]])
for tab, column in zip(tabs, data["figures"], strict=True):
    with tab:
        st.plotly_chart(data["figures"][column], key=f"dose_{column}", config=charts.CONFIG)
        show_table(dose[dose["dose"] == column].drop(columns="dose"), f"dose_table_{column}",
                   group="Group", mean_improvement_pct="Mean improvement (%)", ci95_low_pct="95 % CI low",
                   ci95_high_pct="95 % CI high", small="Fewer than 10")
