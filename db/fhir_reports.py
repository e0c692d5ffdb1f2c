"""What patients report, as FHIR R4 resources in the `.json` export's Bundle (issue #17).

The three Questionnaires, once, with their items' codes; then one QuestionnaireResponse per soreness diary entry,
per PGIC answer, and per PSFS occasion (an episode's activities rated at one moment). Each response names its
questionnaire by the product's canonical URL, its patient, when it was answered, and its episode of care (the
extension `db.fhir` gives Procedures); a diary entry is `partOf` the needling Procedure it follows. Codes
(docs/DESIGN.md section 5, "Patient-reported data in FHIR"): the diary's soreness item is LOINC 72514-3 (pain
severity, 0–10 numeric rating, reported), as the session's own NRS pain; LOINC has no code for the PGIC or the
PSFS, so their items are in the product's CodeSystem `patient-reported` (PGIC answers in `pgic-answer`); the
diary's side effects use the side-effect CodeSystem of `db.fhir`, with its severity classes. Free text stays out
as in the rest of the Bundle (a diary note may name people); a PSFS activity's name is the instrument's content
and goes in.
"""

from __future__ import annotations

import pandas as pd
from sqlmodel import Session

from clinic import side_effects
from clinic.patient_reports import (
    PATIENT_EFFECTS,
    PGIC_QUESTION,
    PGIC_SCALE,
    PSFS_QUESTION,
    SORENESS_QUESTION,
    WINDOW_LABELS,
)
from db import fhir, report_exchange
from db.access import Actor

QUESTIONNAIRE = {kind: f"{fhir.BASE_URL}/Questionnaire/{name}" for kind, name in
                 (("diary", "soreness-diary"), ("pgic", "pgic"), ("psfs", "psfs"))}
REPORTED_SYSTEM = f"{fhir.BASE_URL}/CodeSystem/patient-reported"  # the questions LOINC has no code for
PGIC_ANSWER_SYSTEM = f"{fhir.BASE_URL}/CodeSystem/pgic-answer"  # 1 very much improved … 7 very much worse
ENTERED_BY_SYSTEM = f"{fhir.BASE_URL}/CodeSystem/entered-by"  # patient, clinician, admin
ENTERED_BY_EXTENSION = f"{fhir.BASE_URL}/StructureDefinition/entered-by"
BEFORE_SESSION_EXTENSION = f"{fhir.BASE_URL}/StructureDefinition/before-procedure"  # the session a PGIC preceded
SORENESS_CODE = ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported")
REPORTED_CODES = {
    "diary-window": "Diary time: hours after the session",
    "side-effect": "A side effect the patient reports",
    "side-effect-code": "Which side effect",
    "side-effect-severity": "How bad it was",
    "pgic": "Patient Global Impression of Change (7 points)",
    "psfs-activity": "Patient-Specific Functional Scale activity",
    "psfs-position": "The activity's place in the patient's list (1–3)",
    "psfs-name": "The activity, in the patient's words",
    "psfs-score": "Patient-Specific Functional Scale rating (0 unable – 10 as before the problem)",
}


def _code(code: str) -> list[dict]:
    return [{"system": REPORTED_SYSTEM, "code": code, "display": REPORTED_CODES[code]}]


def _item(link: str, text: str, answer: dict) -> dict:
    return {"linkId": link, "text": text, "answer": [answer]}


def _question(link: str, kind: str, text: str, code: list[dict], **more) -> dict:
    return {"linkId": link, "code": code, "text": text, "type": kind, **more}


LOINC_SORENESS = [{"system": fhir.LOINC, "code": SORENESS_CODE[0], "display": SORENESS_CODE[1]}]


