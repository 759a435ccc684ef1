"""The tutorials under docs/tutorials/: each parses and uses only frcnn's public API (fast);
each executes end to end (slow: ``make test-slow``, or ``make tutorials``)."""

import ast
import sys
from pathlib import Path

import pytest

import frcnn

TUTORIALS = Path(__file__).resolve().parent.parent / "docs" / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))


def test_there_are_tutorials():
    assert SCRIPTS, f"no tutorials in {TUTORIALS}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_a_tutorial_parses_and_names_only_public_api(script):
    text = script.read_text()
    tree = ast.parse(text)
    assert "# %% [markdown]" in text and text.lstrip().startswith("# ---")  # jupytext percent
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("frcnn"):
            raise AssertionError(f"{script.name}:{node.lineno}: import frcnn, use frcnn.<name>")
        if isinstance(node, ast.Import):
            assert all(a.name == "frcnn" or not a.name.startswith("frcnn.") for a in node.names)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "frcnn"
        ):
            assert node.attr in frcnn.__all__, f"{script.name}:{node.lineno}: frcnn.{node.attr}"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_a_tutorial_runs_end_to_end(script):
    pytest.importorskip("jupytext")
    pytest.importorskip("nbclient")
    sys.path.insert(0, str(TUTORIALS))
    try:
        import build
    finally:
        sys.path.remove(str(TUTORIALS))
    notebook = build.execute(script, timeout=900)
    errors = [
        o
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    assert any(
        "image/png" in o.get("data", {}) for cell in notebook.cells for o in cell.get("outputs", [])
    )  # it draws what it explains
