"""Techniques, conditions, scales, side effects and the outcome thresholds: defined once (docs/DESIGN.md §2–3).

`db`, `analytics` and `dashboard` all read these names from here, so a new code or threshold is one edit.
"""

from __future__ import annotations

TECHNIQUES = ("superficial", "deep", "electrical")
TECHNIQUE_LABELS = {
    "superficial": "Superficial dry needling",
    "deep": "Deep dry needling",
    "electrical": "Electrical dry needling",
}

PAIN_SCALES = {"vas_100": 100, "nrs_10": 10}  # scale code -> maximum
PAIN_SCALE_LABELS = {"vas_100": "VAS 0–100 mm", "nrs_10": "NRS 0–10"}
SCALE_FACTOR = {code: 100 / maximum for code, maximum in PAIN_SCALES.items()}  # to the 0–100 analysis scale

CONDITIONS = (
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
)

# Side effects (White et al. 2001's classes; docs/REFERENCES.md): severities from least to most grave.
SEVERITIES = ("mild", "significant", "serious")
ALERT_SEVERITIES = ("significant", "serious")  # flagged to managers at once
SIDE_EFFECTS = {
    "bleeding": "Bleeding",
    "bruising": "Bruising",
    "pain_during": "Pain during treatment",
    "soreness": "Post-needling soreness",
    "aggravation": "Symptoms worse",
    "drowsiness": "Drowsiness",
    "fatigue": "Fatigue",
    "headache": "Headache",
    "nausea": "Nausea",
    "faintness": "Faintness (no loss of consciousness)",
    "syncope": "Syncope",
    "sweating": "Sweating",
    "emotional": "Altered emotions",
    "itching": "Itching",
    "numbness": "Numbness",
    "nerve_irritation": "Nerve irritation",
    "infection": "Infection",
    "pneumothorax": "Pneumothorax / organ perforation",
    "needle_breakage": "Needle breakage",
    "other": "Other (describe in notes)",
}

# Suggestions for the session form; any other muscle name may be typed in.
COMMON_MUSCLES = (
    "upper_trapezius", "middle_trapezius", "levator_scapulae", "splenius_capitis", "splenius_cervicis",
    "semispinalis_capitis", "suboccipitals", "sternocleidomastoid", "temporalis", "masseter", "lateral_pterygoid",
    "infraspinatus", "supraspinatus", "subscapularis", "teres_minor", "deltoid", "rhomboid_major",
    "extensor_carpi_radialis_brevis", "extensor_carpi_radialis_longus", "extensor_digitorum", "brachioradialis",
    "supinator", "pronator_teres", "flexor_carpi_radialis", "abductor_pollicis_brevis", "quadratus_lumborum",
    "lumbar_multifidus", "iliocostalis_lumborum", "longissimus_thoracis", "gluteus_maximus", "gluteus_medius",
    "gluteus_minimus", "piriformis", "biceps_femoris", "semitendinosus", "semimembranosus", "rectus_femoris",
    "vastus_lateralis", "vastus_medialis", "gastrocnemius", "soleus", "tibialis_anterior", "peroneus_longus",
    "quadratus_plantae", "flexor_digitorum_brevis", "abductor_hallucis",
)
PATIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

# IMMPACT (Dworkin et al., J Pain 2008): minimal, moderately important, substantial improvement in percent.
MINIMAL_PCT = 15
MODERATE_PCT = 30
SUBSTANTIAL_PCT = 50
IMMPACT_BANDS = {MINIMAL_PCT: "minimal", MODERATE_PCT: "moderate", SUBSTANTIAL_PCT: "substantial"}
RESPONDER_THRESHOLDS = (MINIMAL_PCT, MODERATE_PCT, SUBSTANTIAL_PCT)
DEFAULT_MCID_POINTS = 20.0  # absolute MCID on 0–100: 2 points of the 0–10 NRS (Farrar 2001; Ostelo 2008)
# Below this baseline one step of the 0–10 scale is a large share of it (2 -> 1 is 50 %), so a percent alone
# does not classify a responder: 4 of 10 is where pain is usually graded moderate rather than mild.
DEFAULT_MIN_BASELINE_POINTS = 40.0
# "Positive results are usually evident in 2 to 4 sessions" (docs/REFERENCES.md): the managers' question.
ANSWER_SESSION = 4

# How an episode of care ends (docs/METHODS.md, "Missing data and dropouts"); an episode without one is open.
EPISODE_STATUSES = {
    "goal_met": "Goal met",
    "dropped_out": "Dropped out",
    "referred_on": "Referred on",
    "other": "Other",
}
DROPPED_OUT = "dropped_out"
# A session more than this many days after the last one of its episode of care may be a new course of treatment
# (a recurrence), so the clinician is asked whether it starts a new episode; configurable (docs/DESIGN.md §5).
DEFAULT_EPISODE_GAP_DAYS = 90


