"""Run notebooks top to bottom on a fresh kernel and store their outputs, as nbval expects.

    python scripts/execute_notebooks.py                  # every notebook
    python scripts/execute_notebooks.py 02 exercise_2    # those whose file name starts so

The solution notebooks (notebooks/solutions/) and the lesson notebooks that have no
solution copy are executed in place; the learners' copies are then generated from the
solutions and executed (scripts/make_student_notebooks.py --execute), so that the
two never drift apart. In a notebook a learner opens as it is, a cell tagged ``answer``
(it answers a "Predict first" question) keeps no stored output, and nbval runs it
without comparing its output. A cell that raises stops the script, except in a cell tagged
``raises-exception`` (a learner's stub that is meant to fail).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import spoilers  # noqa: E402  (scripts/ is on the path when this script runs)
import zmq_poll_fix  # noqa: E402

# nbclient waits for each reply with no time limit: guard against a lost ZeroMQ wake-up
# that leaves the kernel idle and this script waiting for ever (scripts/zmq_poll_fix.py).
zmq_poll_fix.install()

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def own_notebooks() -> list[Path]:
    """Notebooks stored as they are: the solutions, and lesson notebooks without one."""
    solutions = sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
    names = {p.name for p in solutions}
    plain = [p for p in sorted(NOTEBOOKS.glob("*.ipynb")) if p.name not in names]
    return solutions + plain


def execute(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    if path.parent == NOTEBOOKS:  # a learner opens this one as it is: answers keep no output
        spoilers.fingerprint(nb)  # but the numbers they printed are kept as digests
        for cell in nb.cells:
            tags = cell.metadata.get("tags", [])
            if cell.cell_type == "code" and "answer" in tags:
                cell.outputs = []
                if "nbval-ignore-output" not in tags:
                    cell.metadata["tags"] = tags + ["nbval-ignore-output"]
    nbformat.write(nb, path)
    print(f"executed {path.relative_to(ROOT)} in {time.perf_counter() - start:.1f} s", flush=True)


def main(prefixes: list[str]) -> int:
    os.environ.setdefault("PYTHONHASHSEED", "0")
    chosen = [p for p in own_notebooks()
              if not prefixes or any(p.name.startswith(x) for x in prefixes)]
    for path in chosen:
        execute(path)
    students = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_student_notebooks.py"),
                               "--execute", *prefixes])
    return students.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
