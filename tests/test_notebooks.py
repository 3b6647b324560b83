"""Every lesson notebook follows the one template, and is stored ready for nbval:
executed top to bottom, no error outputs, and widget cells marked."""

import json
import re
from pathlib import Path

import pytest

HERE = Path(__file__).parents[1] / "notebooks"
LESSONS = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
STUDENT = sorted(HERE.glob("exercise_*.ipynb"))
SOLUTIONS = sorted((HERE / "solutions").glob("*.ipynb"))
CHALLENGE = [HERE / "design_challenge.ipynb"]
NOTEBOOKS = LESSONS + STUDENT + SOLUTIONS + CHALLENGE


def load(path):
    return json.loads(path.read_text())["cells"]


def text(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_the_lesson_has_its_notebooks():
    assert [p.name[:2] for p in LESSONS] == ["01", "02", "03", "04", "05", "06", "07"]
    assert [p.name[:10] for p in STUDENT] == [f"exercise_{n}" for n in "1234"]
    # worked solutions: the lesson notebooks with a coding exercise, and every exercise
    assert [p.name for p in SOLUTIONS] == [p.name for p in LESSONS if p.name[:2] in ("01", "03", "04", "05")] + [
        p.name for p in STUDENT]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_template_sections_in_order(path):
    headings = [line for c in load(path) if c["cell_type"] == "markdown"
                for line in text(c).splitlines() if line.startswith("#")]
    joined = "\n".join(headings)
    order = ["## Learning objectives", "## Setup", "## 1.", "## Summary", "## Further reading"]
    positions = [joined.find(h) for h in order]
    assert all(p >= 0 for p in positions), f"missing one of {order} in {path.name}"
    assert positions == sorted(positions)
    for kind in ("### Interactive demo", "### Think!", "### Exercise"):
        assert kind in joined, f"{path.name} has no '{kind}' cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_imports_style_and_seed(path):
    setup = next(text(c) for c in load(path) if c["cell_type"] == "code")
    assert "plots.use_style()" in setup and "LESSON.seed" in setup


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_executed_in_order_without_errors(path):
    code = [c for c in load(path) if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "restart and run all before committing"
    for c in code:
        for o in c["outputs"]:
            if o["output_type"] == "error":  # only a student's unwritten stub may fail, marked
                assert path not in SOLUTIONS and o["ename"] == "NotImplementedError"
                assert "raises-exception" in c["metadata"].get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_unchecked_cells_are_marked_justified_and_followed_by_a_plain_check(path):
    cells = load(path)
    for i, c in enumerate(cells):
        src = text(c)
        if c["cell_type"] == "code" and "interact(" in src:
            assert src.startswith("# NBVAL_IGNORE_OUTPUT"), "widget output is not reproducible"
            assert "_ = interact(" in src, "a bare interact(...) prints its function object"
        if src.startswith("# NBVAL_IGNORE_OUTPUT"):
            lines = src.splitlines()
            assert lines[1].startswith("#"), "say why this cell's output is not compared"
            follow = text(cells[i + 1])
            if "interact(" in src or "deploy.run_" in src:
                assert cells[i + 1]["cell_type"] == "code" and (
                    "extreme" in follow or follow.startswith("# Check")), "check it in a plain cell"
        if src.startswith("# NBVAL_SKIP"):  # only the real-cluster cell, inert unless configured
            assert path.name.startswith("06_") and "SCHEDULER = None" in src


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_trailing_semicolon_to_silence_output(path):
    for c in load(path):
        if c["cell_type"] == "code":
            assert not re.search(r";\s*$", text(c)), "under nbval use `_ = ...` instead of `;`"
