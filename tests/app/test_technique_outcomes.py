"""The manager's page renders every section from the sample data, filters, and its CSVs match the CLI."""

from __future__ import annotations

import io
import json
import threading
import warnings
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from analytics import clinicians, comparison
from clinic.vocabulary import TECHNIQUE_LABELS
from dashboard import resources
from dashboard.tables import HEADERS, PERCENT
from db.cli import main
from db.engine import make_engine, write_session
from db.writes import record_session
from tests.app.conftest import APP, download_content, log_in
from tests.db.factories import ADMIN, record, session_input

ALERTS_SHOWN = 10  # as on the page (a page script cannot be imported)
# The sample's significant side effects: 3 recorded by clinicians and 3 reported by patients in their diaries.
SAMPLE_ALERTS = 6
SECTIONS = ["Overview", "Responders", "Time to response", "Adjusted comparison", "Clinicians", "Observed vs expected",
            "Safety"]


def show(app, section: str):
    """Show `section` as a user sees it once its analyses are ready: the first run starts those computed on the
    worker, the next, after they finish, draws them."""
    app.segmented_control(key="section").set_value(section).run()
    assert resources.analyses_settled(timeout=120), "an analysis still running after 2 minutes"
    return app.run()


def table_with(app, column):
    for frame in app.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a {column!r} column on the page")


@pytest.fixture
def manager(as_role):
    return as_role("manager")


