"""The documentation keeps up with the code: the README's command table names exactly the CLI's commands, every
document a file points to is in the repository, and nothing points outside it."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_every_document_a_file_points_to_exists_in_the_repository():
    missing = []
    for path in TEXT_FILES:
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in re.finditer(r"\b((?:docs|bench|sample_data)/[\w./-]+\.md)\b", text):
            if not (ROOT / match.group(1)).exists():
                missing.append(f"{path.relative_to(ROOT)}: {match.group(1)}")
    assert missing == []


def test_nothing_points_outside_the_repository_for_a_definition_or_contract():
    outside = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in TEXT_FILES if path.name != "test_docs.py"
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if "../shared" in line or re.search(r"(?<!docs/)\b(DESIGN|REFERENCES)\.md", line)
    ]
    assert outside == [], "point to docs/ instead"
