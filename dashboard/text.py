"""Untrusted text (ids, names, notes) shown inside Streamlit's markdown-rendering elements stays literal text."""

import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def literal(text: object) -> str:
    """Return `text` with every markdown and HTML special character escaped, so it displays exactly as typed."""
    return _MARKDOWN.sub(r"\\\1", str(text))
