"""What a valid session is: one model that the form, the import and the CLI all validate through."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Optional

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator

from clinic.vocabulary import (
    ADJUNCT_SEPARATOR,
    ADJUNCTS,
    ESTIM_ITEMS,
    MANIPULATIONS,
    NO_ADJUNCT,
    PAIN_SCALES,
    PATIENT_ID_PATTERN,
    RANGES,
    SEVERITIES,
    SIDE_EFFECTS,
    SIDES,
    STRICTA_LABELS,
    TECHNIQUES,
)
from db.models import TreatmentSession
from db.session_rules import rule_problems

SLUG = re.compile(r"^[a-z0-9_]{1,64}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DAY_FIRST_DATE = re.compile(r"^\d{1,2}[/.]\d{1,2}[/.]\d{4}$")
MUSCLES_MAX = TreatmentSession.__table__.c.muscles.type.length  # the names joined by ';', as stored
# Text that one of the backends cannot store: PostgreSQL refuses NUL in text, and neither driver can encode a lone
# surrogate as UTF-8. SQLite would store a NUL, so the rule is here, the same for both.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

FIELD_LABELS = {
    "patient_id": "Patient",
    "session_date": "Session date",
    "technique": "Technique",
    "pain_scale": "Pain scale",
    "pain_before": "Pain before",
    "pain_after": "Pain after",
    "side_effects": "Side effects",
    "condition": "Condition",
    "body_region": "Body region",
    "clinician": "Clinician",
    "twitch_response": "Local twitch response",
    "muscles": "Muscles treated",
    "notes": "Notes",
    "patient_name": "Patient name",
    "reason": "Reason",
    # An episode of care's fields, named as its forms label them (db.episodes).
    "goal": "Goal",
    "started_on": "Started",
    "status": "Status",
    "discharged_on": "Discharged",
} | {name: label for name, (label, _) in STRICTA_LABELS.items()}
# The needling record's numbers (docs/DESIGN.md §5), each optional; ranges in clinic.vocabulary.RANGES.
STRICTA_NUMBERS = ("insertions", "depth_mm", "needle_diameter_mm", "needle_length_mm", "twitch_count", "retention_s",
                   *ESTIM_ITEMS)
STRICTA_CODED = {"side": SIDES, "manipulation": MANIPULATIONS}


@dataclass(frozen=True)
class Problem:
    """One reason an input was refused: the field (interchange column name) and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{FIELD_LABELS.get(self.field, self.field)}: {self.message}"


