"""How the dashboard's modules share their work, checked by reading them (ast)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard"


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_current_actor_has_one_meaning():
    defined = [
        name(path)
        for path in DASHBOARD.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name == "current_actor"
    ]
    assert defined == ["dashboard/auth.py"]
