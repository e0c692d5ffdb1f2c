"""Tests that the demo data set is reproducible, valid interchange data and holds the edge cases it promises."""

import hashlib
import io
from datetime import date

import pandas as pd
import pytest

from sample_data import generate as sample
from sample_data import parameters

CONTRACT_COLUMNS = [
    "patient_id",
    "session_date",
    "technique",
    "pain_scale",
    "pain_before",
    "pain_after",
    "side_effects",
    "condition",
    "clinician",
    "twitch_response",
    "notes",
]
CONDITIONS = {
    "neck_pain",
    "low_back_pain",
    "plantar_fasciitis",
    "lateral_epicondylalgia",
    "shoulder_pain",
    "headache",
    "sciatica",
    "carpal_tunnel",
    "hamstring_strain",
    "other",
}
SIDE_EFFECT_CODES = {  # docs/DESIGN.md section 2
    "bleeding",
    "bruising",
    "pain_during",
    "soreness",
    "aggravation",
    "drowsiness",
    "fatigue",
    "headache",
    "nausea",
    "faintness",
    "syncope",
    "sweating",
    "emotional",
    "itching",
    "numbness",
    "nerve_irritation",
    "infection",
    "pneumothorax",
    "needle_breakage",
    "other",
}
SCALE_MAX = {"vas_100": 100, "nrs_10": 10}
# sha256 of the CSV text of generate(patients=400, start=date(2025, 5, 1), **NETWORK): 2,423 sessions. The first is
# of the columns before the needling record (issue #16), which drew nothing from their generator.
NETWORK_400_SHA256 = "fea06c8ff3771fe50281c1dac02dea21064b945177540a7bacc02ec29a93f014"
NETWORK_400_WITH_NEEDLING_SHA256 = "65c68dac39fbcfa4a9d306790de51c15ab1ffa96935ff2abc0808f2abee013fe"
STRICTA_COLUMNS = ["insertions", "side", "depth_mm", "needle_diameter_mm", "needle_length_mm", "twitch_count",
                   "retention_s", "manipulation", "estim_hz", "estim_pulse_us", "estim_ma", "estim_minutes", "adjuncts"]
ALL_COLUMNS = [*CONTRACT_COLUMNS, "body_region", "muscles", *STRICTA_COLUMNS]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """The default data set as generated."""
    return sample.generate()


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """The committed CSV as an importer sees it: every cell a string, empty cells empty."""
    return pd.read_csv(sample.CSV_PATH, dtype=str, keep_default_na=False)


def side_effect_pairs(cell: str) -> list[tuple[str, str]]:
    """Return the (code, severity) pairs of one side_effects cell."""
    return [tuple(pair.split(":")) for pair in cell.split(";") if pair]


