"""Generate the learners' notebooks from their solution notebooks.

Lesson notebooks 1, 3 and 4 (each with a small coding exercise) and the four
exercise notebooks have a worked solution in ``notebooks/solutions/``; the
learner's copy in ``notebooks/`` is generated from it:

    python scripts/make_student_notebooks.py            # write notebooks/{01,03,04,exercise_*}.ipynb
    python scripts/make_student_notebooks.py --execute  # ... and run them to store outputs
    python scripts/make_student_notebooks.py --check    # exit 1 if a committed one is stale

The solution notebooks in ``notebooks/solutions/`` are the one source of truth:

* In a code cell, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
  become one ``...`` placeholder per line, each keeping that line's comment (the
  hint of what to write there), followed by ``raise NotImplementedError``.
  Every solution line therefore ends with a ``# comment``.
* A cell tagged ``student-raises`` calls the learner's code directly: in the
  student notebook it is expected to fail, so it gets a comment saying so and
  the ``raises-exception`` tag, which nbval reads as "expected to raise" and
  Jupyter as "go on past this error" in Run all.
* Cells tagged ``solution-only`` are left out, and " (worked solution)" is
  dropped from the title.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "notebooks" / "solutions"
STUDENTS = ROOT / "notebooks"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def stub_out(source: str, exercise: str) -> str:
    """Replace every solution block of a code cell by commented placeholders."""
    out, inside, indent = [], False, ""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            continue
        if stripped == END:
            out.append(f'{indent}raise NotImplementedError("{exercise}: replace each ... with your code")')
            inside = False
            continue
        if not inside:
            out.append(line)
            continue
        if not stripped:
            continue
        if "#" not in line:
            raise ValueError(f"{exercise}: solution line without a hint comment: {line!r}")
        hint = line.split("#", 1)[1].strip()
        out.append(f"{indent}...  # {hint}")  # one level: the learner writes the structure
    if inside:
        raise ValueError(f"{exercise}: {BEGIN} without {END}")
    return "\n".join(out)


def student_version(solution: nbformat.NotebookNode, exercise: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(solution)
    cells = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "solution-only" in tags:
            continue
        if cell.cell_type == "code":
            cell.source = stub_out(cell.source, exercise)
            if "student-raises" in tags:
                cell.source = ("# Expected to fail with NotImplementedError until you have written the code above.\n"
                               + cell.source)
                cell.metadata["tags"] = [t for t in tags if t != "student-raises"] + ["raises-exception"]
            cell.outputs, cell.execution_count = [], None
        else:
            cell.source = cell.source.replace(" (worked solution)", "")
        cells.append(cell)
    nb.cells = cells
    return nb


def sources(nb: nbformat.NotebookNode) -> list:
    """What must match between generated and committed: cell types, sources, tags."""
    return [(c.cell_type, c.source, sorted(c.metadata.get("tags", []))) for c in nb.cells]


def pairs():
    for path in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")):  # lesson notebooks
        yield path, STUDENTS / path.name, f"Exercise {int(path.name[:2])}.1"  # its one coding exercise
    for path in sorted(SOLUTIONS.glob("exercise_*.ipynb")):
        number = re.match(r"exercise_(\d+)", path.name).group(1)
        yield path, STUDENTS / path.name, f"Exercise E{int(number)}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run each student notebook")
    parser.add_argument("--check", action="store_true", help="only compare with the committed ones")
    parser.add_argument("prefixes", nargs="*", help="only the notebooks whose name starts so")
    args = parser.parse_args(argv)
    stale = []
    for solution_path, student_path, exercise in pairs():
        if args.prefixes and not any(solution_path.name.startswith(p) for p in args.prefixes):
            continue
        student = student_version(nbformat.read(solution_path, as_version=4), exercise)
        if args.check:
            committed = nbformat.read(student_path, as_version=4) if student_path.exists() else None
            if committed is None or sources(committed) != sources(student):
                stale.append(student_path.name)
            continue
        if args.execute:
            from nbclient import NotebookClient
            NotebookClient(student, timeout=600, kernel_name="python3", allow_errors=False,
                           resources={"metadata": {"path": str(STUDENTS)}}).execute()
        nbformat.write(student, student_path)
        print(f"wrote {student_path.relative_to(ROOT)}")
    if stale:
        print("stale student notebooks (run scripts/make_student_notebooks.py --execute): "
              + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
