"""The invented clinic the generator draws from: clinicians, conditions and muscles, techniques, side effects, notes.

The numbers are invented but shaped after docs/REFERENCES.md: baseline pain around 55-80 on the 0-100 scale,
improvement ``max_effect * (1 - exp(-k / tau))`` after k sessions (electrical > deep > superficial), and side effects
at the per-treatment rates of Brady et al. 2014 (soreness at 15 %, since trials report it far more often than
Brady's "pain after").
"""

from __future__ import annotations

import numpy as np

from clinic.vocabulary import SIDE_EFFECTS

TECHNIQUES = ["superficial", "deep", "electrical"]
SCALES = ["vas_100", "nrs_10"]
CLINICIANS = ["clin_ahmed", "clin_brown", "clin_chen", "clin_diaz", "clin_evans", "clin_fischer"]
# Clinicians differ in caseload and in the technique they favour, so technique is confounded with clinician
# as in a real clinic (superficial, deep, electrical).
CLINICIAN_WEIGHTS = np.array([0.22, 0.20, 0.18, 0.16, 0.13, 0.11])
CLINICIAN_TECHNIQUE = np.array(
    [
        [0.30, 0.50, 0.20],
        [0.50, 0.40, 0.10],
        [0.15, 0.35, 0.50],
        [0.30, 0.55, 0.15],
        [0.25, 0.45, 0.30],
        [0.35, 0.40, 0.25],
    ]
)

# Condition -> (share of patients, body region, muscles: most often treated first).
CONDITIONS: dict[str, tuple[float, str, list[str]]] = {
    "neck_pain": (
        0.22,
        "neck",
        [
            "upper_trapezius",
            "levator_scapulae",
            "splenius_capitis",
            "splenius_cervicis",
            "semispinalis_capitis",
            "sternocleidomastoid",
        ],
    ),
    "low_back_pain": (
        0.20,
        "lower_back",
        ["quadratus_lumborum", "lumbar_multifidus", "iliocostalis_lumborum", "longissimus_thoracis", "gluteus_medius"],
    ),
    "plantar_fasciitis": (
        0.08,
        "foot",
        ["quadratus_plantae", "flexor_digitorum_brevis", "gastrocnemius", "abductor_hallucis", "soleus"],
    ),
    "lateral_epicondylalgia": (
        0.07,
        "elbow",
        [
            "extensor_carpi_radialis_brevis",
            "extensor_carpi_radialis_longus",
            "extensor_digitorum",
            "supinator",
            "brachioradialis",
        ],
    ),
    "shoulder_pain": (
        0.13,
        "shoulder",
        ["infraspinatus", "supraspinatus", "teres_minor", "upper_trapezius", "deltoid", "subscapularis"],
    ),
    "headache": (
        0.08,
        "head",
        ["upper_trapezius", "suboccipitals", "temporalis", "sternocleidomastoid", "splenius_capitis"],
    ),
    "sciatica": (
        0.06,
        "hip",
        ["piriformis", "gluteus_medius", "gluteus_minimus", "gluteus_maximus", "quadratus_lumborum"],
    ),
    "carpal_tunnel": (
        0.04,
        "wrist",
        [
            "flexor_digitorum_superficialis",
            "pronator_teres",
            "flexor_carpi_radialis",
            "palmaris_longus",
            "abductor_pollicis_brevis",
        ],
    ),
    "hamstring_strain": (
        0.05,
        "thigh",
        ["biceps_femoris", "semitendinosus", "semimembranosus", "adductor_magnus"],
    ),
    "other": (0.07, "", []),  # region drawn from OTHER_REGIONS
}
OTHER_REGIONS: dict[str, list[str]] = {
    "jaw": ["masseter", "temporalis", "lateral_pterygoid", "medial_pterygoid"],
    "knee": ["vastus_medialis", "vastus_lateralis", "rectus_femoris", "popliteus"],
    "upper_back": ["rhomboid_major", "middle_trapezius", "infraspinatus", "serratus_posterior_superior"],
    "calf": ["gastrocnemius", "soleus", "tibialis_anterior", "peroneus_longus"],
}
# Body regions in a fixed order (the conditions' own, then those of "other") with their muscles.
REGION_MUSCLES: dict[str, list[str]] = {
    **{region: muscles for _, region, muscles in CONDITIONS.values() if region},
    **OTHER_REGIONS,
}
REGIONS = list(REGION_MUSCLES)
# Small differences in how well each condition responds (added to the patient's proportional effect).
CONDITION_EFFECT = {
    "sciatica": -0.08,
    "other": -0.04,
    "plantar_fasciitis": -0.02,
    "headache": 0.02,
    "lateral_epicondylalgia": 0.02,
}

# Improvement curve max_effect * (1 - exp(-k / tau)) per technique: (max_effect, tau in sessions,
# mean immediate relative drop from pain_before to pain_after, chance of a local twitch response).
TECHNIQUE_MODEL = {
    "superficial": (0.35, 2.4, 0.08, 0.12),
    "deep": (0.50, 1.9, 0.14, 0.85),
    "electrical": (0.55, 1.6, 0.18, 0.80),
}

