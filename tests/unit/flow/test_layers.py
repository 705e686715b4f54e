"""Imports point down (issue 14): the flow language never reaches test tools or the demo back end,
and the prompt layer never reaches the flow language (the engine joins the two)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

IVR = Path(__file__).resolve().parents[3] / "ivr"

FORBIDDEN = {
    "flow": ("ivr.testing", "ivr.demo_backend", "ivr.engine"),
    "voice": ("ivr.flow", "ivr.engine", "ivr.testing"),
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    wrong = sorted(
        f"{path.relative_to(IVR.parent)} imports {name}"
        for path in (IVR / package).rglob("*.py")
        for name in imported(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package])
    )
    assert wrong == []
