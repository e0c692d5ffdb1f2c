"""The app's own styling on top of Streamlit's theme: sizes that a phone and a tablet can use."""

import streamlit as st

# Tap targets of at least 44 px (WCAG 2.5.5, Apple HIG) and body text of 16 px on every screen.
CSS = """
<style>
.stButton button, .stDownloadButton button, .stFormSubmitButton button { min-height: 44px; }
[data-testid="stSidebarNav"] a { min-height: 44px; }
.stTextInput input, .stNumberInput input, .stDateInput input, .stTextArea textarea { min-height: 44px; }
[data-baseweb="select"] > div { min-height: 44px; }
</style>
"""


def apply() -> None:
    """Add the app's styling to the page (call once per run, from the entrypoint)."""
    st.html(CSS)
