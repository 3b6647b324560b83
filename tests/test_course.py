"""The nbgrader course (scripts/course.sh): released without solutions or outputs, and
graded by nbgrader itself, a correct submission with full marks and a wrong one with
partial marks and the checker's sentence in its feedback."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBGRADER = str(Path(sys.executable).with_name("nbgrader"))
PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # nbgrader runs alembic
E1 = "exercise_1_bounded_staleness"
GRADED = {"05_analyzing_convergence", E1, "exercise_2_priority_scheduling",
          "exercise_3_adaptive_mixing", "exercise_4_sync_vs_async"}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course") / "fedasync-course"
    done = subprocess.run(["bash", str(ROOT / "scripts" / "course.sh"), str(folder)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == f"[course] the learners' release: {folder}/release"
    return folder


def code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_every_graded_exercise_is_released_with_stubs_locked_tests_and_no_outputs(course):
    assert {p.name for p in (course / "release").iterdir()} == GRADED
    for name in GRADED:
        solution = nbformat.read(ROOT / "notebooks" / "solutions" / f"{name}.ipynb", as_version=4)
        (released,) = (course / "release" / name).glob("*.ipynb")
        nb = nbformat.read(released, as_version=4)
        text = code(nb)
        assert "### BEGIN SOLUTION" not in text and 'raise NotImplementedError("this exercise' in text
        for cell in solution.cells:  # no line of a solution region is left
            for region in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S):
                for line in region.splitlines():
                    body = line.split("#")[0].strip()
                    if len(body) > 12:
                        assert body not in text, (name, line)
        tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert tests and all(c.metadata["nbgrader"]["locked"] and c.metadata["nbgrader"]["points"] > 0
                             for c in tests)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), name
        assert not any("solution-only" in c.metadata.get("tags", []) for c in nb.cells)


def submit(course: Path, learner: str, rules: str) -> None:
    """The learner's copy of E1 from the release, with ``rules`` written into its stub."""
    (released,) = (course / "release" / E1).glob("*.ipynb")
    nb = nbformat.read(released, as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    cell.source = rules
    target = course / "submitted" / learner / E1
    target.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target / released.name)


def solution_rules() -> str:
    nb = nbformat.read(ROOT / "notebooks" / "solutions" / f"{E1}.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    return re.sub(r"\s*### (BEGIN|END) SOLUTION", "", cell.source)


def test_nbgrader_grades_a_right_and_a_wrong_submission_and_feeds_back_the_checkers_words(course):
    from nbgrader.api import Gradebook

    right = solution_rules()
    wrong = right.replace("return staleness <= max_staleness", "staleness <= max_staleness")
    assert wrong != right
    submit(course, "ada", right)
    submit(course, "bob", wrong)  # forgot `return` in accept
    for step in ("autograde", "generate_feedback"):
        done = subprocess.run([NBGRADER, step, E1, "--force"], cwd=course, capture_output=True,
                              text=True, timeout=600, env={**os.environ, "PATH": PATH})
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        ada, bob = (gb.find_submission(E1, who) for who in ("ada", "bob"))
        assert ada.max_score == 5 and ada.score == ada.max_score
        assert bob.score == 3  # may_start's 3 points; accept's 2 lost
    (feedback,) = (course / "feedback" / "bob" / E1).glob("*.html")
    page = html.unescape(feedback.read_text())
    assert "accept(0, max_staleness=0) returned None: did you forget `return`?" in page
    assert "accept fails its checks: see the checker's message above" in page
