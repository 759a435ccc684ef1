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


# The application layer: what users and commands call. Model stages (modeling/) keep their
# torchvision-shaped constructors.
APPLICATION = ("api.py", "cli", "engine", "inference", "evaluation", "experiments", "deploy")


def test_no_public_application_function_takes_more_than_12_parameters():
    import ast

    wide = []
    for path, text in _sources():
        rel = path.relative_to(SRC)
        if rel.parts[0] not in APPLICATION:
            continue
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if node.name.startswith("_") and node.name != "__init__":
                continue
            a = node.args
            names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
            names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
            count = len([n for n in names if n not in ("self", "cls")])
            if count > 12:
                wide.append(f"{rel}:{node.lineno} {node.name} ({count} parameters)")
    assert not wide, "\n".join(wide)


def test_code_and_docs_speak_of_frcnn_alone():
    """No references to files outside the repository or to where an idea came from."""
    root = SRC.parents[1]
    texts = [root / "README.md", root / "CHANGELOG.md", *SRC.rglob("*.py")]
    texts += [*(root / "docs").rglob("*.md"), *(root / "docs").rglob("*.py")]
    found = [
        f"{p.relative_to(root)}: {m.group(0)}"
        for p in texts
        for m in re.finditer(r"MISSION(\.md)?|the seeds\b|seeds'", p.read_text())
    ]
    assert not found, "\n".join(found)
