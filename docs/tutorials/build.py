"""Execute the tutorials (``make tutorials``): each percent script under docs/tutorials/ is
read with jupytext, run top to bottom with nbclient in a fresh kernel (working folder
runs/tutorials/), saved executed as runs/tutorials/<name>.ipynb and rendered with its
figures to docs/tutorials/rendered/<name>.md. Any failing cell fails the build.

    .venv/bin/python docs/tutorials/build.py [NAME ...] [--timeout 900]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORK = ROOT / "runs" / "tutorials"
RENDERED = HERE / "rendered"


def tutorials(names: list[str] | None = None) -> list[Path]:
    """The tutorial scripts (``NN_name.py``), in order, or those whose name starts with one
    of ``names``."""
    found = sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))
    if names:
        found = [p for p in found if any(p.stem.startswith(n) for n in names)]
    return found


def execute(script: Path, timeout: int = 900):
    """The executed notebook of ``script`` (raises nbclient's CellExecutionError on a failing
    cell)."""
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(script)
    WORK.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(WORK)}},
    )
    client.execute()
    return notebook


def render(notebook, name: str) -> Path:
    """``notebook`` as Markdown with its figures beside it (rendered/<name>_files/)."""
    import nbformat
    from nbconvert import MarkdownExporter

    body, resources = MarkdownExporter().from_notebook_node(
        notebook, resources={"output_files_dir": f"{name}_files"}
    )
    RENDERED.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(RENDERED / f"{name}_files", ignore_errors=True)  # figures of an older run
    for file, data in resources.get("outputs", {}).items():
        (RENDERED / file).parent.mkdir(parents=True, exist_ok=True)
        (RENDERED / file).write_bytes(data)
    nbformat.write(notebook, WORK / f"{name}.ipynb")
    out = RENDERED / f"{name}.md"
    out.write_text(body)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these tutorials (name prefixes)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args()
    failed = []
    for script in tutorials(args.names):
        start = time.perf_counter()
        try:
            notebook = execute(script, args.timeout)
        except Exception as err:  # nbclient's CellExecutionError names the cell
            print(f"FAILED {script.name}: {err}", file=sys.stderr)
            failed.append(script.name)
            continue
        out = render(notebook, script.stem)
        print(f"{script.name}: ran in {time.perf_counter() - start:.0f} s -> {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
