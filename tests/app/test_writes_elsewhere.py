"""A write made outside this app process (another server of a clinic network, the command line's import) shows at
the page's next run: the cached reads are kept per version of the data, not for the cache's hour."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pandas as pd

from db.engine import make_engine
from tests.app.test_security import correction_picker, progress_of
from tests.db.factories import record

RECENT = (date.today() - timedelta(days=1)).isoformat()


def record_elsewhere(url: str, **fields) -> None:
    """Record a session straight into the database, as another server or the command line would."""
    engine = make_engine(url)
    record(engine, **fields, today=date.today())
    engine.dispose()


def episodes_shown(at) -> int:
    [caption] = [c.value for c in at.caption if "episodes of care** in these figures" in c.value]
    return int(re.search(r"\*\*([\d,]+) episodes of care", caption).group(1).replace(",", ""))


def test_a_session_recorded_elsewhere_shows_on_the_open_patient_page_at_its_next_run(app, seeded_url):
    sessions = progress_of(app, "P0002")
    before = list(correction_picker(app).options)
    latest = pd.Timestamp(sessions["Date"].max()).date()
    next_one = min(latest + timedelta(days=3), date.today())  # the next session of the same course
    record_elsewhere(seeded_url, patient_id="P0002", session_date=next_one.isoformat(), technique="deep",
                     condition="neck_pain", pain_before=20)
    app.run()
    assert not app.exception
    assert [int(n) for n in correction_picker(app).options] == [*map(int, before), int(before[-1]) + 1]


def test_a_new_patient_and_a_serious_side_effect_recorded_elsewhere_show_on_the_managers_overview(
        as_role, seeded_url):
    manager = as_role("manager")
    manager.switch_page("views/technique_outcomes.py").run()
    episodes = episodes_shown(manager)
    alerts = [e.value for e in manager.error if "to review" in e.value]
    record_elsewhere(seeded_url, patient_id="P-ELSEWHERE", session_date=RECENT, technique="deep", pain_before=70,
                     side_effects=[("syncope", "significant")])
    manager.run()
    assert not manager.exception
    assert episodes_shown(manager) == episodes + 1
    [now] = [e.value for e in manager.error if "to review" in e.value]
    count = int(now.split()[0])
    assert count == (int(alerts[0].split()[0]) if alerts else 0) + 1