def assert_valid_interchange(rows: pd.DataFrame, last_day: date) -> None:
    """Check every cell of ``rows`` (strings) against the interchange format and the extra columns."""
    assert list(rows.columns) == ALL_COLUMNS
    assert_valid_needling(rows)
    assert rows["patient_id"].str.fullmatch(r"[A-Za-z0-9_-]{1,64}").all()
    assert rows["session_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    days = pd.to_datetime(rows["session_date"], format="%Y-%m-%d")
    assert days.min() >= pd.Timestamp(2025, 5, 1) and days.max() <= pd.Timestamp(last_day)
    assert set(rows["technique"]) <= {"superficial", "deep", "electrical"}
    assert set(rows["pain_scale"]) <= set(SCALE_MAX)
    top = rows["pain_scale"].map(SCALE_MAX)
    assert rows["pain_before"].str.fullmatch(r"\d+").all()
    assert rows["pain_before"].astype(int).between(0, top).all()
    after = rows["pain_after"]
    assert after.str.fullmatch(r"\d*").all()
    present = after != ""
    assert after[present].astype(int).between(0, top[present]).all()
    pairs = rows["side_effects"].str.split(";").explode()
    pairs = pairs[pairs != ""].str.split(":", expand=True)
    assert set(pairs[0]) <= SIDE_EFFECT_CODES
    assert set(pairs[1]) <= {"mild", "significant", "serious"}
    assert not pairs.reset_index().duplicated(["index", 0]).any(), "a code twice in one session"
    assert set(rows["condition"]) <= CONDITIONS
    assert set(rows["clinician"]) <= set(parameters.CLINICIANS)
    assert set(rows["twitch_response"]) <= {"yes", "no", ""}
    for (condition, region), _ in rows.groupby(["condition", "body_region"]):
        expected = parameters.CONDITIONS[condition][1]
        assert region == expected if expected else region in parameters.OTHER_REGIONS
    muscles = rows["muscles"].str.split(";")
    assert muscles.map(len).between(1, 4).all()
    assert (muscles.map(lambda m: len(set(m))) == muscles.map(len)).all()
    treated = rows[["body_region"]].join(muscles.explode().rename("muscle")).drop_duplicates()
    for region, muscle in treated.itertuples(index=False):
        assert muscle in parameters.REGION_MUSCLES[region], (region, muscle)


def assert_valid_needling(rows: pd.DataFrame) -> None:
    """Check the STRICTA cells: each empty or valid (docs/DESIGN.md section 5), as the import would take them."""
    from db.validation import validate_session

    for row in rows.to_dict("records"):
        given = {name: row[name] for name in STRICTA_COLUMNS if row[name] != ""}
        answer = {"yes": True, "no": False}.get(row["twitch_response"])
        entry = validate_session({"patient_id": "P1", "session_date": "2025-01-01", "technique": row["technique"],
                                  "pain_before": 0, "twitch_response": answer, **given})
        assert entry.twitch_response is answer  # never answered by a count alone: an export gives back the file


def test_generate_gives_the_same_data_every_time(frame):
    again = sample.generate()
    pd.testing.assert_frame_equal(frame, again)
    assert sample.to_csv_text(frame) == sample.to_csv_text(again)


def test_committed_csv_is_exactly_a_fresh_generate(frame):
    assert sample.CSV_PATH.read_bytes() == sample.to_csv_text(frame).encode("utf-8")


def test_the_network_shape_gives_the_data_it_gave_when_pinned():
    # Reworking the generator must not change its data: the committed CSV pins the demo's, this digest the network's.
    frame = sample.generate(patients=400, start=date(2025, 5, 1), **sample.NETWORK)
    assert len(frame) == 2_423
    before_needling = frame[[*CONTRACT_COLUMNS, "body_region", "muscles"]]
    assert hashlib.sha256(sample.to_csv_text(before_needling).encode("utf-8")).hexdigest() == NETWORK_400_SHA256
    assert hashlib.sha256(sample.to_csv_text(frame).encode("utf-8")).hexdigest() == NETWORK_400_WITH_NEEDLING_SHA256


def test_columns_are_the_interchange_columns_then_body_region_muscles_and_the_needling_record(rows):
    assert list(rows.columns) == ALL_COLUMNS


def test_the_needling_record_has_gaps_by_clinician_and_time_and_none_among_its_adjuncts(rows):
    recorded = (rows[STRICTA_COLUMNS] != "").sum(axis=1)
    by_clinician = recorded.groupby(rows["clinician"]).mean()
    assert by_clinician["clin_fischer"] < 0.7 * by_clinician["clin_ahmed"]  # some clinicians record much less
    early = rows["session_date"] < "2025-11-01"
    assert recorded[early].mean() < recorded[~early].mean()  # older sessions are less complete
    assert (rows["adjuncts"] == "none").sum() > 100 and (rows["adjuncts"] == "").sum() > 100
    electrical = rows["technique"] == "electrical"
    assert (rows.loc[~electrical, ["estim_hz", "estim_ma"]] == "").all().all()
    assert (rows.loc[electrical, "estim_hz"] != "").mean() > 0.5


def test_every_cell_is_valid_interchange_data(rows):
    assert_valid_interchange(rows, last_day=date(2026, 11, 1))


def test_pain_values_are_integers_and_missing_pain_after_is_an_empty_cell():
    text = sample.CSV_PATH.read_text(encoding="utf-8")
    assert ".0," not in text
    assert ",," in text


def test_about_300_patients_with_one_episode_of_1_to_10_dated_sessions(rows):
    per_patient = rows.groupby("patient_id", sort=False)
    assert per_patient.ngroups == 300
    assert per_patient.size().between(1, 10).all()
    assert (per_patient["condition"].nunique() == 1).all()
    assert (per_patient["session_date"].agg(lambda d: list(d) == sorted(d))).all()
    main_clinician_share = per_patient["clinician"].agg(lambda c: c.value_counts().iloc[0] / len(c)).mean()
    assert main_clinician_share > 0.8


def test_some_patients_have_a_baseline_of_zero(rows):
    baseline = rows.groupby("patient_id", sort=False)["pain_before"].first().astype(int)
    assert 1 <= (baseline == 0).sum() <= 2


def test_some_patients_came_only_once(rows):
    sessions = rows.groupby("patient_id", sort=False).size()
    assert 0.03 <= (sessions == 1).mean() <= 0.15


def test_some_patients_switch_pain_scale_mid_episode(rows):
    mixed = rows.groupby("patient_id", sort=False)["pain_scale"].nunique() > 1
    assert 1 <= mixed.sum() <= 20


def test_some_patients_have_two_sessions_on_one_date_with_one_technique(rows):
    same_date = rows[rows.duplicated(["patient_id", "session_date"], keep=False)]
    assert 1 <= same_date["patient_id"].nunique() <= 20
    assert (same_date.groupby(["patient_id", "session_date"])["technique"].nunique() == 1).all()


def test_some_patients_switch_technique_once_after_session_2_or_3(rows):
    switched = 0
    for _, sessions in rows.groupby("patient_id", sort=False):
        techniques = list(sessions["technique"])
        changes = [k for k in range(1, len(techniques)) if techniques[k] != techniques[k - 1]]
        if changes:
            switched += 1
            assert len(changes) == 1 and changes[0] in (2, 3), techniques
    assert 1 <= switched <= 30


def test_twitch_response_is_mostly_yes_for_deep_and_electrical_and_mostly_no_for_superficial(rows):
    answered = rows[rows["twitch_response"] != ""]
    yes = (answered["twitch_response"] == "yes").groupby(answered["technique"]).mean()
    assert yes["deep"] > 0.6 and yes["electrical"] > 0.6 and yes["superficial"] < 0.3


def test_bruising_rate_is_near_the_published_rate(rows):
    bruised = rows["side_effects"].map(lambda cell: "bruising" in dict(side_effect_pairs(cell)))
    assert 0.05 <= bruised.mean() <= 0.11  # Brady et al. 2014: 7.55 % of treatments


def test_a_few_significant_events_and_no_serious_ones(rows):
    severities = [severity for cell in rows["side_effects"] for _, severity in side_effect_pairs(cell)]
    assert 2 <= severities.count("significant") <= 3
    assert "serious" not in severities


def test_notes_exercise_csv_quoting_and_html_escaping(rows):
    notes = set(rows["notes"])
    assert "<b>not html</b>" in notes
    assert any("," in note for note in notes) and any('"' in note for note in notes)
    assert (rows["notes"] == "").mean() > 0.9


def test_csv_reads_back_to_the_generated_values(frame):
    back = pd.read_csv(io.StringIO(sample.to_csv_text(frame)), dtype=str, keep_default_na=False)
    assert list(back["notes"]) == list(frame["notes"])
    assert list(back["pain_after"]) == ["" if pd.isna(v) else str(v) for v in frame["pain_after"]]


def test_other_seeds_and_sizes_give_valid_data():
    other = sample.generate(seed=7, patients=2_000)
    rows = pd.read_csv(io.StringIO(sample.to_csv_text(other)), dtype=str, keep_default_na=False)
    assert_valid_interchange(rows, last_day=date(2026, 11, 1))


def test_patient_ids_widen_to_stay_unique_past_9999_patients():
    ids = sample.generate(seed=7, patients=10_000)["patient_id"]
    assert ids.nunique() == 10_000
    assert ids.str.fullmatch(r"P\d{5}").all() and ids.iloc[0] == "P00001"
