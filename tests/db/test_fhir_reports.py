"""Tests that what patients report is in the FHIR export as R4 QuestionnaireResponses that validate with
fhir.resources.R4B and carry the stored values and the documented codes (docs/DESIGN.md section 5)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlmodel import Session

from clinic import side_effects
from db import fhir, fhir_reports, report_exchange
from db.cli import main
from tests.db.factories import ADMIN, SAMPLE_FILE, engine_on, import_file
from tests.db.test_report_exchange import add_reports


@pytest.fixture
def exported(engine, database_url, tmp_path):
    """Return the Bundle `python -m db export FILE.json` writes for sample data with reports, and the reports."""
    import_file(engine, SAMPLE_FILE)
    add_reports(engine)
    path = tmp_path / "bundle.json"
    assert main(["--url", database_url, "export", str(path)]) == 0
    with engine_on(database_url) as other, Session(other) as session:
        tables = report_exchange.report_tables(session, actor=ADMIN)
    return json.loads(path.read_text(encoding="utf-8")), tables


def responses(bundle: dict, questionnaire: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
            and e["resource"]["questionnaire"] == fhir_reports.QUESTIONNAIRE[questionnaire]]


def answer(items: list[dict], link: str):
    [item] = [i for i in items if i["linkId"] == link]
    [value] = item["answer"]
    return next(iter(value.values()))


def test_the_bundle_with_questionnaire_responses_validates_and_every_reference_resolves(exported):
    bundle, tables = exported
    Bundle.model_validate(bundle)
    for kind in ("diary", "pgic", "psfs"):
        for resource in responses(bundle, kind):
            QuestionnaireResponse.model_validate(resource)
    counts = Counter(r["questionnaire"] for r in (e["resource"] for e in bundle["entry"])
                     if r["resourceType"] == "QuestionnaireResponse")
    rated = tables["psfs"][tables["psfs"]["rated_at"] != ""]
    assert counts == {fhir_reports.QUESTIONNAIRE["diary"]: len(tables["diary"]),
                      fhir_reports.QUESTIONNAIRE["pgic"]: len(tables["pgic"]),
                      fhir_reports.QUESTIONNAIRE["psfs"]: len(rated.groupby(["patient_id", "episode", "rated_at"]))}
    urls = {e["fullUrl"] for e in bundle["entry"]}
    for kind in ("diary", "pgic", "psfs"):
        for resource in responses(bundle, kind):
            assert resource["subject"]["reference"] in urls
            references = [p["reference"] for p in resource.get("partOf", [])]
            references += [x["valueReference"]["reference"] for x in resource["extension"] if "valueReference" in x]
            assert references and set(references) <= urls  # its Procedure or EpisodeOfCare is in the Bundle


def test_diary_responses_carry_the_soreness_as_loinc_72514_3_and_the_side_effects(exported):
    bundle, tables = exported
    found = Counter()
    for resource in responses(bundle, "diary"):
        effects = tuple((answer(g["item"], "side-effect.code")["code"],
                         answer(g["item"], "side-effect.severity")["code"])
                        for g in resource["item"] if g["linkId"] == "side-effect")
        found[(resource["subject"]["identifier"]["value"], resource["authored"], answer(resource["item"], "window"),
               answer(resource["item"], "soreness"), effects)] += 1
        assert resource["author"]["reference"] == resource["subject"]["reference"]
    expected = Counter((r["patient_id"], r["recorded_at"], int(r["window_h"]), int(r["soreness"]),
                        tuple(side_effects.parse(r["side_effects"])))
                       for r in tables["diary"].to_dict("records"))
    assert found == expected
    assert any(effects for *_, effects in found)


def test_the_questionnaires_code_the_soreness_item_with_loinc_and_the_others_locally(exported):
    bundle, _ = exported
    found = {e["resource"]["url"]: e["resource"] for e in bundle["entry"]
             if e["resource"]["resourceType"] == "Questionnaire"}
    assert set(found) == set(fhir_reports.QUESTIONNAIRE.values())
    for resource in found.values():
        Questionnaire.model_validate(resource)
    diary = {i["linkId"]: i for i in found[fhir_reports.QUESTIONNAIRE["diary"]]["item"]}
    assert diary["soreness"]["code"] == [{"system": "http://loinc.org", "code": "72514-3",
                                          "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported"}]
    [pgic] = found[fhir_reports.QUESTIONNAIRE["pgic"]]["item"]
    assert pgic["code"][0]["system"] == fhir_reports.REPORTED_SYSTEM
    assert [o["valueCoding"]["display"] for o in pgic["answerOption"]][::6] == ["Very much improved",
                                                                                "Very much worse"]


def test_pgic_and_psfs_responses_carry_their_answers_in_the_local_code_systems(exported):
    bundle, tables = exported
    pgic = Counter()
    for resource in responses(bundle, "pgic"):
        coding = answer(resource["item"], "pgic")
        assert coding["system"] == fhir_reports.PGIC_ANSWER_SYSTEM
        pgic[(resource["subject"]["identifier"]["value"], resource["authored"], int(coding["code"]))] += 1
    assert pgic == Counter((r["patient_id"], r["answered_at"], int(r["score"]))
                           for r in tables["pgic"].to_dict("records"))
    psfs = Counter()
    for resource in responses(bundle, "psfs"):
        for group in resource["item"]:
            psfs[(resource["subject"]["identifier"]["value"], resource["authored"],
                  answer(group["item"], "activity.name"), answer(group["item"], "activity.score"))] += 1
    rated = tables["psfs"][tables["psfs"]["rated_at"] != ""]
    assert psfs == Counter((r["patient_id"], r["rated_at"], r["activity"], int(r["score"]))
                           for r in rated.to_dict("records"))


def test_no_diary_note_leaves_and_the_export_is_audited_once(exported):
    bundle, _ = exported
    assert "a note, = not a formula" not in json.dumps(bundle, ensure_ascii=False)


def test_response_ids_are_stable_between_exports(exported):
    _, tables = exported
    first, second = fhir_reports.entries_from_tables(tables), fhir_reports.entries_from_tables(tables)
    assert [e["fullUrl"] for e in first] == [e["fullUrl"] for e in second]
    assert len({e["fullUrl"] for e in first}) == len(first)
    assert fhir.BASE_URL in fhir_reports.REPORTED_SYSTEM
