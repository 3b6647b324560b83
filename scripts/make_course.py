"""Set up the nbgrader course: its configuration, and its source from the solution notebooks.

    python scripts/make_course.py FOLDER     # what `bash scripts/course.sh FOLDER` runs

The solution notebooks (``notebooks/solutions/``) are the course's source, as they are
the source of the learners' copies (``scripts/make_student_notebooks.py``): nothing is
written by hand twice. Every solution notebook with autograded test cells (nbgrader
``grade`` cells worth points, which call the lesson's checkers and fail with their
message) becomes one assignment, named by its notebook:
``FOLDER/source/<notebook>/<notebook>.ipynb``. On the way:

* cells tagged ``solution-only`` (the teacher's worked answers) are left out;
* stored outputs are cleared (nbgrader's release clears them too), so no result a
  learner is asked to predict travels with the release;
* everything else is left to nbgrader: ``generate_assignment`` replaces each
  solution region with the same stub as the learners' copies' and locks the test
  cells; ``autograde`` runs a submission and scores the test cells;
  ``generate_feedback`` writes each learner's notebook as HTML, with the checkers'
  sentences in it.

``FOLDER/nbgrader_config.py`` says so to nbgrader, and each assignment's release is then
made by nbgrader's ``generate_assignment``, through its Python API (one process for all
of them; the same as ``nbgrader generate_assignment NAME --force`` in ``FOLDER``). Running a notebook under the grader
has the same time limits as the checkers have, and nbgrader's own 300 s per cell.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
from pathlib import Path
from typing import List

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from make_student_notebooks import SOLUTIONS, code_stub, is_autograder_test  # noqa: E402

CONFIG = '''# The fedasync nbgrader course, written by scripts/make_course.py: run nbgrader here.
c = get_config()  # noqa: F821  (nbgrader provides it)
c.CourseDirectory.course_id = "fedasync"
c.CourseDirectory.root = {root!r}
# The same stub as the learners' copies (scripts/make_student_notebooks.py):
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
c.ClearSolutions.enforce_metadata = True
# Grading runs the whole notebook: its experiments take seconds, a learner's endless loop
# is stopped by the checkers' own time limits, and any cell by this one.
c.Execute.timeout = 300
# nbgrader runs notebooks through nbclient, whose wait for a cell's reply can miss a ZeroMQ
# wake-up and then sit until that timeout with the reply in its socket: the guard in
# scripts/zmq_poll_fix.py (of this course's repository) looks again every second.
import sys  # noqa: E402
sys.path.insert(0, {scripts!r})
import zmq_poll_fix  # noqa: E402
zmq_poll_fix.install()
'''


def assignments() -> List[Path]:
    """The solution notebooks that have autograded test cells, one assignment each."""
    found = []
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if any(is_autograder_test(c) for c in nb.cells):
            found.append(path)
    return found


def course_source(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = copy.deepcopy(solution)
    nb.cells = [c for c in nb.cells if "solution-only" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
        else:
            cell.source = cell.source.replace(" (worked solution)", "")
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the course folder (made if missing)")
    args = parser.parse_args(argv)
    folder = args.folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbgrader_config.py").write_text(
        CONFIG.format(root=str(folder), stub=code_stub("this exercise"),
                      scripts=str(ROOT / "scripts")))
    names = []
    for path in assignments():
        name = path.stem
        target = folder / "source" / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        nbformat.write(course_source(nbformat.read(path, as_version=4)), target / path.name)
        names.append(name)
    return release(folder, names)


def release(folder: Path, names: List[str]) -> int:
    """``nbgrader generate_assignment`` for each of ``names``, with the course's config."""
    import os

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    os.chdir(folder)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config()
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    for name in names:
        result = api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            print(f"[course] nbgrader could not release {name}:\n{result.get('log', '')}\n"
                  f"{result.get('error', '')}", file=sys.stderr)
            return 1
    print(f"[course] assignments: {' '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
