"""Export as a FHIR R4 Bundle (type collection): the `python -m db export FILE.json` of docs/DESIGN.md section 5.

Per episode of care: one EpisodeOfCare (its condition, period and status: active, or finished with the discharge
status in an extension). Per session: one pain Observation (LOINC 72514-3 for the 0–10 NRS, 38214-3 for the 0–100 mm
VAS, the value as stored on its own scale), one Procedure for the needling (the technique from the product's own
CodeSystem, and CPT 20560 or 20561 when the muscles treated are known; its EpisodeOfCare in an extension, R4 having no
element for it, and its needling record: the side as a SNOMED CT laterality on each body site, the needle as a
contained Device, the dose in a local extension, see docs/FHIR.md) and one AdverseEvent per side effect. Every
resource refers to a Patient that carries the pseudonymous id only: no names, no clinicians' notes (free text may
name people).
Codes follow docs/REFERENCES.md ("Codes for interchange"); there is no SNOMED CT concept for dry needling, so none is
invented. The Bundle is built from the interchange export's rows, so an export is audited once.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlmodel import Session

from clinic import side_effects
from clinic.vocabulary import (
    ADJUNCT_LABELS,
    EPISODE_STATUSES,
    MANIPULATION_LABELS,
    NO_ADJUNCT,
    SIDE_EFFECTS,
    STRICTA_ITEMS,
    TECHNIQUE_LABELS,
    condition_words,
)
from db import episodes, exporting
from db.access import Actor
from db.interchange import identity_keys, number_text
from db.spreadsheets import write_atomically

BASE_URL = "https://needle-outcomes.example"
PATIENT_ID_SYSTEM = f"{BASE_URL}/patient-id"
TECHNIQUE_SYSTEM = f"{BASE_URL}/CodeSystem/dry-needling-technique"
CONDITION_SYSTEM = f"{BASE_URL}/CodeSystem/condition"
SIDE_EFFECT_SYSTEM = f"{BASE_URL}/CodeSystem/side-effect"
SEVERITY_SYSTEM = f"{BASE_URL}/CodeSystem/side-effect-severity"  # White et al.: mild, significant, serious
PAIN_TIMING_SYSTEM = f"{BASE_URL}/CodeSystem/pain-timing"
EPISODE_ID_SYSTEM = f"{BASE_URL}/episode-of-care-id"  # patient id / condition / episode number
DISCHARGE_SYSTEM = f"{BASE_URL}/CodeSystem/discharge-status"
DISCHARGE_EXTENSION = f"{BASE_URL}/StructureDefinition/discharge-status"
EPISODE_EXTENSION = f"{BASE_URL}/StructureDefinition/episode-of-care"
# The needling record (docs/FHIR.md): laterality of a body site, the needling dose, their local code systems.
LATERALITY_EXTENSION = f"{BASE_URL}/StructureDefinition/laterality"
NEEDLING_EXTENSION = f"{BASE_URL}/StructureDefinition/needling-dose"
LATERALITY_SYSTEM = f"{BASE_URL}/CodeSystem/laterality"  # `midline`, which SNOMED CT's laterality qualifiers lack
MANIPULATION_SYSTEM = f"{BASE_URL}/CodeSystem/needle-manipulation"
ADJUNCT_SYSTEM = f"{BASE_URL}/CodeSystem/adjunct"
NEEDLE_PROPERTY_SYSTEM = f"{BASE_URL}/CodeSystem/needle-property"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CPT = "http://www.ama-assn.org/go/cpt"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
AE_SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, BASE_URL)  # stable resource ids: the same session, the same id

# Scale -> (LOINC code, LOINC display, UCUM unit, maximum, words for the range)
PAIN_CODES = {
    "nrs_10": ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "{score}", 10,
               "Numeric rating scale 0–10: 0 = no pain, 10 = worst pain imaginable"),
    "vas_100": ("38214-3", "Pain severity [Score] Visual analog score", "mm", 100,
                "Visual analogue scale 0–100 mm: 0 mm = no pain, 100 mm = worst pain imaginable"),
}
CPT_CODES = {  # by the number of muscles needled
    "20560": "Needle insertion(s) without injection(s); 1 or 2 muscle(s)",
    "20561": "Needle insertion(s) without injection(s); 3 or more muscles",
}
SEVERITY_WORDS = {
    "mild": "Mild: short and reversible",
    "significant": "Significant: needed medical care or stopped normal activities",
    "serious": "Serious: hospital admission, lasting harm or death",
}
LATERALITY = {  # side -> (system, code, display): SNOMED CT laterality qualifier values, a local code for midline
    "left": (SNOMED, "7771000", "Left"),
    "right": (SNOMED, "24028007", "Right"),
    "bilateral": (SNOMED, "51440002", "Right and left"),
    "midline": (LATERALITY_SYSTEM, "midline", "Midline"),
}
# The dose's sub-extensions: interchange column -> (sub-extension url, UCUM unit code and unit shown, or None: an
# integer count), in the interchange format's order; `side`, `manipulation` and `adjuncts` are codings.
DOSE_QUANTITIES = {
    "insertions": ("insertions", None),
    "depth_mm": ("depth", ("mm", "mm")),
    "twitch_count": ("twitchCount", None),
    "retention_s": ("retention", ("s", "s")),
    "estim_hz": ("stimulationFrequency", ("Hz", "Hz")),
    "estim_pulse_us": ("pulseWidth", ("us", "µs")),
    "estim_ma": ("intensity", ("mA", "mA")),
    "estim_minutes": ("stimulationTime", ("min", "min")),
}
NEEDLE_SIZES = {"needle_diameter_mm": ("diameter", "Needle diameter"), "needle_length_mm": ("length", "Needle length")}
NEEDLE_DEVICE = "needle"  # the contained Device's id

# The HL7 scale has mild, moderate and severe; White et al.'s classes map onto it in order.
HL7_SEVERITY = {"mild": ("mild", "Mild"), "significant": ("moderate", "Moderate"), "serious": ("severe", "Severe")}


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def _quantity(value: int | float, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def cpt_code(muscles: str) -> str | None:
    """Return the CPT code for the muscles needled (`a;b;c`): 20560 for 1–2, 20561 for 3 or more, None if unknown."""
    count = len([m for m in muscles.split(";") if m.strip()])
    if count == 0:
        return None
    return "20560" if count <= 2 else "20561"


def _patient(pseudonym: str) -> tuple[str, dict]:
    resource_id = _id("patient", pseudonym)
    return resource_id, {
        "resourceType": "Patient",
        "id": resource_id,
        "identifier": [{"system": PATIENT_ID_SYSTEM, "value": pseudonym}],
    }


def _episode_key(pseudonym: str, condition: str | None, number) -> str:
    return f"{pseudonym}/{condition or ''}/{int(number)}"


def _episode_of_care(resource_id: str, episode: dict, subject: dict) -> dict:
    period = {"start": episode["started_on"].isoformat()}
    resource = {
        "resourceType": "EpisodeOfCare",
        "id": resource_id,
        "identifier": [{"system": EPISODE_ID_SYSTEM, "value": _episode_key(
            episode["patient_id"], episode["condition"], episode["number"])}],
        "status": "finished" if episode["status"] else "active",
        "patient": subject,
        "period": period,
    }
    if episode["condition"]:
        resource["type"] = [{"coding": [{"system": CONDITION_SYSTEM, "code": episode["condition"]}],
                             "text": condition_words(episode["condition"])}]
    if episode["status"]:
        period["end"] = episode["discharged_on"].isoformat()
        resource["extension"] = [{"url": DISCHARGE_EXTENSION, "valueCoding": {
            "system": DISCHARGE_SYSTEM, "code": episode["status"], "display": EPISODE_STATUSES[episode["status"]]}}]
    return resource


def _observation(resource_id: str, row: dict, subject: dict) -> dict:
    code, display, unit, maximum, words = PAIN_CODES[row["pain_scale"]]
    observation = {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}],
                 "text": "Pain before the dry-needling session"},
        "subject": subject,
        "effectiveDateTime": row["session_date"],
        "valueQuantity": _quantity(_number(row["pain_before"]), unit),
        # The range of the scale itself (not a normal range), so a reader knows what the number is out of.
        "referenceRange": [{"low": _quantity(0, unit), "high": _quantity(maximum, unit), "text": words}],
    }
    if row["pain_after"]:
        observation["component"] = [{
            "code": {"coding": [{"system": PAIN_TIMING_SYSTEM, "code": "after-session",
                                 "display": "Pain right after the session"}],
                     "text": "Pain right after the session"},
            "valueQuantity": _quantity(_number(row["pain_after"]), unit),
        }]
    return observation


def _procedure(resource_id: str, row: dict, subject: dict) -> dict:
    label = TECHNIQUE_LABELS[row["technique"]]
    coding = [{"system": TECHNIQUE_SYSTEM, "code": row["technique"], "display": label}]
    cpt = cpt_code(row["muscles"])
    if cpt:
        coding.append({"system": CPT, "code": cpt, "display": CPT_CODES[cpt]})
    procedure = {
        "resourceType": "Procedure",
        "id": resource_id,
        "status": "completed",
        "code": {"coding": coding, "text": label},
        "subject": subject,
        "performedDateTime": row["session_date"],
    }
    if row["condition"]:
        procedure["reasonCode"] = [{"coding": [{"system": CONDITION_SYSTEM, "code": row["condition"]}],
                                    "text": row["condition"].replace("_", " ")}]
    muscles = [m.strip() for m in row["muscles"].split(";") if m.strip()]
    side = row.get("side", "")
    if muscles:
        procedure["bodySite"] = [{"text": m.replace("_", " ")} for m in muscles]
        if side:
            for site in procedure["bodySite"]:
                site["extension"] = [{"url": LATERALITY_EXTENSION, "valueCodeableConcept": _laterality(side)}]
    needle = _needle(row)
    if needle:
        procedure["contained"] = [needle]
        procedure["focalDevice"] = [{"manipulated": {"reference": f"#{NEEDLE_DEVICE}"}}]
    dose = _dose(row)
    if dose:
        procedure["extension"] = [{"url": NEEDLING_EXTENSION, "extension": dose}]
    return procedure


def _laterality(side: str) -> dict:
    system, code, display = LATERALITY[side]
    return {"coding": [{"system": system, "code": code, "display": display}], "text": side}


def _needle(row: dict) -> dict | None:
    """Return the needle as a contained Device with its diameter and length in mm, or None when neither is known."""
    sizes = [{"type": {"coding": [{"system": NEEDLE_PROPERTY_SYSTEM, "code": code, "display": display}]},
              "valueQuantity": [_quantity(_number(row[name]), "mm")]}
             for name, (code, display) in NEEDLE_SIZES.items() if row.get(name, "")]
    if not sizes:
        return None
    return {"resourceType": "Device", "id": NEEDLE_DEVICE, "type": {"text": "Solid filiform needle"},
            "property": sizes}


def _dose(row: dict) -> list[dict]:
    """Return the recorded dose as the sub-extensions of NEEDLING_EXTENSION, in the interchange format's order (see
    docs/FHIR.md); the needle's size is the contained Device's."""
    dose = []
    for name in STRICTA_ITEMS:
        text = row.get(name, "")
        if not text or name in NEEDLE_SIZES:
            continue
        if name == "side":
            dose.append({"url": "side", "valueCodeableConcept": _laterality(text)})
        elif name == "manipulation":
            dose.append({"url": "manipulation", "valueCoding": {
                "system": MANIPULATION_SYSTEM, "code": text, "display": MANIPULATION_LABELS[text]}})
        elif name == "adjuncts":
            dose += [{"url": "adjunct", "valueCoding": {
                "system": ADJUNCT_SYSTEM, "code": code,
                "display": "No adjunct" if code == NO_ADJUNCT else ADJUNCT_LABELS[code]}} for code in text.split(";")]
        elif DOSE_QUANTITIES[name][1] is None:
            dose.append({"url": DOSE_QUANTITIES[name][0], "valueInteger": int(_number(text))})
        else:
            url, (code, shown) = DOSE_QUANTITIES[name]
            dose.append({"url": url, "valueQuantity": {"value": _number(text), "unit": shown, "system": UCUM,
                                                       "code": code}})
    return dose


def needling_record(procedure: dict) -> dict[str, str]:
    """Return the needling record a Procedure of this export carries, as interchange cells by column (only those
    recorded): what `_procedure` wrote, read back."""
    cells: dict[str, str] = {}
    by_url = {url: name for name, (url, _) in DOSE_QUANTITIES.items()}
    dose = next((x["extension"] for x in procedure.get("extension", []) if x["url"] == NEEDLING_EXTENSION), [])
    for part in dose:
        if part["url"] == "side":
            cells["side"] = part["valueCodeableConcept"]["text"]
        elif part["url"] == "manipulation":
            cells["manipulation"] = part["valueCoding"]["code"]
        elif part["url"] == "adjunct":
            cells["adjuncts"] = ";".join(filter(None, (cells.get("adjuncts"), part["valueCoding"]["code"])))
        else:
            value = part["valueInteger"] if "valueInteger" in part else part["valueQuantity"]["value"]
            cells[by_url[part["url"]]] = number_text(value)
    for device in procedure.get("contained", []):
        for size in device.get("property", []):
            code = size["type"]["coding"][0]["code"]
            name = next(name for name, (known, _) in NEEDLE_SIZES.items() if known == code)
            cells[name] = number_text(size["valueQuantity"][0]["value"])
    return cells


def _adverse_event(resource_id: str, row: dict, subject: dict, procedure_url: str, code: str, severity: str) -> dict:
    label = SIDE_EFFECTS.get(code, code)
    hl7_code, hl7_display = HL7_SEVERITY[severity]
    serious = severity == "serious"
    return {
        "resourceType": "AdverseEvent",
        "id": resource_id,
        "actuality": "actual",
        "event": {"coding": [{"system": SIDE_EFFECT_SYSTEM, "code": code, "display": label}], "text": label},
        "subject": subject,
        "date": row["session_date"],
        "seriousness": {"coding": [{"system": AE_SERIOUSNESS, "code": "serious" if serious else "non-serious",
                                    "display": "Serious" if serious else "Non-serious"}]},
        "severity": {"coding": [{"system": SEVERITY_SYSTEM, "code": severity, "display": SEVERITY_WORDS[severity]},
                                {"system": AE_SEVERITY, "code": hl7_code, "display": hl7_display}],
                     "text": severity},
        "suspectEntity": [{"instance": {"reference": procedure_url}}],
    }


def bundle_from_table(table: pd.DataFrame, *, timestamp: datetime | None = None,
                      episodes_of_care: pd.DataFrame | None = None) -> dict:
    """Return interchange rows (as `exporting.export_table` gives them) as a FHIR R4 Bundle of type collection,
    with the EpisodeOfCare of each of `episodes_of_care` (as `db.episodes.all_episodes` gives them) that has a row."""
    entries: list[dict] = []
    subjects: dict[str, dict] = {}
    rows = table.to_dict("records")
    given = None if episodes_of_care is None else episodes_of_care.astype(object).where(episodes_of_care.notna(), None)
    courses = {} if given is None else {
        _episode_key(e["patient_id"], e["condition"], e["number"]): e for e in given.to_dict("records")}
    emitted: set[str] = set()
    # A session's identity, as in the interchange format: patient, date, technique and entry order.
    identities = identity_keys((row["patient_id"], row["session_date"], row["technique"]) for row in rows)
    for row, identity in zip(rows, identities, strict=True):
        pseudonym = row["patient_id"]
        if pseudonym not in subjects:
            patient_id, patient = _patient(pseudonym)
            entries.append({"fullUrl": f"urn:uuid:{patient_id}", "resource": patient})
            subjects[pseudonym] = {"reference": f"urn:uuid:{patient_id}", "type": "Patient",
                                   "identifier": {"system": PATIENT_ID_SYSTEM, "value": pseudonym}}
        subject = subjects[pseudonym]
        course = _episode_key(pseudonym, row["condition"], row["episode"]) if row.get("episode") else None
        if course in courses:  # the course's first session: its EpisodeOfCare goes before it
            entries.append({"fullUrl": f"urn:uuid:{_id('episode', course)}",
                            "resource": _episode_of_care(_id("episode", course), courses.pop(course), subject)})
            emitted.add(course)
        key = ("session", *map(str, identity))
        observation_id, procedure_id = _id(*key, "pain"), _id(*key, "procedure")
        procedure = _procedure(procedure_id, row, subject)
        if course in emitted:  # first among the Procedure's extensions
            procedure["extension"] = [{"url": EPISODE_EXTENSION, "valueReference": {
                "reference": f"urn:uuid:{_id('episode', course)}", "type": "EpisodeOfCare"}},
                *procedure.get("extension", [])]
        entries += [
            {"fullUrl": f"urn:uuid:{observation_id}", "resource": _observation(observation_id, row, subject)},
            {"fullUrl": f"urn:uuid:{procedure_id}", "resource": procedure},
        ]
        for code, severity in side_effects.parse(row["side_effects"]):
            event_id = _id(*key, "side-effect", code)
            entries.append({
                "fullUrl": f"urn:uuid:{event_id}",
                "resource": _adverse_event(event_id, row, subject, f"urn:uuid:{procedure_id}", code, severity),
            })
    timestamp = timestamp or datetime.now(UTC)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"source": BASE_URL},
        "type": "collection",
        "timestamp": timestamp.isoformat(timespec="seconds"),
        "entry": entries,
    }


def export_bundle(session: Session, *, actor: Actor) -> dict:
    """Return every live session as a FHIR R4 Bundle (clinicians and admins), with what patients report as
    QuestionnaireResponses (`db.fhir_reports`); the export is audited once."""
    table = exporting.export_table(session, actor=actor, purpose="FHIR R4 Bundle")
    bundle = bundle_from_table(table, episodes_of_care=episodes.all_episodes(session, actor=actor))
    from db import fhir_reports  # it builds on this module's codes and resource ids

    fhir_reports.add_to_bundle(session, bundle, actor=actor)
    return bundle


def bundle_bytes(bundle: dict) -> bytes:
    """Return the Bundle as UTF-8 JSON."""
    return json.dumps(bundle, ensure_ascii=False, indent=1).encode("utf-8")


def write_bundle(bundle: dict, path: Path) -> None:
    """Write the Bundle to a .json file, atomically: the whole file appears, or the one there before stays."""
    data = bundle_bytes(bundle)
    write_atomically(Path(path), lambda file: file.write(data))
