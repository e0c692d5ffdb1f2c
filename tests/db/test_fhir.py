"""Tests that the FHIR export of the sample data is a valid R4 Bundle holding the stored codes, units and values."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pandas as pd
import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select
from sqlmodel import Session

from db import episodes, fhir
from db.cli import main
from db.engine import write_session
from db.models import AuditEvent, Episode
from tests.conftest import BACKENDS
from tests.db.factories import (
    ADMIN,
    SAMPLE_FILE,
    TODAY,
    another_database,
    engine_on,
    import_file,
    import_frame,
    interchange_rows,
    stored_sessions,
)

VAS_RANGE = ({"value": 0, "unit": "mm", "system": fhir.UCUM, "code": "mm"},
             {"value": 100, "unit": "mm", "system": fhir.UCUM, "code": "mm"})
NRS_RANGE = ({"value": 0, "unit": "{score}", "system": fhir.UCUM, "code": "{score}"},
             {"value": 10, "unit": "{score}", "system": fhir.UCUM, "code": "{score}"})


def resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


@pytest.fixture(scope="module", params=BACKENDS)
def sample_bundle(request, tmp_path_factory) -> tuple[dict, pd.DataFrame, str]:
    """Return the Bundle `python -m db export FILE.json` writes for the sample data, the stored sessions, the URL.

    Built once per backend for the module's read-only tests.
    """
    directory = tmp_path_factory.mktemp("fhir")
    with another_database(request, request.param, directory) as url:
        assert main(["--url", url, "import", str(SAMPLE_FILE)]) == 0
        path = directory / "bundle.json"
        assert main(["--url", url, "export", str(path)]) == 0
        with engine_on(url) as engine:
            stored = stored_sessions(engine)
        yield json.loads(path.read_text(encoding="utf-8")), stored, url


def test_the_sample_data_bundle_validates_with_the_r4b_models(sample_bundle):
    bundle, stored, _ = sample_bundle
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "collection"
    assert len(parsed.entry) == len(bundle["entry"])
    kinds = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    assert kinds == {
        "Patient": stored["patient_id"].nunique(),
        "Observation": len(stored),
        "Procedure": len(stored),
        "AdverseEvent": sum(len(effects) for effects in stored["side_effects"]),
        "EpisodeOfCare": stored["episode_id"].nunique(),
    }
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    references = {r["subject"]["reference"] for kind in ("Observation", "Procedure", "AdverseEvent")
                  for r in resources(bundle, kind)}
    references |= {r["patient"]["reference"] for r in resources(bundle, "EpisodeOfCare")}
    references |= {x["valueReference"]["reference"] for r in resources(bundle, "Procedure") for x in r["extension"]
                   if x["url"] == fhir.EPISODE_EXTENSION}
    assert references <= set(full_urls)


def test_every_observation_value_code_and_unit_is_the_stored_pain_score(sample_bundle):
    bundle, stored, _ = sample_bundle
    observed = Counter()
    for obs in resources(bundle, "Observation"):
        assert obs["status"] == "final"
        assert obs["category"][0]["coding"][0] == {"system": fhir.OBSERVATION_CATEGORY, "code": "survey",
                                                   "display": "Survey"}
        [coding] = obs["code"]["coding"]
        assert coding["system"] == "http://loinc.org"
        quantity = obs["valueQuantity"]
        assert quantity["system"] == fhir.UCUM and quantity["unit"] == quantity["code"]
        [scale_range] = obs["referenceRange"]
        if coding["code"] == "38214-3":  # VAS, 0–100 mm
            scale = "vas_100"
            assert quantity["unit"] == "mm" and (scale_range["low"], scale_range["high"]) == VAS_RANGE
            assert "0–100 mm" in scale_range["text"]
        else:
            assert coding["code"] == "72514-3"  # NRS, 0–10
            scale = "nrs_10"
            assert quantity["unit"] == "{score}" and (scale_range["low"], scale_range["high"]) == NRS_RANGE
        patient = obs["subject"]["identifier"]
        assert patient["system"] == fhir.PATIENT_ID_SYSTEM
        observed[(patient["value"], obs["effectiveDateTime"], scale, quantity["value"])] += 1
    expected = Counter(
        (row.patient_id, row.session_date.isoformat(), row.pain_scale, row.pain_before) for row in stored.itertuples()
    )
    assert observed == expected
    assert {"vas_100", "nrs_10"} <= {scale for _, _, scale, _ in observed}  # the sample has both scales


def test_pain_after_is_a_component_on_the_same_scale(sample_bundle):
    bundle, stored, _ = sample_bundle
    with_after = [o for o in resources(bundle, "Observation") if "component" in o]
    assert len(with_after) == stored["pain_after"].notna().sum()
    for obs in with_after:
        [component] = obs["component"]
        assert component["code"]["coding"][0]["code"] == "after-session"
        assert component["valueQuantity"]["unit"] == obs["valueQuantity"]["unit"]


def test_procedures_carry_the_technique_and_cpt_by_number_of_muscles(sample_bundle):
    bundle, stored, _ = sample_bundle
    found = Counter()
    for procedure in resources(bundle, "Procedure"):
        assert procedure["status"] == "completed"
        codings = procedure["code"]["coding"]
        assert codings[0]["system"] == fhir.TECHNIQUE_SYSTEM
        assert codings[0]["code"] in ("superficial", "deep", "electrical")
        muscles = len(procedure.get("bodySite", []))
        cpt = [c["code"] for c in codings if c["system"] == "http://www.ama-assn.org/go/cpt"]
        assert cpt == ([] if muscles == 0 else ["20560"] if muscles <= 2 else ["20561"])
        found[(procedure["subject"]["identifier"]["value"], procedure["performedDateTime"], codings[0]["code"])] += 1
    assert found == Counter((r.patient_id, r.session_date.isoformat(), r.technique) for r in stored.itertuples())


def test_adverse_events_carry_code_and_severity_and_point_at_their_procedure(sample_bundle):
    bundle, stored, _ = sample_bundle
    procedures = {f"urn:uuid:{p['id']}": p for p in resources(bundle, "Procedure")}
    found = Counter()
    for event in resources(bundle, "AdverseEvent"):
        assert event["actuality"] == "actual"
        [code] = event["event"]["coding"]
        own, hl7 = event["severity"]["coding"]
        assert own["system"] == fhir.SEVERITY_SYSTEM and hl7["system"] == fhir.AE_SEVERITY
        assert hl7["code"] == {"mild": "mild", "significant": "moderate", "serious": "severe"}[own["code"]]
        procedure = procedures[event["suspectEntity"][0]["instance"]["reference"]]
        assert procedure["performedDateTime"] == event["date"]
        found[(event["subject"]["identifier"]["value"], event["date"], code["code"], own["code"])] += 1
    expected = Counter((r.patient_id, r.session_date.isoformat(), code, severity)
                       for r in stored.itertuples() for code, severity in r.side_effects)
    assert found == expected
    assert "significant" in {severity for *_, severity in found}


def test_patients_carry_only_the_pseudonymous_id_and_no_notes_leave(sample_bundle):
    bundle, _, _ = sample_bundle
    for patient in resources(bundle, "Patient"):
        assert set(patient) == {"resourceType", "id", "identifier"}
        assert [i["system"] for i in patient["identifier"]] == [fhir.PATIENT_ID_SYSTEM]
    text = json.dumps(bundle, ensure_ascii=False)
    assert "not html" not in text and "Šimůnek" not in text and "much better" not in text  # sample notes


def test_a_fhir_export_is_audited_once(sample_bundle):
    _, _, url = sample_bundle
    with engine_on(url) as engine, Session(engine) as session:
        exports = session.execute(
            select(AuditEvent.detail).where(AuditEvent.action == "export", AuditEvent.entity == "file")
        ).scalars().all()
    assert len(exports) == 1 and exports[0].startswith("FHIR R4 Bundle: ")


def test_resource_ids_are_stable_between_exports_of_the_same_data():
    table = interchange_rows(
        dict(patient_id="P1", session_date="2025-03-01", technique="deep", pain_scale="vas_100", pain_before="50",
             pain_after="", side_effects="bruising:mild", condition="", clinician="", twitch_response="", notes="",
             body_region="", muscles=""),
    )
    first, second = fhir.bundle_from_table(table), fhir.bundle_from_table(table)
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]
    assert first["id"] != second["id"]  # each Bundle is its own document


@pytest.mark.parametrize(("muscles", "code"), [("", None), ("a", "20560"), ("a;b", "20560"), ("a;b;c", "20561"),
                                               ("a;;b", "20560")])
def test_cpt_code_follows_the_number_of_muscles(muscles, code):
    assert fhir.cpt_code(muscles) == code


def test_an_export_of_imported_rows_holds_decimal_scores_as_numbers(engine, tmp_path):
    table = interchange_rows(
        dict(patient_id="P1", session_date="2025-03-01", technique="deep", pain_before="45.5", pain_after="40.25",
             muscles="a;b;c"),
        dict(patient_id="P1", session_date="2025-03-08", technique="deep", pain_scale="nrs_10", pain_before="4"),
    )
    import_file(engine, _csv(table, tmp_path))
    with Session(engine) as session:
        bundle = fhir.export_bundle(session, actor=ADMIN)
        audited = session.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "export"))
        assert audited.scalar_one() == 1
    values = [(o["valueQuantity"]["value"], o["valueQuantity"]["unit"]) for o in resources(bundle, "Observation")]
    assert values == [(45.5, "mm"), (4, "{score}")]
    Bundle.model_validate(bundle)


def _csv(table, tmp_path):
    path = tmp_path / "rows.csv"
    table.to_csv(path, index=False)
    return path


def test_each_episode_of_care_is_an_episode_of_care_resource_with_its_period_and_discharge_status(engine):
    import_frame(engine, interchange_rows(*(
        dict(patient_id="P1", session_date=day, technique="deep", pain_before="50", condition="neck_pain")
        for day in ("2025-01-10", "2025-02-10", "2025-07-15"))))  # the third, 155 days on, starts episode 2
    with write_session(engine) as session:
        first = session.scalars(select(Episode.id).where(Episode.number == 1)).one()
        episodes.discharge_episode(session, actor=ADMIN, episode_id=first, status="dropped_out",
                                   discharged_on=date(2025, 3, 1), today=TODAY)
        bundle = fhir.export_bundle(session, actor=ADMIN)
    Bundle.model_validate(bundle)
    courses = {r["identifier"][0]["value"]: r for r in resources(bundle, "EpisodeOfCare")}
    assert {key: (r["status"], r["period"], [x["valueCoding"]["code"] for x in r.get("extension", [])])
            for key, r in courses.items()} == {
        "P1/neck_pain/1": ("finished", {"start": "2025-01-10", "end": "2025-03-01"}, ["dropped_out"]),
        "P1/neck_pain/2": ("active", {"start": "2025-07-15"}, []),
    }
    by_id = {f"urn:uuid:{r['id']}": key for key, r in courses.items()}
    assert [(p["performedDateTime"], by_id[p["extension"][0]["valueReference"]["reference"]])
            for p in resources(bundle, "Procedure")] == [
        ("2025-01-10", "P1/neck_pain/1"), ("2025-02-10", "P1/neck_pain/1"), ("2025-07-15", "P1/neck_pain/2")]
