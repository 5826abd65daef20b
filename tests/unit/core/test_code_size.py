"""ARCHITECTURE.md's size invariant, checked: no module over 400 lines, no function over 60."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def _sources() -> list[Path]:
    return sorted(p for d in ("iotpipe", "lambda_handler") for p in (ROOT / d).rglob("*.py"))


def test_the_tree_has_sources_to_check() -> None:
    assert len(_sources()) > 100


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_over_60_lines() -> None:
    long = {}
    for p in _sources():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{p.relative_to(ROOT)}:{node.name}"] = n
    assert long == {}
