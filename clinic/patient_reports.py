"""What patients report between sessions (issue #17): the soreness diary, their side effects, PGIC and PSFS.

Defined once here, like `clinic.vocabulary`, so that db, analytics, the pages and the exports use the same words,
windows and thresholds. docs/DESIGN.md ("Patient-reported data") and docs/METHODS.md give the reasons.

Sources: Martín-Pintado-Zugasti et al. 2014 (Arch Phys Med Rehabil 95:1925) measured post-needling soreness at 6,
12, 24, 48 and 72 h; Guy 1976 (ECDEU Assessment Manual) for the 7-point Patient Global Impression of Change;
Stratford et al. 1995 (Physiother Can 47:258) for the Patient-Specific Functional Scale, and Abbott & Schmitt 2014
(JOSPT 44:560) for its minimal important differences. All three instruments are free to use.
"""

from __future__ import annotations

from datetime import datetime

from clinic.vocabulary import SEVERITIES, SIDE_EFFECTS

# -- the soreness diary -----------------------------------------------------------------------------------------------

# Nominal diary times, hours after the session (Martín-Pintado-Zugasti 2014 measured at 6, 12, 24, 48 and 72 h; 12 h
# is left out to keep the diary to four entries a session, and the 6 h entry covers it).
DIARY_WINDOWS = (6, 24, 48, 72)
# The hours after the session each window covers, [start, end): an entry belongs to the window its real time falls
# in. The 24, 48 and 72 h windows are their time ± 12 h (a patient answers when the day allows: the evening or the
# next morning); the 6 h window starts at 3 h (before that soreness is the needling's immediate after-effect) and
# ends where the 24 h one begins; the 72 h window runs to 96 h, a day late, because soreness still there at 72 h is
# itself a side effect to report. Before 3 h nothing is due; after 96 h the session's diary is closed.
WINDOW_HOURS = {6: (3, 12), 24: (12, 36), 48: (36, 60), 72: (60, 96)}
DIARY_OPENS_H, DIARY_CLOSES_H = 3, 96
WINDOW_LABELS = {6: "About 6 hours after", 24: "The next day (24 h)", 48: "Two days after (48 h)",
                 72: "Three days after (72 h)"}
SORENESS_MIN, SORENESS_MAX = 0, 10  # NRS 0–10 where the needles went in: 0 no soreness, 10 worst imaginable
SORENESS_QUESTION = "How sore is the place where you were needled? 0 = not sore, 10 = as sore as you can imagine"
# Soreness has resolved at the first entry at or below this (Kaplan–Meier in analytics.patient_reported): 0 would
# count a patient left with a trace of 1 of 10 as never resolved; ≤ 1 is "not sore or hardly", the scale's floor of
# what patients call no soreness. docs/METHODS.md.
RESOLVED_AT_OR_BELOW = 1
NOTE_MAX = 1000  # characters of a diary entry's free-text note
ANNOTATION_MAX = 2000
# A patient may correct their own diary entry for this long after first recording it; the old values are kept.
CORRECTION_HOURS = 24


def window_for_hours(hours: float) -> int | None:
    """Return the diary window (6, 24, 48 or 72) an entry made `hours` after its session belongs to, or None."""
    for window, (start, end) in WINDOW_HOURS.items():
        if start <= hours < end:
            return window
    return None


# Diary times are UTC and the app has no clinic time zone, so a clock time would be another zone's to many patients:
# they are told how long from now instead, in words true wherever they are (the diary page, the e-mail reminder).
def hours_in_words(hours: float) -> str:
    """Return a length of time in a patient's words ("less than an hour", "about 3 hours", "about 2 days")."""
    if hours < 1:
        return "less than an hour"
    if hours < 1.5:
        return "about an hour"
    return f"about {round(hours)} hours" if hours < 36 else f"about {round(hours / 24)} days"


def opens_in(moment: datetime, now: datetime) -> str:
    """Return how long from `now` until `moment` in words ("within the hour", "in about 3 hours")."""
    hours = (moment - now).total_seconds() / 3600
    return "within the hour" if hours < 1 else f"in {hours_in_words(hours)}"


# -- the patient's side-effect checklist ------------------------------------------------------------------------------

