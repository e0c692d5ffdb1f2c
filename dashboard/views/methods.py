"""Methods: how every figure is defined and modelled, with references (docs/METHODS.md)."""

from pathlib import Path

import streamlit as st

from dashboard import recovery_sections
from dashboard.auth import current_actor

METHODS = Path(__file__).resolve().parents[2] / "docs/METHODS.md"

st.markdown(METHODS.read_text(encoding="utf-8"))  # our own document, not user input
recovery_sections.calibration(current_actor())  # the expected-recovery bands' calibration on the data stored now
