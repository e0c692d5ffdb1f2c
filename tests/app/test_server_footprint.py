"""What a server holds before anyone asks for it: a library that only one rare action needs is imported by that
action, not by every server at its first page: the server's peak memory is a figure of bench/RESULTS.md."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from tests.app.conftest import APP, PASSWORDS

# Library -> the action that imports it, and what importing it costs a server.
RARE = {
    "fpdf": "a GP report as PDF (dashboard.pdf_report): about 26 MB",
    "zxcvbn": "checking a new password (db.passwords): about 12 MB",
}
# An admin's pages, in a fresh process: the patient page offers the PDF report, Accounts the password forms.
SCRIPT = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=60)
at.run()
at.text_input(key="login_username").input("admin")
at.text_input(key="login_password").input(sys.argv[2])
at.button(key="login_submit").click().run()
shown = []
for page in ("patient_progress", "users"):
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    shown.append([title.value for title in at.title])
    if page == "patient_progress":
        offered = any(button.proto.id.endswith("report_pdf") for button in at.get("download_button"))
print(json.dumps({"titles": shown, "pdf_offered": offered,
                  "loaded": sorted(name for name in sys.argv[3:] if name in sys.modules)}))
"""


def test_a_server_imports_no_library_of_a_rare_action_until_the_action_is_taken(seeded_template, tmp_path):
    database = tmp_path / "app.db"  # what a server imports does not depend on the backend: SQLite alone
    shutil.copy(seeded_template, database)
    run = subprocess.run([sys.executable, "-c", SCRIPT, APP, PASSWORDS["admin"], *RARE], capture_output=True,
                         text=True, env=os.environ | {"DATABASE_URL": f"sqlite:///{database}"}, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["titles"] == [["Patient progress"], ["Accounts"]]  # the pages were shown, logged in
    assert answer["pdf_offered"]  # with the PDF report's button, built when clicked
    assert answer["loaded"] == [], {name: RARE[name] for name in answer["loaded"]}
