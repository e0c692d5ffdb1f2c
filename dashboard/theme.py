"""The app's own styling on top of Streamlit's theme: sizes a phone and a tablet can use, text everyone can read."""

import streamlit as st

CSS = """
<style>
/* Tap targets of at least 44 px (WCAG 2.5.5, Apple's guidelines) for our buttons, fields and the page menu. */
.stButton button, .stDownloadButton button, .stFormSubmitButton button { min-height: 44px; }
[data-testid="stSidebarNav"] a, [data-testid="stPageLink"] a { min-height: 44px; }
/* A link between pages, an expander's title and a progress bar's words are body text: 16 px, not Streamlit's 14. */
[data-testid="stPageLink"] p, [data-testid="stExpander"] summary p, [data-testid="stProgress"] p { font-size: 1rem; }
[data-testid="stRadio"] label, [data-testid="stCheckbox"] label { min-height: 44px; align-items: center; }
[data-testid="stButtonGroup"] button { min-height: 44px; min-width: 44px; }
:is([data-testid="stTextInput"], [data-testid="stNumberInput"], [data-testid="stDateInput"],
    [data-testid="stSelectbox"], [data-testid="stMultiSelect"]) div:has(input) { min-height: 44px; }
/* Captions: Streamlit's faded grey is 3.9:1 on white; at 0.82 of the text colour they are 6:1 in either theme. */
[data-testid="stCaptionContainer"] { color: inherit; opacity: 0.82; }
/* Section headings are h2 under the page's h1 (no skipped level), sized as Streamlit's subheaders were. */
.stHeading h2 { font-size: 1.5rem; }
</style>
"""


def apply() -> None:
    """Add the app's styling to the page (call once per run, from the entrypoint)."""
    st.html(CSS)