def cli_output(capsys, url, *args) -> str:
    capsys.readouterr()
    assert main(["--url", url, "summary", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("section", SECTIONS)
def test_every_section_renders_from_the_sample_data_without_warnings(manager, section):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        show(manager, section)
    assert not manager.exception, manager.exception
    assert not manager.warning
    assert [str(w.message) for w in caught if "ScriptRunContext" not in str(w.message)] == []
    assert manager.segmented_control(key="section").value == section
    assert manager.dataframe, f"{section}: no table shown"


def test_overview_shows_the_curve_table_with_small_groups_flagged_and_alerts_at_the_top(manager):
    summary = table_with(manager, "mean_improvement_pct")
    assert set(summary["technique"]) == {"Superficial dry needling", "Deep dry needling", "Electrical dry needling"}
    assert any("a single session" in c.value for c in manager.caption)
    assert any("baseline pain 0" in c.value for c in manager.caption)
    manager.multiselect(key="filter_conditions").select("carpal_tunnel").run()  # a small group
    summary = table_with(manager, "mean_improvement_pct")
    assert (summary["small"] == (summary["patients"] < 10)).all() and summary["small"].any()
    # Alerts ignore the filters, so none hides behind one.
    assert f"{SAMPLE_ALERTS} significant or serious side effect(s) to review" in manager.error[0].value


def test_a_period_given_only_its_first_day_is_named_as_the_days_from_it_that_it_counts(manager, seeded_url):
    """Only a start picked in "First session between": the figures count the episodes from that day on, and the line
    above them says so, not that they are that one day's."""
    engine = make_engine(seeded_url)
    with engine.connect() as connection:
        firsts = sorted(date.fromisoformat(str(day)) for day in connection.execute(text(  # of the episodes the
            "SELECT session_date FROM sessions WHERE session_number = 1 AND deleted_at IS NULL AND pain_before > 0"
        )).scalars())  # curve counts: a baseline above 0
    engine.dispose()
    start = firsts[len(firsts) // 2]
    counted = sum(day >= start for day in firsts)
    assert firsts.count(start) < counted  # the one day alone would be another count
    manager.date_input(key="filter_period").set_value((start,)).run()
    assert not manager.exception, manager.exception
    summary = next(c.value for c in manager.caption if "in these figures" in c.value)
    assert summary == f"**{counted:,} episodes of care** in these figures: first session on or after {start}."


def test_summary_download_matches_the_cli_summary(manager, seeded_url, capsys):
    assert download_content(manager, "download_summary") == cli_output(capsys, seeded_url)


def test_responders_download_matches_the_cli_responder_summary(manager, seeded_url, capsys):
    show(manager, "Responders")
    assert download_content(manager, "download_responders") == cli_output(capsys, seeded_url, "--responders")


def test_adjusted_comparison_states_the_caveat_and_a_difference_with_interval(manager):
    show(manager, "Adjusted comparison")
    sentence = next(i.value for i in manager.info if i.value.startswith("Compared with"))
    assert "observational" in sentence or "not a trial" in sentence
    table = table_with(manager, "estimate")
    assert {"ci95_low", "ci95_high", "p_value", "patients", "sessions"} <= set(table.columns)
    assert (table["ci95_low"] <= table["estimate"]).all() and (table["estimate"] <= table["ci95_high"]).all()


@pytest.mark.parametrize(
    ("key", "value"),
    [("filter_conditions", "neck_pain"), ("filter_regions", "neck"), ("filter_clinicians", "clin_ahmed"),
     ("filter_techniques", "deep")],
)
def test_each_filter_narrows_the_figures(manager, key, value):
    everyone = table_with(manager, "mean_improvement_pct")["patients"].sum()
    manager.multiselect(key=key).select(value).run()
    assert not manager.exception
    narrowed = table_with(manager, "mean_improvement_pct")["patients"].sum()
    assert 0 < narrowed < everyone


def test_marking_an_alert_reviewed_removes_it_from_the_top_of_the_page(manager):
    before = len([b for b in manager.button if b.key and b.key.startswith("review_")])
    first = next(b for b in manager.button if b.key and b.key.startswith("review_"))
    first.click().run()
    assert not manager.exception
    after = len([b for b in manager.button if b.key and b.key.startswith("review_")])
    assert after == before - 1


def test_many_alerts_show_the_most_recent_with_buttons_and_list_the_rest(as_role, seeded_url):
    engine = make_engine(seeded_url)
    for day in range(1, 13):  # twelve more serious events, on top of the sample's
        entry = session_input(patient_id=f"A{day:03d}", session_date=f"2025-06-{day:02d}",
                              side_effects=[("syncope", "serious")])
        with write_session(engine) as session:
            record_session(session, actor=ADMIN, entry=entry)
    engine.dispose()
    manager = as_role("manager")
    assert f"{SAMPLE_ALERTS + 12} significant or serious side effect(s) to review" in manager.error[0].value
    buttons = [b for b in manager.button if b.key and b.key.startswith("review_")]
    assert len(buttons) == ALERTS_SHOWN
    older = next(frame.value for frame in manager.dataframe if "severity" in frame.value.columns)
    assert len(older) == SAMPLE_ALERTS + 12 - ALERTS_SHOWN
    assert "side_effect_id" not in older.columns and set(older["severity"]) <= {"significant", "serious"}


def test_safety_section_shows_rates_beside_the_published_ones(manager):
    show(manager, "Safety")
    rates = table_with(manager, "per_100_sessions")
    assert {"ci95_low", "ci95_high", "events", "sessions"} <= set(rates.columns)
    shares = table_with(manager, "sessions_with")
    assert {"share", "ci95_low", "ci95_high"} <= set(shares.columns)
    assert any("Brady" in c.value for c in manager.caption)
    sentence = next(i.value for i in manager.info if i.value.startswith("Significant or serious"))
    assert "3 in 1,571 sessions, 0.19 per 100" in sentence and "upper bound" in sentence
    assert any("soreness" in c.value and "beside no published figure" in c.value for c in manager.caption)


def test_an_interval_of_no_sessions_with_a_side_effect_starts_at_exactly_zero(manager):
    # The sample's serious rows have 0 sessions; a bound of 4e-19 read on screen as a bound above 0.
    show(manager, "Safety")
    shares = table_with(manager, "sessions_with")
    none = shares[shares["sessions_with"] == 0]
    assert len(none) > 0 and (none["ci95_low"] == 0.0).all() and (none["ci95_high"] > 0).all()


def test_safety_download_matches_the_cli_safety_summary(manager, seeded_url, capsys):
    show(manager, "Safety")
    assert download_content(manager, "download_safety") == cli_output(capsys, seeded_url, "--safety")


def test_reached_by_session_download_matches_the_cli_reached_summary(manager, seeded_url, capsys):
    show(manager, "Responders")
    assert download_content(manager, "download_reached") == cli_output(capsys, seeded_url, "--reached")


def test_reached_by_session_4_is_the_kaplan_meier_row_at_session_4_and_the_responder_rule_is_disclosed(manager):
    show(manager, "Responders")
    early = table_with(manager, "at_risk")
    assert set(early["session_number"]) == {4} and set(early["threshold_pct"]) == {15, 30, 50}
    assert any("Kaplan–Meier" in c.value and "censored" in c.value for c in manager.caption)
    rule = next(c.value for c in manager.caption if c.value.startswith("**Who counts as a responder.**"))
    assert "20 points" in rule and "40 of 100" in rule


def test_a_threshold_every_episode_reached_before_session_4_stays_in_the_by_session_4_table(manager):
    # In the sample data, clin_ahmed's sciatica episodes all reach 15 % before session 4 (a tester's filter): no
    # episode is at risk at 4, and the table left the threshold out though 100 % had reached it by then.
    manager.multiselect(key="filter_conditions").select("sciatica")
    manager.multiselect(key="filter_clinicians").select("clin_ahmed").run()
    show(manager, "Responders")
    reached = pd.read_csv(io.StringIO(download_content(manager, "download_reached")))
    last = reached[reached["session_number"] <= 4].groupby(["technique", "threshold_pct"]).tail(1)
    every_one_earlier = last[(last["session_number"] < 4) & (last["events"] == last["at_risk"])]
    assert not every_one_earlier.empty, "the sample no longer has the case this test is about"
    early = table_with(manager, "at_risk").set_index(["technique", "threshold_pct"])
    every_one_earlier = every_one_earlier.assign(technique=every_one_earlier["technique"].map(TECHNIQUE_LABELS))
    for row in every_one_earlier.itertuples():
        assert early.loc[(row.technique, row.threshold_pct), ["session_number", "at_risk", "events"]].tolist() \
            == [4, 0, 0]
        assert early.loc[(row.technique, row.threshold_pct), "reached"] == 1.0
    at_4 = last[last["session_number"] == 4]
    assert len(early) == len(at_4) + len(every_one_earlier)


def test_the_responders_section_shows_srm_and_cohens_d_at_session_4_and_the_last_session(manager):
    show(manager, "Responders")
    table = table_with(manager, "srm")
    assert set(table["timepoint"]) == {"session 4", "last session"}
    assert set(table["technique"]) == {"Superficial dry needling", "Deep dry needling", "Electrical dry needling"}
    assert ((table["srm_ci95_low"] < table["srm"]) & (table["srm"] < table["srm_ci95_high"])).all()
    assert ((table["d_ci95_low"] < table["cohens_d"]) & (table["cohens_d"] < table["d_ci95_high"])).all()


def test_filtering_on_a_technique_shows_only_that_techniques_sessions_in_safety(manager):
    manager.multiselect(key="filter_techniques").select("superficial").run()
    show(manager, "Safety")
    assert not manager.exception
    rates = table_with(manager, "per_100_sessions")
    assert set(rates["technique"]) == {"Superficial dry needling", "All techniques"}
    assert any("every session of the chosen technique counts" in c.value for c in manager.caption)


def test_the_overview_table_counts_episodes_and_says_so(manager):
    element = next(d for d in manager.dataframe if "mean_improvement_pct" in d.value.columns)
    assert column_headers(element)["patients"] == "Episodes"
    captions = " ".join(c.value for c in manager.caption)
    assert "fewer than 10 episodes of care" in captions and "10 patients" not in captions


@pytest.mark.parametrize("column", ["status_group", "scenario"])
def test_the_completed_and_dropped_out_tables_have_distinct_headers_and_rounded_figures(manager, column):
    show(manager, "Responders")
    element = next(d for d in manager.dataframe if column in d.value.columns)
    headers = list(column_headers(element).values())
    assert len(headers) == len(set(headers)), f"two columns share a header: {headers}"
    table = element.value
    # Rounded as the page's contract tables are: percent figures to 2 decimals, shares (0–1) to 4.
    for name, decimals in {"mean_improvement_pct": 2, "ci95_low": 2, "ci95_high": 2, "share_30": 4,
                           "ci95_low_30": 4, "ci95_high_30": 4}.items():
        figures = table[name].dropna()
        assert len(figures) > 0 and figures.equals(figures.round(decimals)), f"{name}: {figures.tolist()}"


def test_methods_page_explains_the_definitions(manager):
    manager.switch_page("views/methods.py").run()
    assert not manager.exception
    text = "\n".join(m.value for m in manager.markdown)
    assert "Wilson" in text and "Kaplan" in text and "IMMPACT" in text


def _sample_notes(app) -> list[str]:
    return [c.value for c in app.caption if "fixed sample" in c.value]


def _median_patients(app) -> int:
    return int(table_with(app, "median_sessions")["patients"].sum())


def test_sections_on_a_sample_of_a_large_clinic_say_so_and_run_on_it(manager, monkeypatch):
    show(manager, "Time to response")
    everyone = _median_patients(manager)
    assert _sample_notes(manager) == []  # the sample data's 300 episodes are below either size: no sample

    monkeypatch.setattr(resources, "SAMPLE_EPISODES", 120)
    monkeypatch.setattr(resources, "COMPARISON_EPISODES", 90)
    expected = {
        "Responders": (120, "The responders at the last session above count every episode."),
        "Time to response": (120, ""),
        "Adjusted comparison": (90, ""),
        "Clinicians": (120, ""),
    }
    show(manager, "Safety")
    assert _sample_notes(manager) == []  # side effects are counted in the database, every session
    for section, (size, exact) in expected.items():
        show(manager, section)
        assert not manager.exception, manager.exception
        [note] = _sample_notes(manager)
        assert note.startswith(f"From a fixed sample of {size} of the 300 episodes of care"), note
        assert note.endswith(exact or "would take minutes.")
        if section == "Time to response":
            assert _median_patients(manager) <= size < everyone


def test_the_page_opens_with_a_sentence_naming_the_technique_that_did_best_by_session_4(manager):
    sentence = manager.info[0].value
    assert sentence.startswith("By session 4, ")
    assert "episodes" in sentence and "95 % CI" in sentence


def test_filters_are_kept_after_visiting_another_page(manager):
    manager.multiselect(key="filter_conditions").select("neck_pain").run()
    narrowed = manager.info[0].value
    manager.switch_page("views/methods.py").run()
    manager.switch_page("views/technique_outcomes.py").run()
    assert not manager.exception
    assert manager.multiselect(key="filter_conditions").value == ["neck_pain"]
    assert manager.info[0].value == narrowed
    assert not manager.warning  # no "default value and Session State" warning from the restored widgets


def column_headers(element) -> dict[str, str]:
    """Return the on-screen header of each column of a drawn dataframe, from its column configuration."""
    config = json.loads(element.proto.columns)
    return {name: column.get("label", name) for name, column in config.items() if name != "_index"}


@pytest.mark.parametrize(("section", "column"), [("Responders", "at_risk"), ("Time to response", "median_sessions"),
                                                 ("Adjusted comparison", "p_value"),
                                                 ("Clinicians", "outside_clinic_mean"), ("Safety", "per_100_sessions"),
                                                 ("Safety", "sessions_with"), ("Safety", "bound")])
def test_tables_on_screen_have_human_headers(manager, section, column):
    show(manager, section)
    element = next(d for d in manager.dataframe if column in d.value.columns)
    headers = column_headers(element)
    assert headers, f"{section}: no column configuration"
    raw = [label for label in headers.values() if "_" in label]
    assert raw == [], f"{section}: raw column names on screen: {raw}"
    assert "Technique" in headers.values() or "Clinician" in headers.values()


def test_every_header_and_percent_column_is_one_a_table_on_the_page_shows(manager):
    shown = set()
    for section in SECTIONS:
        show(manager, section)
        shown |= {column for frame in manager.dataframe for column in frame.value.columns}
    assert (set(HEADERS) | set(PERCENT)) - shown == set()


# The models: computed once per data version for everyone, on the worker, never holding up the page (issue 15) -----


def progress_notes(app) -> list[str]:
    return [bar.proto.text for bar in app.get("progress")]


class CountedFits:
    """The clinician model's fits, counted whoever asked; each waits until `go` is set (it is, unless a test clears
    it to hold a fit on the worker)."""

    def __init__(self, monkeypatch):
        self.calls, self.go, fit = [], threading.Event(), clinicians.clinician_benchmark
        self.go.set()

        def counted(improvement):
            assert self.go.wait(timeout=120), "the test never let the fit go on"
            self.calls.append(len(improvement))
            return fit(improvement)

        monkeypatch.setattr(clinicians, "clinician_benchmark", counted)


@pytest.fixture
def benchmark_fits(monkeypatch) -> CountedFits:
    return CountedFits(monkeypatch)


def test_a_slow_model_fit_does_not_hold_up_the_page_and_its_result_appears_when_ready(manager, monkeypatch):
    release = threading.Event()
    fit = comparison.mixed_model_comparison

    def slow_fit(improvement, reference=None):
        assert release.wait(timeout=120), "the test never released the fit"
        return fit(improvement, reference)

    monkeypatch.setattr(comparison, "mixed_model_comparison", slow_fit)
    manager.segmented_control(key="section").set_value("Adjusted comparison").run()
    assert [h.value for h in manager.header] == ["Adjusted difference in pain from the reference technique"]
    assert manager.info[0].value.startswith("By session 4, ")  # the rest of the page is drawn meanwhile
    assert f"{SAMPLE_ALERTS} significant or serious side effect(s) to review" in manager.error[0].value
    [note] = progress_notes(manager)
    assert note.startswith("Being computed…")
    assert not [frame for frame in manager.dataframe if "p_holm" in frame.value.columns]

    release.set()
    assert resources.analyses_settled(timeout=120)
    manager.run()
    assert progress_notes(manager) == []
    table = table_with(manager, "p_holm")
    assert set(table["model"]) == {"mixed model", "OLS, clustered errors", "ANCOVA"}
    assert any(c.value.startswith("As of ") for c in manager.caption)


def test_the_adjusted_comparison_shows_three_fits_their_columns_and_the_multiple_comparison_note(manager):
    show(manager, "Adjusted comparison")
    element = next(d for d in manager.dataframe if "p_holm" in d.value.columns)
    assert list(element.value.columns) == [
        "technique", "model", "estimate", "ci95_low", "ci95_high", "p_value", "p_holm", "df", "patients",
        "distinct_patients", "sessions", "structure",
    ]
    headers = column_headers(element)
    assert (headers["patients"], headers["distinct_patients"], headers["structure"]) == (
        "Episodes", "Patients", "Fitted as")
    captions = [c.value for c in manager.caption]
    assert any(c.startswith("Three fits of the same comparison: a mixed model") for c in captions)
    assert any("Holm-adjusted p-values" in c for c in captions)
    forest = next(chart for chart in manager.get("plotly_chart") if chart.proto.id.endswith("forest_chart")
                  or "forest_chart" in chart.proto.id)
    names = {trace["name"] for trace in json.loads(forest.proto.spec)["data"]}
    assert any(name.endswith(", OLS, clustered errors") for name in names)


def test_a_models_result_is_computed_once_for_every_user_allowed_to_see_it(manager, benchmark_fits):
    show(manager, "Clinicians")
    first = table_with(manager, "outside_clinic_mean")
    other = log_in(AppTest.from_file(APP, default_timeout=30).run(), "admin")  # another person, another session
    other.switch_page("views/technique_outcomes.py").run()
    other.segmented_control(key="section").set_value("Clinicians").run()
    assert progress_notes(other) == []  # no wait: the fit made for the manager is shown at once
    assert table_with(other, "outside_clinic_mean").equals(first)
    assert len(benchmark_fits.calls) == 1


def as_of(app) -> str:
    [caption] = [c.value for c in app.caption if c.value.startswith("As of ")]
    return caption


def test_a_write_makes_the_next_visit_fit_the_model_again_showing_the_older_fit_meanwhile(
        manager, seeded_url, benchmark_fits):
    show(manager, "Clinicians")
    show(manager, "Clinicians")
    assert len(benchmark_fits.calls) == 1  # nothing changed: the same fit
    assert not as_of(manager).endswith("before the latest changes")

    engine = make_engine(seeded_url)
    record(engine, patient_id="P0001", session_date="2025-06-02", clinician="clin_ahmed")
    engine.dispose()
    benchmark_fits.go.clear()
    manager.run()
    assert as_of(manager).endswith("before the latest changes") and progress_notes(manager) != []
    assert not table_with(manager, "outside_clinic_mean").empty  # the older fit stays on the page meanwhile

    benchmark_fits.go.set()
    assert resources.analyses_settled(timeout=120)
    manager.run()
    assert len(benchmark_fits.calls) == 2
    assert progress_notes(manager) == [] and not as_of(manager).endswith("before the latest changes")


def test_a_sign_in_changes_no_figure_so_no_model_is_fitted_again(manager, benchmark_fits):
    show(manager, "Clinicians")
    log_in(AppTest.from_file(APP, default_timeout=30).run(), "clin_ahmed")  # audited, but no data changed
    show(manager, "Clinicians")
    assert len(benchmark_fits.calls) == 1


def test_refresh_fits_the_model_again_from_the_data_stored_now(manager, benchmark_fits):
    show(manager, "Clinicians")
    manager.button(key="refresh_clinician_benchmark").click().run()
    assert resources.analyses_settled(timeout=120)
    manager.run()
    assert len(benchmark_fits.calls) == 2
    assert progress_notes(manager) == [] and as_of(manager)


def test_sections_whose_counts_or_intervals_differ_from_anothers_say_why(manager):
    # Testers saw Time to response count more episodes than Responders, and a clinician inside the funnel limits
    # with a 95 % CI clear of 0, and found nothing on the page to explain either.
    show(manager, "Time to response")
    assert any("include single-session episodes, censored at session 1, so they exceed those of Responders"
               in c.value for c in manager.caption)
    show(manager, "Observed vs expected")
    assert any(c.value.startswith("The two intervals answer different questions.") for c in manager.caption)