# Side-effect codes in docs/DESIGN.md order (only those used for mild events) with per-treatment rates:
# Brady et al. 2014, except soreness (trials report 29-91 % of patients; 15 % per treatment used here).
SIDE_EFFECT_RATES = {
    "bleeding": 0.0465,
    "bruising": 0.0755,
    "pain_during": 0.0301,
    "soreness": 0.15,
    "aggravation": 0.0088,
    "drowsiness": 0.0026,
    "fatigue": 0.0004,
    "headache": 0.0014,
    "nausea": 0.0013,
    "emotional": 0.0004,
}
# Superficial needling stays out of the muscle: fewer events. Scaled so the overall rate matches the reference.
TECHNIQUE_RISK = np.array([0.5, 1.1, 1.2])
SIGNIFICANT_EVENTS = [  # (code, note), used in turn; none serious
    ("faintness", "Felt faint after needling; lay down 15 min, recovered, sent home with a friend"),
    ("aggravation", "Pain much worse for 3 days, off work; GP visit"),
    ("soreness", "Severe soreness, could not work next day"),
]
ALL_SIDE_EFFECT_CODES = list(SIDE_EFFECTS)  # taxonomy order, as docs/DESIGN.md section 2 lists it

COMMON_NOTES = [
    "Home exercises reviewed",
    "Stretching advised",
    "Cold spray after needling",
    "Patient anxious about needles; procedure explained",
    "Session shortened, patient arrived late",
    "Massage after needling",
    "Sleeping better",
    "Back at the gym",
    "Referred to GP for review",
    "Needles left in for 10 min",
]
# Each appears exactly once, to exercise CSV quoting, HTML escaping and UTF-8 in importers and pages.
SPECIAL_NOTES = [
    "Needled left and right, 3 needles each side, 30 mm",
    'Says she feels "much better" today',
    'Asked for "fewer needles, please"; will review',
    "<b>not html</b>",
    "Patient\u2019s GP (Dr \u0160im\u016fnek) informed \u2013 r\u00e9sum\u00e9 of care sent",
]


def clinician_roster(clinicians: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Return ``clinicians`` names, caseload weights and technique preferences: the six above, then more like them.

    Clinician 7 on (``clin_07``, ...) repeats the caseload and preferences of clinician 1, 2, ... in turn.
    """
    names = [CLINICIANS[j] if j < len(CLINICIANS) else f"clin_{j + 1:02d}" for j in range(clinicians)]
    cycle = np.arange(clinicians) % len(CLINICIANS)
    weights = CLINICIAN_WEIGHTS[cycle]
    return names, weights / weights.sum(), CLINICIAN_TECHNIQUE[cycle]


# --- the needling record (STRICTA; docs/DESIGN.md section 5), drawn from a generator of its own -------------------
# The chance that a clinician documents a session's needling record, by roster position (clinician 7 on repeats
# 1, 2, …): most nearly always, two much less. Sessions early in the window are documented less (the clinic took the
# record up over time): the chance is scaled by NEEDLING_EARLY on the first day, rising linearly to 1 on the last.
NEEDLING_DILIGENCE = np.array([0.97, 0.92, 0.95, 0.55, 0.85, 0.40])
NEEDLING_EARLY = 0.55
UNDOCUMENTED_CHANCE = 0.12  # an item is still recorded now and then in a session not documented as a whole
# The chance that a documented session records each item (estim_*: of an electrical session).
ITEM_RECORDED = {
    "insertions": 0.97, "side": 0.98, "depth_mm": 0.9, "needle_diameter_mm": 0.93, "needle_length_mm": 0.93,
    "twitch_count": 0.9, "retention_s": 0.95, "manipulation": 0.92, "estim_hz": 0.97, "estim_pulse_us": 0.9,
    "estim_ma": 0.95, "estim_minutes": 0.97, "adjuncts": 0.85,
}
# Per technique (superficial, deep, electrical): mean insertions; depth in mm as (median, spread of its log);
# twitch responses per session when one was elicited (mean of 1 + Poisson).
INSERTIONS_MEAN = np.array([4.0, 11.0, 7.0])
DEPTH_MM = np.array([[6.0, 0.3], [28.0, 0.35], [30.0, 0.3]])
TWITCH_MEAN = np.array([0.5, 3.5, 2.5])
SIDES = ["left", "right", "bilateral", "midline"]
SIDE_WEIGHTS = np.array([0.40, 0.38, 0.18, 0.04])  # the episode's side; a tenth of sessions treat both sides
NEEDLE_DIAMETERS = np.array([0.16, 0.18, 0.20, 0.25, 0.30])  # mm
DIAMETER_WEIGHTS = np.array(
    [[0.35, 0.30, 0.20, 0.15, 0.0], [0.0, 0.10, 0.25, 0.45, 0.20], [0.0, 0.05, 0.20, 0.50, 0.25]]
)
NEEDLE_LENGTHS = np.array([13, 25, 30, 40, 50, 60, 75])  # mm; the shortest that reaches 10 mm past the depth
MANIPULATIONS = ["none", "pistoning", "rotation", "pistoning_rotation"]
MANIPULATION_WEIGHTS = np.array([[0.55, 0.05, 0.40, 0.0], [0.05, 0.60, 0.10, 0.25], [0.65, 0.05, 0.25, 0.05]])
# Retention in seconds: superficial needles stay 2–10 min, deep needling is mostly in and out (0 s) or 1–5 min,
# electrical needles stay for the stimulation.
RETENTION_SUPERFICIAL = np.array([120, 300, 600])
RETENTION_DEEP = np.array([0, 0, 0, 60, 300])
ESTIM_HZ = np.array([2, 2, 2, 4, 10, 80, 100])
ESTIM_PULSE_US = np.array([100, 150, 200, 250, 300])
ESTIM_MINUTES = np.array([10, 15, 15, 20, 20, 30])
ESTIM_MA = (1.0, 12.0)  # intensity drawn uniformly, to the patient's tolerance, in steps of 0.5 mA
# Adjuncts: each added with this chance; a session recorded with none of them records `none`.
ADJUNCT_CHANCE = {"cold_spray": 0.08, "massage": 0.07, "stretching": 0.25, "exercise": 0.22, "heat": 0.05,
                  "other": 0.01}
