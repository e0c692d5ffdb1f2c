"""Untrusted text (ids, names, notes) shown inside Streamlit's markdown-rendering elements stays literal text."""

import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def literal(text: object) -> str:
    """Return `text` with every markdown and HTML special character escaped, so it displays exactly as typed."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def refusal(problems) -> str:
    """Return a form's refusal as markdown: one line per problem, each naming its field, typed values literal."""
    return "Not saved. Please correct:\n\n" + "\n".join(f"- {literal(p)}" for p in problems)