# Checklist item -> the side-effect code it is stored as: the clinicians' codes (clinic.vocabulary.SIDE_EFFECTS)
# where one exists, so the two sources can be counted side by side; a code of its own only where none does.
PATIENT_ONLY_EFFECTS = {"soreness_over_72h": "Soreness lasting over 72 hours"}
PATIENT_EFFECTS = {  # code -> plain words for patients, in checklist order
    "bruising": "Bruising",
    "bleeding": "Bleeding",
    "soreness_over_72h": "Soreness lasting more than 3 days",
    "fatigue": "Tiredness or drowsiness",
    "headache": "Headache",
    "nausea": "Feeling sick (nausea)",
    "faintness": "Feeling faint or dizzy",
    "other": "Something else (say what in the note)",
}
PATIENT_EFFECT_CODES = tuple(PATIENT_EFFECTS)
# Clinician codes counted under each checklist item when the two sources are set side by side: tiredness covers
# both of the clinicians' fatigue and drowsiness; soreness over 72 h has no clinician code (theirs is any soreness).
CLINICIAN_CODES_OF = {
    "bruising": ("bruising",), "bleeding": ("bleeding",), "soreness_over_72h": (),
    "fatigue": ("fatigue", "drowsiness"), "headache": ("headache",), "nausea": ("nausea",),
    "faintness": ("faintness", "syncope"), "other": (),
}
SEVERITIES_FOR_PATIENTS = {  # the clinicians' classes (White et al. 2001), in plain words
    "mild": "Mild: it passed, I carried on as normal",
    "significant": "Bad: I needed a doctor or had to stop what I normally do",
    "serious": "Serious: I went to hospital, or it has not gone away",
}
assert tuple(SEVERITIES_FOR_PATIENTS) == SEVERITIES
# A severity as the patient reads their own entry back ("Headache (bad)"): the first word of the phrase they chose,
# so they see their own words, not the clinicians' class; derived here so the two can never disagree.
SEVERITY_WORDS_FOR_PATIENTS = {severity: words.split(":", 1)[0].lower()
                               for severity, words in SEVERITIES_FOR_PATIENTS.items()}

assert set(PATIENT_EFFECTS) - set(PATIENT_ONLY_EFFECTS) <= set(SIDE_EFFECTS)
# Told at once to a patient who saves a side effect that needed a doctor or worse (ALERT_SEVERITIES): the alert
# reaches their physio, but not necessarily today, so they must not wait for it. No number: clinics are in many
# countries.
AFTER_ALERT_ADVICE = ("If you feel unwell now or it gets worse, do not wait for your physio: contact your doctor. "
                      "In an emergency, call your emergency number.")


def effect_in_patient_words(code: str, severity: str) -> str:
    """Return a side effect the patient reported as they read it back: "Headache (bad)"."""
    return f"{PATIENT_EFFECTS.get(code, code)} ({SEVERITY_WORDS_FOR_PATIENTS.get(severity, severity)})"


# -- Patient Global Impression of Change (Guy 1976) -------------------------------------------------------------------

PGIC_QUESTION = "Since you started treatment, how would you describe the change in the condition you came with?"
PGIC_SCALE = {
    1: "Very much improved",
    2: "Much improved",
    3: "Minimally improved",
    4: "No change",
    5: "Minimally worse",
    6: "Much worse",
    7: "Very much worse",
}
PGIC_MIN, PGIC_MAX = 1, 7
PGIC_IMPROVED = (1, 2)  # "much or very much improved": the share the manager's page shows
# The PGIC prompt before a session: answered within this many days before it counts as answered for it.
PGIC_PROMPT_DAYS = 3

# -- Patient-Specific Functional Scale (Stratford 1995) ---------------------------------------------------------------

PSFS_QUESTION = ("Name up to three activities you find hard or cannot do because of your problem, and rate each: "
                 "0 = unable to do it, 10 = able to do it as well as before")
PSFS_MAX_ACTIVITIES = 3
PSFS_MIN, PSFS_MAX = 0, 10
ACTIVITY_MAX = 200  # characters of an activity's name
# Minimal important differences of the mean PSFS score, in points (Abbott & Schmitt 2014): small, medium, large.
PSFS_MID = {"small": 1.3, "medium": 2.3, "large": 2.7}
PSFS_MID_SHOWN = PSFS_MID["medium"]  # the manager's page: share of episodes improving by at least 2.3 points
# A PSFS rating is due again this many days after the last one, while the episode is open.
PSFS_RATE_EVERY_DAYS = 14

# Who entered a PGIC answer or a PSFS activity or rating: the patient, or the clinic on the patient's behalf.
ENTERED_BY = ("patient", "clinician", "admin")

SOURCES = {
    "diary": "Martín-Pintado-Zugasti A et al. Arch Phys Med Rehabil 2014;95:1925–32 (soreness at 6–72 h)",
    "pgic": "Guy W. ECDEU Assessment Manual for Psychopharmacology, 1976 (Clinical/Patient Global Impression)",
    "psfs": "Stratford P et al. Physiother Can 1995;47:258–63; MIDs: Abbott JH, Schmitt JS. JOSPT 2014;44:560–4",
}
