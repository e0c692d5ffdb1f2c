"""A pain typed on the VAS that reads like the NRS: asked about before a session is saved.

The other way round needs no question: an NRS value above 10 is refused, with a switch to the VAS. A VAS value of
0–10 mm is valid, but after a pain of 30 mm or more it is far likelier the NRS's 0–10 typed on the wrong scale, and
saved so it would turn, say, 70 of 100 into 7, a 90 % improvement that never happened.
"""

from __future__ import annotations

from collections.abc import Iterable

from clinic.vocabulary import SCALE_FACTOR

NRS_LIKE_MAX_MM = 10  # every pain typed is at most this on the VAS …
EARLIER_MIN_POINTS = 30  # … while the patient's last session began at least this high, of 100


def reads_like_nrs(pain_scale: str, pains: Iterable[float | None], last_scale: str | None,
                   last_pain_before: float | None) -> bool:
    """Return whether VAS pains typed for a session read like NRS ones, against the patient's last session."""
    typed = [pain for pain in pains if pain is not None]
    if pain_scale != "vas_100" or not typed or last_scale not in SCALE_FACTOR or last_pain_before is None:
        return False
    return max(typed) <= NRS_LIKE_MAX_MM and last_pain_before * SCALE_FACTOR[last_scale] >= EARLIER_MIN_POINTS
