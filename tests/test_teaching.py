"""The instructor guide (notebooks/TEACHING.md) adds up, and points at real exercises:
each plan's minutes sum to its length and its start times follow; the 90-minute plan
includes one exercise notebook and has learners write code at least three times; every
code exercise it names is a stub in the learner's notebook, with a checker."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parents[1]
GUIDE = ROOT / "notebooks" / "TEACHING.md"


def plan(title: str):
    """Rows (start, minutes, what, code) of the plan table under the heading ``title``."""
    text = GUIDE.read_text()
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"\d+:\d\d", cells[0]):
            rows.append((cells[0], int(cells[1]), cells[2], cells[3]))
    assert rows, f"no plan table under {title!r}"
    return rows


def minutes(start: str) -> int:
    h, m = start.split(":")
    return 60 * int(h) + int(m)


@pytest.mark.parametrize("title,length", [("The 90-minute plan", 90), ("The 3-hour plan", 180)])
def test_plan_adds_up(title, length):
    rows = plan(title)
    assert sum(r[1] for r in rows) == length
    clock = 0
    for start, duration, _, _ in rows:
        assert minutes(start) == clock, f"{start} should be {clock // 60}:{clock % 60:02d}"
        clock += duration


def code_exercises(rows):
    """The exercise ids the plan has learners code: '1.1', 'E1', ..."""
    return [c.split()[0] for *_, c in rows if c]


def test_90_minute_plan_has_one_exercise_notebook_and_code_three_times():
    rows = plan("The 90-minute plan")
    written = code_exercises(rows)
    assert len(written) >= 3
    assert sum(1 for w in written if w.startswith("E")) == 1


def test_3_hour_plan_has_every_exercise_notebook():
    written = code_exercises(plan("The 3-hour plan"))
    assert {w for w in written if w.startswith("E")} == {"E1", "E2", "E3", "E4"}


def student_notebook(exercise: str) -> Path:
    if exercise.startswith("E"):
        return next((ROOT / "notebooks").glob(f"exercise_{exercise[1]}_*.ipynb"))
    return next((ROOT / "notebooks").glob(f"0{exercise.split('.')[0]}_*.ipynb"))


@pytest.mark.parametrize("exercise", sorted(set(code_exercises(plan("The 3-hour plan")))))
def test_every_planned_code_exercise_is_a_stub_with_a_checker(exercise):
    nb = nbformat.read(student_notebook(exercise), as_version=4)
    heading = f"### Exercise {exercise if '.' in exercise else exercise + '.1'}"
    cells = nb.cells
    at = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and heading in c.source]
    assert at, f"no '{heading}' in {student_notebook(exercise).name}"
    after = "\n".join(c.source for c in cells[at[0]:] if c.cell_type == "code")
    assert "raise NotImplementedError" in after, "the learner's copy must be a stub"
    assert re.search(r"check_\w+\(", after), "a stub needs a checker"


def test_lesson_and_exercise_numbering_never_collide():
    """Lesson notebooks number 'Exercise 3.1'; exercise notebooks 'Exercise E3.1'."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        headings = [line for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"
                    for line in c.source.splitlines() if line.startswith("### ")]
        numbered = [h for h in headings if re.match(r"### (Exercise|Think!|Interactive demo) ", h)]
        if path.name.startswith("exercise_"):
            assert all(re.search(r" E\d\.\d", h) for h in numbered), numbered
        else:
            assert not any(re.search(r" E\d", h) for h in numbered), numbered
