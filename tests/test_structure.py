"""The code's shape, as the architecture issue set it: every module of the library, the service
and the bench under 400 lines, and no function over 60 lines (tests are exempt)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
TREES = ("src", "service/src", "bench")
MAX_MODULE_LINES = 399
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(p for tree in TREES for p in (ROOT / tree).rglob("*.py"))


def test_the_trees_hold_modules() -> None:
    assert len(modules()) > 50


def test_every_module_is_under_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in modules()
            if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}  # fmt: skip
    assert long == {}


def test_no_function_is_over_60_lines() -> None:
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert long == {}
