"""Methods: how every figure is defined and modelled, with references (docs/METHODS.md)."""

from pathlib import Path

import streamlit as st

METHODS = Path(__file__).resolve().parents[2] / "docs/METHODS.md"

st.markdown(METHODS.read_text(encoding="utf-8"))  # our own document, not user input
