"""The documentation keeps up with the code: the README's command table names exactly the CLI's commands, the
documented interchange columns are the code's, and every document a file names is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

from db import interchange
from db.cli import parser

ROOT = Path(__file__).resolve().parent.parent
TEXT_FILES = [p for pattern in ("*.py", "*.md", "Makefile", "*.toml", "*.ini", ".ci/run")
              for p in ROOT.rglob(pattern) if not {".venv", ".git", "node_modules"} & set(p.parts)]


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_the_readme_command_table_names_exactly_the_cli_commands():
    table_cell = r"(?:[^|\\]|\\.)+"  # a table cell, escaped pipes (`users add\|list`) included
    first_cells = re.findall(rf"^\| ({table_cell}) \|", readme_section("Command line"), flags=re.MULTILINE)
    documented = {code.split()[0] for cell in first_cells for code in re.findall(r"`([^`]+)`", cell)}
    documented = {name for name in documented if not name.startswith("--")}  # global options, not commands
    commands = set(next(a for a in parser()._actions if a.dest == "command").choices)
    assert documented == commands


def test_every_document_a_file_names_is_in_the_repository():
    """A file that names a Markdown document (`docs/METHODS.md`, `README.md`) names one the repository holds:
    from the repository's root or from the naming file's own folder. Nothing is named outside the repository."""
    missing = []
    for path in TEXT_FILES:
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in re.finditer(r"(?<![\w./-])((?:\.\./|[\w-]+/)*[\w-]+\.md)\b", text):
            name = match.group(1)
            if "/" not in name and text[match.start() - 1:match.start()] == '"':
                continue  # a bare name in quotes names a file the app writes (a download), not a document
            places = [(ROOT / name).resolve(), (path.parent / name).resolve()]
            if not any(p.is_relative_to(ROOT) and p.exists() for p in places):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert missing == [], "write it into docs/ and point there"



def test_the_documented_interchange_columns_are_the_code_s():
    """DESIGN §5's table lists the interchange columns in the code's order, and so does the README, which also names
    every documented optional column: a column added in code and not in the documents (or the reverse) fails here."""
    design = (ROOT / "docs/DESIGN.md").read_text(encoding="utf-8")
    table = design[design.index("**Interchange format**"):design.index("Re-importing the same file")]
    assert re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE) == interchange.COLUMNS
    first_paragraph = readme_section("Data format").split("\n\n")[0]
    spans = re.findall(r"`([^`]+)`", first_paragraph)
    listed = next(span for span in spans if span.startswith("patient_id"))
    assert [column.strip() for column in listed.split(",")] == interchange.COLUMNS
    assert set(interchange.EXPORT_COLUMNS) - set(interchange.COLUMNS) <= set(spans)
