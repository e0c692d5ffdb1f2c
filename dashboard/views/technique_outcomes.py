"""Technique outcomes for managers: improvement, responders, time to response, adjusted comparison, safety."""


import pandas as pd
import streamlit as st

from analytics.outcomes import SMALL_GROUP
from analytics.safety import BOYCE_2020, BRADY_2014, SORENESS_TRIALS
from clinic.patient_reports import PATIENT_EFFECTS
from clinic.vocabulary import ANSWER_SESSION, SIDE_EFFECTS, TECHNIQUE_LABELS, TECHNIQUES
from dashboard import actions, charts, diary_data, recovery_sections, resources
from dashboard.analysis_status import ready
from dashboard.auth import current_actor
from dashboard.tables import show_table
from dashboard.text import literal
from dashboard.views import episode_outcomes
from db.queries import OutcomeFilter

ALERTS_SHOWN = 10  # alerts listed with their own button; a network can have hundreds unreviewed
SECTIONS = ("Overview", "Responders", "Time to response", "Adjusted comparison", "Clinicians", "Observed vs expected",
            "Safety")
SAMPLE_HELP = (
    "Episodes are taken in the order of a scrambled episode number, so the sample spreads over the clinic's whole "
    "history and is chosen without looking at outcomes. Its confidence intervals are those of the sample's size."
)
THREE_FITS = (
    "Three fits of the same comparison: a mixed model that counts a patient's sessions and episodes as one person "
    "and allows for their clinician (95 % t intervals), the same model by least squares with errors clustered by "
    "patient or clinician, and the ANCOVA at the last session. When they agree, the result does not depend on the "
    "model; the mixed model stays right when patients stop because of how their pain went, least squares only when "
    "stopping has nothing to do with pain."
)
COMPARISON_COLUMNS = ["technique", "model", "estimate", "ci95_low", "ci95_high", "p_value", "p_holm", "df", "patients",
                      "distinct_patients", "sessions", "structure"]
CAVEAT = (
    "Clinic data are observational, not a trial: patients were not randomised to techniques, so differences "
    "may reflect who received each technique as much as the technique itself."
)

actor = current_actor()
st.title("Technique outcomes")
st.caption(CAVEAT)


def _pretty(code: str) -> str:
    return code.replace("_", " ")


FILTER_KEYS = ("filter_conditions", "filter_regions", "filter_clinicians", "filter_techniques", "filter_period")
# Streamlit forgets a widget's value when another page is shown; a copy under another key brings it back.
for key in FILTER_KEYS:
    if key not in st.session_state and f"kept_{key}" in st.session_state:
        st.session_state[key] = st.session_state[f"kept_{key}"]

choices = resources.filter_choices(actor)
with st.expander("Filters", expanded=any(st.session_state.get(k) for k in FILTER_KEYS),
                 icon=":material/filter_list:"):
    left, right = st.columns(2)
    chosen_conditions = left.multiselect("Condition", choices["conditions"], key="filter_conditions",
                                         placeholder="All conditions", format_func=_pretty)
    chosen_regions = right.multiselect("Body region", choices["body_regions"], key="filter_regions",
                                       placeholder="All body regions", format_func=_pretty)
    chosen_clinicians = left.multiselect("Clinician (first session)", choices["clinicians"], key="filter_clinicians",
                                         placeholder="All clinicians")
    chosen_techniques = right.multiselect("Technique", TECHNIQUES, key="filter_techniques",
                                          placeholder="All techniques", format_func=TECHNIQUE_LABELS.get)
    # No default when a kept value is being restored: Streamlit warns when a widget gets both.
    period = st.date_input("First session between", key="filter_period", format="YYYY-MM-DD",
                           **({} if "filter_period" in st.session_state else {"value": ()}),
                           help="Episodes of care whose first session falls in this range. Leave empty for all.")
for key in FILTER_KEYS:
    st.session_state[f"kept_{key}"] = st.session_state[key]
start, end = (tuple(period) + (None, None))[:2] if period else (None, None)
where = OutcomeFilter(
    conditions=tuple(sorted(chosen_conditions)), body_regions=tuple(sorted(chosen_regions)),
    clinicians=tuple(sorted(chosen_clinicians)), techniques=tuple(sorted(chosen_techniques)), start=start, end=end,
)
data = resources.technique_outcomes(actor, where)
curve = data["curve"]

