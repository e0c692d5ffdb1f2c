"""The floors of the house, checked by reading every module's imports (ast): the ground never imports what stands on it.

clinic (vocabulary, definitions) ← db (storage, SQL) and analytics (pandas, statistics) ← dashboard (pages). The
command line (db/cli.py) composes db and analytics, so it alone in db may import analytics. Migrations are frozen:
each holds what it needs, so an old one never changes when today's code does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {path.parent.name for path in ROOT.glob("*/__init__.py")}
MIGRATIONS = ROOT / "db" / "migrations" / "versions"
MAX_LINES = 400
# Over MAX_LINES, each to be split by its owner (issue 13); a module split or gone must leave this list.
KNOWN_LONG: set[str] = set()
# Who may not import whom: package -> the packages of ours it must never import.
FORBIDDEN = {
    "clinic": OURS - {"clinic"},
    "db": {"analytics", "dashboard"},
    "analytics": {"db", "dashboard"},
}
COMPOSERS = {"db/cli.py", "db/__main__.py"}  # the command line composes db and analytics


def modules(under: Path = ROOT) -> list[Path]:
    """Return every Python module of the project under `under` (not the virtualenv, not caches)."""
    return sorted(p for p in under.rglob("*.py") if ".venv" not in p.parts and "__pycache__" not in p.parts)


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imported(path: Path) -> set[str]:
    """Return the top-level packages a module imports, anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_project_has_the_floors_this_test_checks():
    assert {"clinic", "db", "analytics", "dashboard"} <= OURS
    assert any(MIGRATIONS.glob("0001_*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_floor_imports_the_floors_above_it(package):
    wrong = {
        name(path): sorted(imported(path) & FORBIDDEN[package])
        for path in modules(ROOT / package)
        if name(path) not in COMPOSERS and MIGRATIONS not in path.parents
    }
    assert {module: packages for module, packages in wrong.items() if packages} == {}


def test_migrations_import_nothing_of_ours():
    wrong = {name(path): sorted(imported(path) & OURS) for path in modules(MIGRATIONS)}
    assert {module: packages for module, packages in wrong.items() if packages} == {}


def test_no_module_outside_migrations_and_tests_is_longer_than_400_lines():
    lengths = {
        name(path): len(path.read_text(encoding="utf-8").splitlines())
        for path in modules()
        if path.relative_to(ROOT).parts[0] != "tests" and MIGRATIONS not in path.parents
    }
    long = {module for module, lines in lengths.items() if lines > MAX_LINES}
    assert long - KNOWN_LONG == set(), {module: lengths[module] for module in long - KNOWN_LONG}
    assert KNOWN_LONG - long == set(), "no longer over the limit: remove them from KNOWN_LONG"


SIDE_EFFECT_TEXT = "clinic/side_effects.py"  # the one reader and writer of `code:severity;…`


def _splits_or_joins_on_colon(path: Path) -> list[int]:
    """Return the lines that split (unlimited) or partition on ':', or build '{a}:{b}' from two names."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"split", "partition", "rsplit"} and len(node.args) == 1
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == ":"):
            lines.append(node.lineno)
        elif isinstance(node, ast.JoinedStr):  # f"{code}:{severity}": two names around a colon
            parts = node.values
            for left, middle, right in zip(parts, parts[1:], parts[2:], strict=False):
                if (isinstance(left, ast.FormattedValue) and isinstance(left.value, ast.Name)
                        and isinstance(middle, ast.Constant) and middle.value == ":"
                        and isinstance(right, ast.FormattedValue) and isinstance(right.value, ast.Name)):
                    lines.append(node.lineno)
    return sorted(lines)


def test_only_clinic_side_effects_reads_or_writes_the_side_effect_text():
    found = {
        name(path): lines
        for path in modules()
        if name(path) != SIDE_EFFECT_TEXT and "tests" not in path.relative_to(ROOT).parts
        and MIGRATIONS not in path.parents and (lines := _splits_or_joins_on_colon(path))
    }
    assert found == {}, f"only {SIDE_EFFECT_TEXT} may split or build `code:severity` text: {found}"


def test_the_side_effect_text_check_sees_a_hand_written_parser(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('pairs = [i.split(":") for i in t.split(";")]\ntext = f"{code}:{severity}"\n')
    assert _splits_or_joins_on_colon(module) == [1, 2]
