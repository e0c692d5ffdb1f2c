"""Entrypoint: `python -m streamlit run dashboard/app.py` from the repository root."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # `streamlit run` puts dashboard/ on the path, not the repository root
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from dashboard import auth, faults, navigation, resources, theme  # noqa: E402
from db.engine import DatabaseBusy  # noqa: E402

resources.hold_less_memory()  # before any page computes
st.set_page_config(page_title="Needle Outcomes", page_icon=":material/monitoring:", layout="wide")
theme.apply()
try:
    st.navigation(navigation.pages_for(auth.resume_session())).run()
except DatabaseBusy as busy:  # any page's write: nothing was written, the form keeps its values, try again
    st.error(f"Not saved: {busy}.", icon=":material/hourglass_top:")
except Exception as fault:  # st.rerun, st.stop and st.switch_page raise BaseExceptions: they pass through
    actor = st.session_state.get(auth.ACTOR)
    faults.report(fault, username=actor.username if actor else None)
