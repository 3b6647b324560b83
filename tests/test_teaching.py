"""The instructor guide (notebooks/TEACHING.md) adds up, and points at real exercises:
each plan's minutes sum to its length and its start times follow; the 90-minute plan
includes one exercise notebook and has learners write code at least three times; every
code exercise it names is a stub in the learner's notebook, with a checker. The guide is
the one source of the minutes: every notebook's header ("about N minutes") is the sum of
its rows in the guide's table."""

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


LESSON_NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if p.stem != "classroom")
HEADER = re.compile(r"about (\d+) minutes")


def table_after(heading: str) -> list[list[str]]:
    """The rows of the first markdown table after ``heading``, as lists of cells."""
    text = GUIDE.read_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header row


def minutes_per_notebook() -> dict[str, int]:
    totals: dict[str, int] = {}
    current = None
    for notebook, _section, minutes, _code in table_after("## Minutes per section"):
        current = notebook or current
        totals[current] = totals.get(current, 0) + int(minutes)
    return totals


def test_every_lesson_notebook_has_rows_and_no_row_names_a_missing_one():
    totals = minutes_per_notebook()
    assert set(totals) == {p.stem for p in LESSON_NOTEBOOKS}


@pytest.mark.parametrize("path", LESSON_NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_header_gives_the_guides_minutes(path):
    header = nbformat.read(path, as_version=4).cells[0].source
    found = HEADER.search(header)
    assert found, f"{path.name}: the first cell gives no 'about N minutes'"
    assert int(found.group(1)) == minutes_per_notebook()[path.stem], (
        f"{path.name} says {found.group(1)} minutes, TEACHING.md's rows add up to "
        f"{minutes_per_notebook()[path.stem]}")


def test_solution_copies_carry_the_same_header():
    for solution in sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb")):
        learner = ROOT / "notebooks" / solution.name
        headers = [HEADER.search(nbformat.read(p, as_version=4).cells[0].source)
                   for p in (solution, learner)]
        assert headers[0] and headers[1] and headers[0].group(0) == headers[1].group(0), solution.name


def test_lesson_headers_count_the_same_parts():
    parts = {}
    for path in LESSON_NOTEBOOKS:
        found = re.search(r"part (\d) of (\d)", nbformat.read(path, as_version=4).cells[0].source)
        if found:
            parts[path.stem] = (int(found.group(1)), int(found.group(2)))
    assert sorted(n for n, _ in parts.values()) == list(range(1, len(parts) + 1))
    assert {total for _, total in parts.values()} == {len(parts)}