alerts = data["serious"]
if not alerts.empty:
    st.error(f"{len(alerts)} significant or serious side effect(s) to review", icon=":material/warning:")
    for event in alerts.head(ALERTS_SHOWN).itertuples():
        # A side effect the patient reported in their diary alerts like a recorded one, marked as theirs (#17).
        reported = getattr(event, "source", "clinician") == "patient"
        seen_by = event.clinician if isinstance(event.clinician, str) and event.clinician else "not recorded"
        text, button = st.columns([5, 1], vertical_alignment="center")
        text.markdown(
            f"**{event.session_date}** · {SIDE_EFFECTS.get(event.code) or PATIENT_EFFECTS.get(event.code, event.code)}"
            f" ({event.severity}) · {':violet-badge[patient-reported] · ' if reported else ''}"
            f"{TECHNIQUE_LABELS[event.technique]} · clinician {literal(seen_by)} · "
            f"patient {literal(event.patient_id)}"
        )
        if button.button("Mark reviewed", key=f"review_{'patient_' if reported else ''}{event.side_effect_id}"):
            if reported:
                diary_data.review_effect(actor, int(event.side_effect_id))
            else:
                actions.mark_reviewed(actor, int(event.side_effect_id))
            st.rerun()
    if len(alerts) > ALERTS_SHOWN:  # a button each for the most recent; the rest listed, not hidden
        with st.expander(f"{len(alerts) - ALERTS_SHOWN} older event(s) to review after these",
                         icon=":material/list:"):
            older = alerts.iloc[ALERTS_SHOWN:]
            show_table(older.drop(columns="side_effect_id"), "older_alerts", session_date="Date")

if curve.empty:
    st.info("No sessions match these filters — widen the filters or record sessions first.")
    st.stop()


def _filter_summary(where: OutcomeFilter) -> str:
    """Return the active filters in words ("all episodes of care" when none is set)."""
    parts = [
        ", ".join(_pretty(c) for c in where.conditions),
        ", ".join(_pretty(r) for r in where.body_regions),
        ", ".join(f"first seen by {c}" for c in where.clinicians),
        ", ".join(TECHNIQUE_LABELS[t] for t in where.techniques),
        where.dates_in_words(),
    ]
    return " · ".join(p for p in parts if p) or "all episodes of care"


# Says which data the figures below rest on; a filter's rerun is complete once this line names the new count.
with st.container(key="filter_summary"):
    shown = int(curve.loc[curve["session_number"] == 1, "patients"].sum())
    st.caption(f"**{shown:,} episodes of care** in these figures: {_filter_summary(where)}.")
st.info(data["best"], icon=":material/emoji_events:")

excluded = data["excluded"]
if not excluded.empty:
    counts = excluded.groupby("reason")["episodes"].sum()
    st.caption("Left out of responder shares and models: " + "; ".join(
        f"{int(n)} episode(s) with {reason}" for reason, n in counts.items()
    ) + ". Episodes with baseline 0 are also left out of every percentage.")

section = st.segmented_control("Show", SECTIONS, default=SECTIONS[0], key="section", required=True)


def _sample_note(episodes: int, exact: str = "") -> None:
    """Say so when a section's analysis ran on a sample of `episodes` of the filtered episodes; `exact` names what
    on the page still counts every one."""
    total = resources.episode_count(actor, where)
    if total > episodes:
        st.caption(f"From a fixed sample of {episodes:,} of the {total:,} episodes of care these filters select, "
                   "spread evenly over them and the same on every visit: on every measurement this would take "
                   f"minutes. {exact}".strip(), help=SAMPLE_HELP)


def _small_note(frame: pd.DataFrame) -> None:
    small = frame[frame["patients"] < SMALL_GROUP]
    if not small.empty:
        st.caption(f"{len(small)} figure(s) rest on fewer than {SMALL_GROUP} episodes: read them with care.")


RULE = episode_outcomes.responder_rule()  # how a responder is classified, disclosed under every responder figure

if section == "Overview":
    st.header("Mean improvement since the first session")
    st.plotly_chart(charts.technique_curve_figure(curve), key="curve_chart", config=charts.CONFIG)
    st.caption("Shaded ribbons: 95 % confidence intervals. Hollow points: fewer than 10 episodes of care. Bands: "
               "minimal (15 %), important (30 %) and substantial (50 %) improvement (IMMPACT).")
    summary = data["summary"]
    st.dataframe(
        summary.assign(technique=summary["technique"].map(TECHNIQUE_LABELS), small=curve["small"]),
        hide_index=True, placeholder="", key="summary_table",
        column_config={
            "technique": "Technique",
            "session_number": st.column_config.NumberColumn("Session"),
            "patients": st.column_config.NumberColumn("Episodes"),
            "mean_pain_before": st.column_config.NumberColumn("Mean pain before (0–100)", format="%.1f"),
            "mean_improvement_points": st.column_config.NumberColumn("Improvement (points)", format="%.1f"),
            "mean_improvement_pct": st.column_config.NumberColumn("Improvement (%)", format="%.1f %%"),
            "ci95_low_pct": st.column_config.NumberColumn("95 % CI low (%)", format="%.1f"),
            "ci95_high_pct": st.column_config.NumberColumn("95 % CI high (%)", format="%.1f"),
            "small": st.column_config.CheckboxColumn("Fewer than 10"),
        },
    )
    st.download_button(
        "Download summary (CSV)", summary.to_csv(index=False, lineterminator="\n"),
        file_name="technique_summary.csv", mime="text/csv", key="download_summary", icon=":material/download:",
    )