def questionnaires() -> list[dict]:
    """Return the three Questionnaires the responses follow, each with its items' codes (LOINC where it has one)."""
    severity = [{"valueCoding": {"system": fhir.SEVERITY_SYSTEM, "code": c, "display": w}}
                for c, w in fhir.SEVERITY_WORDS.items()]
    effects = [{"valueCoding": {"system": fhir.SIDE_EFFECT_SYSTEM, "code": c, "display": w}}
               for c, w in PATIENT_EFFECTS.items()]
    items = {
        "diary": [
            _question("window", "integer", "Diary time: hours after the session (6, 24, 48 or 72)",
                      _code("diary-window"), required=True),
            _question("soreness", "integer", SORENESS_QUESTION, LOINC_SORENESS, required=True),
            _question("side-effect", "group", "Side effects", _code("side-effect"), repeats=True, item=[
                _question("side-effect.code", "choice", "Which side effect", _code("side-effect-code"),
                          answerOption=effects),
                _question("side-effect.severity", "choice", "How bad it was", _code("side-effect-severity"),
                          answerOption=severity)]),
        ],
        "pgic": [_question("pgic", "choice", PGIC_QUESTION, _code("pgic"), required=True, answerOption=[
            {"valueCoding": {"system": PGIC_ANSWER_SYSTEM, "code": str(k), "display": v}}
            for k, v in PGIC_SCALE.items()])],
        "psfs": [_question("activity", "group", PSFS_QUESTION, _code("psfs-activity"), repeats=True, item=[
            _question("activity.position", "integer", "Place in the list (1–3)", _code("psfs-position")),
            _question("activity.name", "string", "Activity", _code("psfs-name")),
            _question("activity.score", "integer", "Rating: 0 unable to do it – 10 as well as before",
                      _code("psfs-score"))])],
    }
    titles = {"diary": "Soreness diary after dry needling", "pgic": "Patient Global Impression of Change",
              "psfs": "Patient-Specific Functional Scale"}
    out = []
    for kind, url in QUESTIONNAIRE.items():
        resource_id = fhir._id("questionnaire", kind)
        out.append({"fullUrl": f"urn:uuid:{resource_id}", "resource": {
            "resourceType": "Questionnaire", "id": resource_id, "url": url, "title": titles[kind],
            "status": "active", "subjectType": ["Patient"], "item": items[kind]}})
    return out


def _subject(pseudonym: str) -> dict:
    patient_id = fhir._id("patient", pseudonym)
    return {"reference": f"urn:uuid:{patient_id}", "type": "Patient",
            "identifier": {"system": fhir.PATIENT_ID_SYSTEM, "value": pseudonym}}


def _episode(patient: str, condition: str, number: str) -> dict:
    key = fhir._episode_key(patient, condition or None, number)
    return {"url": fhir.EPISODE_EXTENSION, "valueReference": {"reference": f"urn:uuid:{fhir._id('episode', key)}",
                                                             "type": "EpisodeOfCare"}}


def _procedure(patient: str, day: str, technique: str, entry: str) -> str:
    return f"urn:uuid:{fhir._id('session', patient, day, technique, entry, 'procedure')}"


def _response(kind: str, key: tuple, subject: dict, authored: str, entered_by: str, items: list[dict],
              extensions: list[dict]) -> dict:
    resource_id = fhir._id("questionnaire-response", kind, *map(str, key))
    resource = {
        "resourceType": "QuestionnaireResponse",
        "id": resource_id,
        "extension": [*extensions, {"url": ENTERED_BY_EXTENSION, "valueCoding": {
            "system": ENTERED_BY_SYSTEM, "code": entered_by}}],
        "questionnaire": QUESTIONNAIRE[kind],
        "status": "completed",
        "subject": subject,
        "authored": authored,
        "item": items,
    }
    if entered_by == "patient":
        resource["author"] = resource["source"] = {k: subject[k] for k in ("reference", "type")}
    return {"fullUrl": f"urn:uuid:{resource_id}", "resource": resource}