class InvalidInput(ValueError):
    """Raised when input is refused; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class SessionInput(BaseModel):
    """A session as entered, before it is stored; field names follow the interchange format."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    patient_id: str
    session_date: date
    technique: str
    pain_scale: str = "vas_100"
    pain_before: float
    pain_after: Optional[float] = None
    side_effects: list[tuple[str, str]] = []
    condition: Optional[str] = None
    body_region: Optional[str] = None
    clinician: Optional[str] = None
    twitch_response: Optional[bool] = None
    muscles: list[str] = []
    notes: str = ""
    # The needling record (STRICTA; docs/DESIGN.md §5): None = not recorded. `adjuncts` is given as a list of codes
    # (or as the file's text, codes joined by ';') and held as that text in the vocabulary's order; ['none'] is
    # "recorded: no adjunct", stored as 'none', while None (or an empty list) is "not recorded".
    insertions: Optional[int] = None
    side: Optional[str] = None
    depth_mm: Optional[float] = None
    needle_diameter_mm: Optional[float] = None
    needle_length_mm: Optional[float] = None
    twitch_count: Optional[int] = None
    retention_s: Optional[int] = None
    manipulation: Optional[str] = None
    estim_hz: Optional[float] = None
    estim_pulse_us: Optional[float] = None
    estim_ma: Optional[float] = None
    estim_minutes: Optional[float] = None
    adjuncts: Optional[str] = None
    today: date | None = None  # injectable "today" for the not-in-the-future rule; defaults to date.today()

    @field_validator("patient_id")
    @classmethod
    def _patient_id(cls, value: str) -> str:
        if not value:
            raise ValueError("is required")
        if not re.match(PATIENT_ID_PATTERN, value):
            raise ValueError("must be 1–64 letters, digits, '-' or '_'")
        return value

    @field_validator("session_date", mode="before")
    @classmethod
    def _iso_date(cls, value):
        if isinstance(value, str):
            if DAY_FIRST_DATE.match(value):
                raise ValueError(f"'{value}' is not YYYY-MM-DD; day-first dates are not guessed, write e.g. 2025-01-31")
            if not ISO_DATE.match(value):
                raise ValueError(f"'{value}' is not a date in YYYY-MM-DD form")
        return value

    @field_validator("technique")
    @classmethod
    def _technique(cls, value: str) -> str:
        if value not in TECHNIQUES:
            raise ValueError(f"unknown technique '{value}'; use one of {', '.join(TECHNIQUES)}")
        return value

    @field_validator("pain_scale", mode="before")
    @classmethod
    def _pain_scale(cls, value):
        if value in (None, ""):
            return "vas_100"
        if value not in PAIN_SCALES:
            raise ValueError(f"unknown scale '{value}'; use vas_100 or nrs_10")
        return value

    @field_validator("condition", "body_region", "clinician", mode="before")
    @classmethod
    def _optional_code(cls, value):
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        if not SLUG.match(str(value).strip()):
            raise ValueError(f"'{value}' must be lower-case letters, digits and '_' (at most 64)")
        return str(value).strip()

    @field_validator("side_effects")
    @classmethod
    def _side_effects(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        seen = set()
        for code, severity in value:
            if code not in SIDE_EFFECTS:
                raise ValueError(f"unknown side effect '{code}'")
            if severity not in SEVERITIES:
                raise ValueError(f"unknown severity '{severity}' for {code}; use mild, significant or serious")
            if code in seen:
                raise ValueError(f"'{code}' is listed more than once")
            seen.add(code)
        return value

    @field_validator("muscles")
    @classmethod
    def _muscles(cls, value: list[str]) -> list[str]:
        cleaned = [m.strip() for m in value if m.strip()]
        if any(";" in m for m in cleaned):
            raise ValueError("a muscle name cannot contain ';'")
        joined = ";".join(cleaned)
        problem = unstorable(joined)
        if problem:
            raise ValueError(f"a muscle name {problem}")
        if len(joined) > MUSCLES_MAX:
            raise ValueError(f"{len(joined):,} characters with the ';' between names; at most {MUSCLES_MAX} fit")
        return cleaned

    @field_validator("notes")
    @classmethod
    def _notes(cls, value: str) -> str:
        problem = unstorable(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator(*STRICTA_NUMBERS)
    @classmethod
    def _in_range(cls, value, info):
        problem = range_problem(info.field_name, value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator(*STRICTA_CODED, mode="before")
    @classmethod
    def _stricta_code(cls, value, info):
        return stricta_code(info.field_name, value)

    @field_validator("adjuncts", mode="before")
    @classmethod
    def _adjuncts(cls, value):
        return adjuncts_text(value)

    @model_validator(mode="after")
    def _within_scale_and_not_future(self, info: ValidationInfo) -> SessionInput:
        problems = rule_problems(self.__dict__, skipping=(info.context or {}).get(_SKIPPING, ()))
        if problems:
            raise ValueError(" | ".join(problems))
        if self.twitch_response is None and self.twitch_count is not None:  # a count says whether there was one
            self.twitch_response = self.twitch_count > 0
        return self


def unstorable(text: str) -> str | None:
    """Return why this text cannot be stored on every backend (a NUL or a lone surrogate), or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    character = found.group()
    what = "a NUL character (\\x00)" if character == "\x00" else f"an invalid character (U+{ord(character):04X})"
    return f"holds {what} at position {found.start() + 1}, which cannot be stored; remove it"


def longer_than(text: str, maximum: int) -> str | None:
    """Return why text longer than `maximum` characters cannot be stored, or None when it fits."""
    if len(text) > maximum:
        return f"is {len(text):,} characters long; at most {maximum:,} can be stored"
    return None


def range_problem(name: str, value: float | None) -> str | None:
    """Return why a number of the needling record (or the planned course, or years of practice) is refused, without
    the field's name, or None when it is absent or within clinic.vocabulary.RANGES."""
    if value is None:
        return None
    low, high, whole = RANGES[name]
    unit = STRICTA_LABELS[name][1]
    unit = f" {unit}" if unit in ("mm", "µs", "Hz", "mA", "min") else ""
    if not low <= value <= high:  # NaN included
        return f"{value:g} is outside {low:g}–{high:g}{unit}"
    if whole and value != int(value):
        return f"{value:g} is not a whole number"
    return None


def stricta_code(name: str, value) -> str | None:
    """Return a coded item of the needling record (side, manipulation) as its code, None when empty; ValueError
    naming the codes otherwise."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    text = str(value).strip()
    codes = STRICTA_CODED[name]
    if text not in codes:
        raise ValueError(f"unknown code '{text}'; use one of {', '.join(codes)}")
    return text


def adjuncts_text(value) -> str | None:
    """Return adjuncts (a list of codes, or codes joined by ';') as stored: the codes joined by ';' in the
    vocabulary's order, 'none' for "recorded: no adjunct", None when not recorded; ValueError naming the problem."""
    if value is None:
        return None
    codes = value.split(ADJUNCT_SEPARATOR) if isinstance(value, str) else list(value)
    if not all(isinstance(code, str) for code in codes):
        raise ValueError("must be adjunct codes")
    codes = [code.strip() for code in codes if code.strip()]
    if not codes:
        return None
    unknown = [code for code in codes if code not in ADJUNCTS and code != NO_ADJUNCT]
    if unknown:
        raise ValueError(f"unknown code '{unknown[0]}'; use {', '.join(ADJUNCTS)} joined by ';', or {NO_ADJUNCT}")
    if len(set(codes)) < len(codes):
        repeated = next(code for code in codes if codes.count(code) > 1)
        raise ValueError(f"'{repeated}' is listed more than once")
    if NO_ADJUNCT in codes:
        if len(codes) > 1:
            raise ValueError(f"'{NO_ADJUNCT}' (no adjunct) cannot go with adjuncts")
        return NO_ADJUNCT
    return ADJUNCT_SEPARATOR.join(code for code in ADJUNCTS if code in codes)


_new_session_input = SessionInput.__new__
_object_setattr = object.__setattr__


def checked_session(values: dict, fields_set: set[str]) -> SessionInput:
    """Return a SessionInput of values that the caller has already passed through SessionInput's own rules.

    As `SessionInput.model_construct(_fields_set=…, **values)` with every field given in declaration order, without
    its per-field loop (14 µs a row, as much as validating): the import's fast path builds 100,000 of them.
    """
    entry = _new_session_input(SessionInput)
    _object_setattr(entry, "__dict__", values)
    _object_setattr(entry, "__pydantic_fields_set__", fields_set)
    _object_setattr(entry, "__pydantic_extra__", None)
    _object_setattr(entry, "__pydantic_private__", None)
    return entry


_MESSAGES = {
    "missing": "is required",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "finite_number": "is not a finite number",
    "date_parsing": "is not a valid date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "is not a valid date (YYYY-MM-DD)",
    "date_type": "is not a valid date (YYYY-MM-DD)",
    "bool_parsing": "must be yes or no",
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "int_type": "is not a whole number",
    "string_type": "is not text",
    "extra_forbidden": "is not a known field",
    "string_unicode": "holds a lone surrogate, which is not text and cannot be stored; remove it",
}


def problems_from(error: ValidationError) -> list[Problem]:
    """Return the problems of a pydantic ValidationError, each naming its field in interchange terms."""
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        if item["type"] == "value_error":
            message = str(item["ctx"]["error"]) if "ctx" in item else item["msg"]
            if not field:  # model-level checks name their own fields: "pain_before: … | session_date: …"
                for part in message.split(" | "):
                    name, _, text = part.partition(": ")
                    problems.append(Problem(name, text))
                continue
            problems.append(Problem(field, message))
        else:
            problems.append(Problem(field, _MESSAGES.get(item["type"], item["msg"])))
    return problems


def validate_session(data: dict) -> SessionInput:
    """Return the validated session, or raise InvalidInput listing every problem with its field.

    Pydantic checks the rules between fields only once every field is valid on its own; a field refused on its own
    (a mistyped technique) would hide a rule broken by the others (a pain of 150 on the VAS), to be found only on
    the next try. So those rules that read no refused field are checked too, and every problem is listed at once.
    """
    try:
        return SessionInput(**data)
    except ValidationError as error:
        problems = problems_from(error)
        refused = {str(item["loc"][0]) for item in error.errors() if item["loc"]}
    if refused:
        problems += _rules_without(data, refused)
    raise InvalidInput(problems)


_SKIPPING = "skipping rules that read"  # validation context: fields refused on their own
# A valid value for each required field, standing in for a refused one while the rules that do not read it are
# checked (`_rules_without`).
_STAND_INS = {"patient_id": "P1", "session_date": date(2000, 1, 1), "technique": "deep", "pain_before": 0}


def _rules_without(data: dict, refused: set[str]) -> list[Problem]:
    """Return the problems of the rules between fields that read none of the `refused` fields."""
    kept = {name: value for name, value in data.items() if name not in refused}
    kept |= {name: value for name, value in _STAND_INS.items() if name in refused}
    try:
        SessionInput.model_validate(kept, context={_SKIPPING: refused})
    except ValidationError as error:
        return problems_from(error)
    return []