elif section == "Responders":
    st.header("Responders at the last session")
    bars = ready(lambda: resources.responders_at_last_session(actor, where, RULE), "responders")
    if bars is not None:
        st.plotly_chart(bars["figure"], key="responder_chart", config=charts.CONFIG)
        st.caption("Share of episodes of care with at least one follow-up session whose pain at their last session "
                   "was at least 15, 30 or 50 % below their first (IMMPACT); error bars are 95 % Wilson intervals.")
        st.caption(f"**Who counts as a responder.** {RULE.sentence()}")
        st.download_button(
            "Download responders (CSV)", bars["table"].round(4).to_csv(index=False, lineterminator="\n"),
            file_name="technique_responders.csv", mime="text/csv", key="download_responders",
            icon=":material/download:",
        )
    episode_outcomes.completed_and_dropped_out(actor, where, RULE, ready)
    st.header(f"Reached by session {ANSWER_SESSION}")
    st.caption("The technique's literature says positive results are usually evident in 2 to 4 sessions. Share of "
               f"episodes that reached each threshold by session {ANSWER_SESSION}, estimated by "
               "Kaplan–Meier: an episode that stopped earlier without reaching it is censored at its last session, "
               "not counted as a failure (it might have responded had it continued). 95 % log–log Greenwood "
               "intervals; *at risk*: episodes seen at that session that had not reached it before. Few at "
               "risk late on is not few behind the estimate: every episode of the technique contributes.")
    details = ready(lambda: resources.responder_analyses(actor, where, RULE, resources.SAMPLE_EPISODES),
                     "responder_analyses")
    if details is not None:
        reached = details["reached"]
        early = details["reached_by_then"]
        show_table(early, "early_table", percent=("reached", "ci95_low", "ci95_high"), reached="Reached by then",
                   at_risk="At risk", events="Reached at that session")
        st.download_button(
            "Download reached by session (CSV)", reached.to_csv(index=False, lineterminator="\n"),
            file_name="technique_reached.csv", mime="text/csv", key="download_reached", icon=":material/download:",
        )
        st.header("Cumulative responder curve")
        st.plotly_chart(details["curve_figure"], key="responder_curve_chart", config=charts.CONFIG)
        st.caption("The same episodes and rule as the bars above: at 15, 30 and 50 % the curve equals them.")
        st.header("Effect sizes")
        st.caption(f"Mean improvement (points) in standard deviations, at session {ANSWER_SESSION} (episodes "
                   "seen then) and at the last session (the episodes of the bars above). **SRM**, the standardised "
                   "response mean: mean change / SD of the change (exact 95 % interval). **Cohen's d**: mean change / "
                   "SD of baseline pain (Becker's 95 % interval). Before–after effects within a technique: they "
                   "include natural recovery and regression to the mean, so they do not compare techniques.")
        show_table(details["effect_sizes"], "effect_table",
                   timepoint="When", mean_change="Mean improvement (points)", srm="SRM",
                   srm_ci95_low="SRM 95 % CI low", srm_ci95_high="SRM 95 % CI high", cohens_d="Cohen's d",
                   d_ci95_low="d 95 % CI low", d_ci95_high="d 95 % CI high")
        _sample_note(resources.SAMPLE_EPISODES, "The responders at the last session above count every episode.")

elif section == "Time to response":
    st.header("Sessions until a 30 % improvement")
    response = ready(lambda: resources.responder_analyses(actor, where, RULE, resources.SAMPLE_EPISODES),
                      "time_to_response")
    if response is not None:
        medians = response["medians"]
        st.plotly_chart(response["kaplan_meier_figure"], key="km_chart", config=charts.CONFIG)
        st.caption("Kaplan–Meier: episodes that stopped before responding are censored, not counted as failures. "
                   + RULE.sentence() + " Its episode counts include single-session episodes, censored at session 1, "
                   "so they exceed those of Responders, which leaves such episodes out as of unknown outcome; they "
                   "change no estimate after session 1.")
        show_table(medians, "median_table")
        _small_note(medians)
        _sample_note(resources.SAMPLE_EPISODES)

