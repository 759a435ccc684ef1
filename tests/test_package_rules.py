"""Project rules that are cheap to check statically."""

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "frcnn"


def _sources():
    return [(p, p.read_text()) for p in sorted(SRC.rglob("*.py"))]


def test_detector_never_uses_torchvision_detection_models():
    for path, text in _sources():
        assert "torchvision.models.detection" not in text, path


def test_nothing_unpickles_arbitrary_objects():
    for path, text in _sources():
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert not re.search(r"^\s*import pickle|yaml\.load\(", text, re.M), path


def test_no_function_is_longer_than_60_lines():
    import ast

    long = []
    for path, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(
                        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)"
                    )
    assert not long, "\n".join(long)


def test_every_public_name_loads():
    import frcnn

    lazy = set(frcnn._LAZY)
    assert lazy | {"__version__"} == set(frcnn.__all__)
    for name in frcnn.__all__:
        assert getattr(frcnn, name) is not None, name