def condition_words(condition: str | None) -> str:
    """Return a condition code in words ("neck pain"; "no condition recorded" for none)."""
    # Not a text (None, or the NaN a table holds for it): no condition.
    return condition.replace("_", " ") if isinstance(condition, str) and condition else "no condition recorded"

# The needling record of STRICTA (MacPherson et al. 2010, items 1–6; docs/DESIGN.md §5, "optional STRICTA columns"):
# the session's dose, each optional (empty = not recorded). The order is the interchange format's and the table's.
STRICTA_ITEMS = (
    "insertions", "side", "depth_mm", "needle_diameter_mm", "needle_length_mm", "twitch_count", "retention_s",
    "manipulation", "estim_hz", "estim_pulse_us", "estim_ma", "estim_minutes", "adjuncts",
)
ESTIM_ITEMS = ("estim_hz", "estim_pulse_us", "estim_ma", "estim_minutes")  # recorded with electrical needling only
ESTIM_TECHNIQUE = "electrical"
SIDES = ("left", "right", "bilateral", "midline")
SIDE_LABELS = {"left": "Left", "right": "Right", "bilateral": "Bilateral", "midline": "Midline"}
MANIPULATIONS = ("none", "pistoning", "rotation", "pistoning_rotation")
MANIPULATION_LABELS = {
    "none": "None",
    "pistoning": "Pistoning (in and out)",
    "rotation": "Rotation",
    "pistoning_rotation": "Pistoning and rotation",
}
ADJUNCTS = ("cold_spray", "massage", "stretching", "exercise", "heat", "other")
ADJUNCT_LABELS = {
    "cold_spray": "Cold spray",
    "massage": "Massage",
    "stretching": "Stretching",
    "exercise": "Exercise",
    "heat": "Heat",
    "other": "Other (describe in notes)",
}
# Recorded as "no adjunct", alone: distinct from an empty cell (not recorded), since the soreness summary groups by it.
NO_ADJUNCT = "none"
ADJUNCT_SEPARATOR = ";"
# The coded items and the codes each admits.
STRICTA_CODES = {"side": SIDES, "manipulation": MANIPULATIONS, "adjuncts": (*ADJUNCTS, NO_ADJUNCT)}
# Every number of the needling record, the planned course and the practitioner: name -> (low, high, whole number?),
# both ends included. The database's CHECKs (migration 0014, db.models) and the validation say the same.
RANGES = {
    "insertions": (1, 500, True),
    "depth_mm": (0, 150, False),
    "needle_diameter_mm": (0.10, 0.50, False),
    "needle_length_mm": (5, 150, False),
    "twitch_count": (0, 200, True),
    "retention_s": (0, 7200, True),
    "estim_hz": (0.1, 250, False),
    "estim_pulse_us": (10, 1000, False),
    "estim_ma": (0, 60, False),
    "estim_minutes": (1, 120, False),
    "planned_sessions": (1, 50, True),  # the episode's planned course: sessions …
    "planned_per_week": (0.25, 7, False),  # … and sessions a week (0.25: one a month)
    "years_practice": (0, 60, True),  # the clinician's years of needling practice (STRICTA item 5)
}
NEEDLING_TRAINING_MAX = 500  # characters of the clinician's needling training, free text (STRICTA item 5)
# name -> (label, unit) for forms and tables; the unit is '' when the value has none.
STRICTA_LABELS = {
    "insertions": ("Insertions", "needle insertions"),
    "side": ("Side", ""),
    "depth_mm": ("Depth", "mm"),
    "needle_diameter_mm": ("Needle diameter", "mm"),
    "needle_length_mm": ("Needle length", "mm"),
    "twitch_count": ("Twitch responses", "count"),
    "retention_s": ("Retention", "s (0 = in and out)"),
    "manipulation": ("Manipulation", ""),
    "estim_hz": ("Stimulation frequency", "Hz"),
    "estim_pulse_us": ("Pulse width", "µs"),
    "estim_ma": ("Intensity", "mA"),
    "estim_minutes": ("Stimulation time", "min"),
    "adjuncts": ("Adjuncts", ""),
    "planned_sessions": ("Planned sessions", "sessions"),
    "planned_per_week": ("Planned frequency", "sessions a week"),
    "needling_training": ("Needling training", ""),
    "years_practice": ("Years of needling practice", "years"),
}


def counted(count: int, word: str) -> str:
    """Return a count with its word, singular for one: "1 session", "2 sessions", "1,234 episodes"."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"
