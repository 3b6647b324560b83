"""Generate the learners' notebooks from their solution notebooks.

Lesson notebooks 1, 3 and 4 (each with a small coding exercise) and the four
exercise notebooks have a worked solution in ``notebooks/solutions/``; the
learner's copy in ``notebooks/`` is generated from it:

    python scripts/make_student_notebooks.py            # write notebooks/{01,03,04,exercise_*}.ipynb
    python scripts/make_student_notebooks.py --execute  # ... and run them to store outputs
    python scripts/make_student_notebooks.py --check    # exit 1 if a committed one is stale

The solution notebooks are the one source of truth, and also the source of the
nbgrader course (``scripts/course.sh``). What turns a solution into a learner's copy:

* nbgrader's own ``ClearSolutions`` replaces every region between ``### BEGIN
  SOLUTION`` and ``### END SOLUTION`` (in cells nbgrader marks as solutions) by
  ``# YOUR CODE HERE`` and a ``raise NotImplementedError(...)`` that names the
  exercise: the learner writes the design, and the notebook's staged hints are in
  collapsed markdown, not in the code.
* Cells tagged ``solution-only``, and nbgrader's autograder test cells, are left out
  (the course's release keeps the test cells; a learner working alone has the
  checkers).
* A cell tagged ``student-raises`` calls the learner's code directly: it gets a
  comment saying so and the ``raises-exception`` tag, which nbval reads as
  "expected to raise" and Jupyter as "go on past this error" in Run all.
* A cell tagged ``answer`` answers a question the learner is asked to predict (or
  shows a result table that would): in the learner's copy it keeps no stored output,
  and is tagged ``nbval-ignore-output`` (nbval runs it, and the solution copy's
  stored output is the one compared).
* " (worked solution)" is dropped from the title.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions

sys.path.insert(0, str(Path(__file__).resolve().parent))
import spoilers  # noqa: E402  (scripts/spoilers.py)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "notebooks" / "solutions"
STUDENTS = ROOT / "notebooks"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def code_stub(exercise: str) -> str:
    """What a solution region becomes: the same in the learner's copy and in the course."""
    return f'# YOUR CODE HERE\nraise NotImplementedError("{exercise}: write your code here")'


#: A markdown heading that opens an exercise ("### Exercise 5.2: ..."): the stubs below it
#: name that exercise, in a notebook with more than one.
EXERCISE_HEADING = re.compile(r"^#+\s+(Exercise\s+E?\d+(?:\.\d+)?)\b", re.M)


def is_autograder_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def student_version(solution: nbformat.NotebookNode, exercise: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(solution)
    nb.cells = [c for c in nb.cells
                if "solution-only" not in c.metadata.get("tags", []) and not is_autograder_test(c)]
    for cell in nb.cells:
        if cell.cell_type == "code" and BEGIN in cell.source and not cell.metadata.get(
                "nbgrader", {}).get("solution"):
            raise ValueError(f"{exercise}: a cell has a solution region but no nbgrader solution "
                             f"metadata: {cell.source[:80]!r}")
    ClearSolutions(code_stub={"python": code_stub(exercise)}, enforce_metadata=True).preprocess(nb, {})
    label = exercise
    for cell in nb.cells:  # each stub names the exercise whose heading comes last above it
        if cell.cell_type == "markdown":
            headings = EXERCISE_HEADING.findall(cell.source)
            label = headings[-1] if headings else label
        elif cell.cell_type == "code" and label != exercise:
            cell.source = cell.source.replace(f'NotImplementedError("{exercise}: ',
                                              f'NotImplementedError("{label}: ')
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code":
            if "student-raises" in tags:
                cell.source = ("# Expected to fail with NotImplementedError until you have written the code above.\n"
                               + cell.source)
                tags = [t for t in tags if t != "student-raises"] + ["raises-exception"]
            if "answer" in tags:
                tags = tags + ["nbval-ignore-output"]
            cell.metadata["tags"] = tags
            cell.outputs, cell.execution_count = [], None
        else:
            cell.source = cell.source.replace(" (worked solution)", "")
    return nb


def clear_answers(nb: nbformat.NotebookNode) -> None:
    """No stored output in the cells that answer a prediction (after execution); the numbers
    they printed are kept as digests, for tests/test_spoilers.py (scripts/spoilers.py)."""
    spoilers.fingerprint(nb)
    for cell in nb.cells:
        if cell.cell_type == "code" and "answer" in cell.metadata.get("tags", []):
            cell.outputs = []


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

            import zmq_poll_fix  # scripts/ is on the path when this script runs
            zmq_poll_fix.install()  # a lost ZeroMQ wake-up would leave this waiting for ever
            NotebookClient(student, timeout=600, kernel_name="python3", allow_errors=False,
                           resources={"metadata": {"path": str(STUDENTS)}}).execute()
            clear_answers(student)
        nbformat.write(student, student_path)
        print(f"wrote {student_path.relative_to(ROOT)}")
    if stale:
        print("stale student notebooks (run scripts/make_student_notebooks.py --execute): "
              + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