elif section == "Adjusted comparison":
    st.header("Adjusted difference in pain from the reference technique")
    adjusted = ready(lambda: resources.adjusted_comparison(actor, where, resources.COMPARISON_EPISODES),
                      "adjusted_comparison")
    if adjusted is not None:
        st.info(adjusted["sentence"], icon=":material/balance:")
        st.caption(THREE_FITS)
        if adjusted["figure"] is not None:
            st.plotly_chart(adjusted["figure"], key="forest_chart", config=charts.CONFIG)
        show_table(adjusted["table"][COMPARISON_COLUMNS], "comparison_table")
        if adjusted["multiple_comparisons"]:
            st.caption(adjusted["multiple_comparisons"])
        _sample_note(resources.COMPARISON_EPISODES)
        if notes := {model: notes for model, notes in adjusted["fit_notes"].items() if notes}:
            with st.expander("How the models were fitted"):
                for model, model_notes in notes.items():
                    st.caption(f"**{model[0].upper() + model[1:]}**: " + "; ".join(model_notes) + ".")

elif section == "Clinicians":
    st.header("Clinicians' adjusted improvement")
    st.caption("Estimates from a mixed model (episodes of care within clinicians), adjusted for baseline pain and "
               "technique; small caseloads are pulled towards the clinic mean, so they are not ranked as outliers. "
               "An episode counts for the clinician who saw its first session, as in the clinician filter.")
    fitted = ready(lambda: resources.clinician_benchmark(actor, where, resources.SAMPLE_EPISODES),
                    "clinician_benchmark")
    if fitted is not None and fitted["benchmark"].empty:
        st.info("Not enough episodes with a recorded clinician for these filters.")
    elif fitted is not None:
        st.plotly_chart(fitted["funnel_figure"], key="funnel_chart", config=charts.CONFIG)
        st.plotly_chart(fitted["caterpillar_figure"], key="caterpillar_chart", config=charts.CONFIG)
        show_table(fitted["benchmark"], "clinician_table", estimate="Adjusted improvement (points)")
        _sample_note(resources.SAMPLE_EPISODES)

elif section == "Observed vs expected":  # expected recovery, risk-adjusted (#18): dashboard/recovery_sections.py
    recovery_sections.observed_minus_expected(actor, where)

elif section == "Safety":
    st.caption(
        "A side effect counts under the technique of the session it happened in. "
        + ("With a technique filter, every session of the chosen technique counts, also in episodes of care that "
           "began with another technique; the other filters choose episodes." if where.techniques else
           "The filters choose episodes of care; every session of those episodes counts."),
    )
    tables = ready(lambda: resources.safety_tables(actor, where), "safety")
    if tables is None:
        st.stop()
    if tables["rates"].empty:
        st.info("No sessions match these filters.")
        st.stop()
    st.header("Significant and serious side effects")
    serious = tables["serious"]
    st.info(tables["serious_sentence"], icon=":material/health_and_safety:")
    st.plotly_chart(tables["figures"]["serious"], key="serious_chart", config=charts.CONFIG)
    show_table(serious.rename(columns={"source": "technique"}), "serious_table", events="Events",
               sessions="Sessions (published: treatments)", per_100="Per 100 sessions", bound="Upper bound only",
               p_value="p (exact test against the clinic)")
    st.header("Mild side effects beside the published rates")
    st.plotly_chart(tables["figures"]["published"], key="safety_published_chart", config=charts.CONFIG)
    st.caption(f"Events per 100 sessions with exact Poisson (Garwood) 95 % intervals, beside events per 100 "
               f"treatments: {BRADY_2014}; {BOYCE_2020}. A session can have several side effects. "
               "Their definitions and recording differ from a clinic's: a yardstick, not a standard.")
    st.caption("Post-needling soreness is shown beside no published figure: trials report it as a share of "
               f"patients followed up for days ({SORENESS_TRIALS}), not per 100 treatments.")
    st.header("Side effects per 100 sessions")
    st.plotly_chart(tables["figures"]["by_type"], key="safety_chart", config=charts.CONFIG)
    summary = tables["summary"]
    show_table(summary.rename(columns={"side_effect": "code"}), "safety_table", ci95_low="Per 100: 95 % CI low",
               ci95_high="Per 100: 95 % CI high")
    st.download_button(
        "Download side effects (CSV)", summary.to_csv(index=False, lineterminator="\n"),
        file_name="technique_safety.csv", mime="text/csv", key="download_safety", icon=":material/download:",
    )
    st.header("Share of sessions with a side effect")
    st.caption("Sessions with at least one side effect of each severity, with 95 % Wilson intervals. No publication "
               "reports this share, so it stands beside none.")
    show_table(tables["shares"], "safety_share_table", percent=("ci95_low", "ci95_high"),
               sessions_with="Sessions with one", share="Share of sessions")