def _diary(row: dict) -> dict:
    session = (row["patient_id"], row["session_date"], row["technique"], row["session_entry"])
    items = [
        _item("window", WINDOW_LABELS[int(row["window_h"])], {"valueInteger": int(row["window_h"])}),
        _item("soreness", SORENESS_QUESTION, {"valueInteger": int(row["soreness"])}),
    ]
    for code, severity in side_effects.parse(row["side_effects"]):
        items.append({"linkId": "side-effect", "text": "Side effect", "item": [
            _item("side-effect.code", "Which side effect", {"valueCoding": {
                "system": fhir.SIDE_EFFECT_SYSTEM, "code": code, "display": PATIENT_EFFECTS[code]}}),
            _item("side-effect.severity", "How bad it was", {"valueCoding": {
                "system": fhir.SEVERITY_SYSTEM, "code": severity, "display": fhir.SEVERITY_WORDS[severity]}}),
        ]})
    entry = _response("diary", (*session, row["window_h"]), _subject(row["patient_id"]), row["recorded_at"],
                      "patient", items, [])
    entry["resource"]["partOf"] = [{"reference": _procedure(*session), "type": "Procedure"}]
    return entry


def _pgic(row: dict) -> dict:
    score = int(row["score"])
    answer = {"valueCoding": {"system": PGIC_ANSWER_SYSTEM, "code": str(score), "display": PGIC_SCALE[score]}}
    extensions = [_episode(row["patient_id"], row["condition"], row["episode"])]
    if row["technique"]:
        extensions.append({"url": BEFORE_SESSION_EXTENSION, "valueReference": {"reference": _procedure(
            row["patient_id"], row["session_date"], row["technique"], row["session_entry"]), "type": "Procedure"}})
    return _response("pgic", (row["patient_id"], row["condition"], row["episode"], row["answered_at"]),
                     _subject(row["patient_id"]), row["answered_at"], row["entered_by"],
                     [_item("pgic", PGIC_QUESTION, answer)], extensions)


def _psfs(rows: list[dict]) -> dict:
    first = rows[0]
    groups = [{"linkId": "activity", "text": "Activity", "item": [
        _item("activity.position", "Place in the list", {"valueInteger": int(r["position"])}),
        _item("activity.name", "Activity", {"valueString": r["activity"]}),
        _item("activity.score", "Rating", {"valueInteger": int(r["score"])}),
    ]} for r in rows]
    key = (first["patient_id"], first["condition"], first["episode"], first["rated_at"])
    entered = {r["rated_by"] for r in rows}
    return _response("psfs", key, _subject(first["patient_id"]), first["rated_at"],
                     entered.pop() if len(entered) == 1 else "clinician", groups,
                     [_episode(first["patient_id"], first["condition"], first["episode"])])


def entries_from_tables(tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Return the Bundle entries of the patient-reported tables (`report_exchange.report_tables`)."""
    entries = [_diary(row) for row in tables["diary"].to_dict("records")]
    entries += [_pgic(row) for row in tables["pgic"].to_dict("records")]
    rated = tables["psfs"][tables["psfs"]["rated_at"] != ""]
    for _, occasion in rated.groupby(["patient_id", "condition", "episode", "rated_at"], sort=False):
        entries.append(_psfs(occasion.sort_values("position").to_dict("records")))
    return entries


def add_to_bundle(session: Session, bundle: dict, *, actor: Actor) -> None:
    """Add every patient's reports to a Bundle `db.fhir` built (after its own entries, read in the same export:
    its audit row stands for both), with a Patient resource for any patient the Bundle does not have yet."""
    entries = entries_from_tables(report_exchange.report_tables(session, actor=actor))
    if entries:
        bundle["entry"] += questionnaires()
    present = {entry["fullUrl"] for entry in bundle["entry"]}
    for entry in entries:
        subject = entry["resource"]["subject"]
        if subject["reference"] not in present:
            patient_id, patient = fhir._patient(subject["identifier"]["value"])
            bundle["entry"].append({"fullUrl": f"urn:uuid:{patient_id}", "resource": patient})
            present.add(subject["reference"])
        bundle["entry"].append(entry)
