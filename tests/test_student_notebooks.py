"""The learners' notebooks are generated from the solution notebooks, and nothing else: nbgrader's
ClearSolutions replaces the solution regions, no solution code and no answer to a prediction
leaks into a learner's copy, and the notebooks name only record fields that History has."""

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

from fedasync_lib import AsyncConfig, run

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("make_student_notebooks",
                                              ROOT / "scripts" / "make_student_notebooks.py")
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
LEARNERS = [ROOT / "notebooks" / p.name for p in SOLUTIONS]
ALL = sorted((ROOT / "notebooks").glob("*.ipynb")) + SOLUTIONS


def test_committed_student_notebooks_match_the_generator(capsys):
    assert gen.main(["--check"]) == 0, capsys.readouterr().out


def tiny_solution(extra_cells=()):
    nb = nbformat.v4.new_notebook()
    body = nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n")
    body.metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False,
                                 "grade_id": "f", "schema_version": 3}
    nb.cells = [nbformat.v4.new_markdown_cell("# Title (worked solution)"), body, *extra_cells]
    return nb


def test_a_solution_region_becomes_nbgraders_stub_naming_the_exercise():
    student = gen.student_version(tiny_solution(), "Exercise 9")
    assert student.cells[0].source == "# Title"
    assert student.cells[1].source.splitlines()[1:] == [
        "    # YOUR CODE HERE", '    raise NotImplementedError("Exercise 9: write your code here")']
    namespace = {}
    exec(compile(student.cells[1].source, "stub", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="Exercise 9"):
        namespace["f"](1)


def test_each_stub_names_the_exercise_whose_heading_is_above_it():
    """A notebook with two exercises (notebook 5 has 5.1 and 5.2): each stub names its own."""
    second = nbformat.v4.new_code_cell("def g(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n")
    second.metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False,
                                   "grade_id": "g", "schema_version": 3}
    nb = tiny_solution([nbformat.v4.new_markdown_cell("### Exercise 9.2: another one"), second])
    student = gen.student_version(nb, "Exercise 9.1")
    assert 'NotImplementedError("Exercise 9.1: ' in student.cells[1].source
    assert 'NotImplementedError("Exercise 9.2: ' in student.cells[3].source


def test_cells_for_the_teacher_stay_out_and_answers_keep_no_output():
    test_cell = nbformat.v4.new_code_cell("assert f(1) == 2")
    test_cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 1, "grade_id": "t",
                                      "locked": True, "schema_version": 3}
    only = nbformat.v4.new_markdown_cell("the worked answer")
    only.metadata["tags"] = ["solution-only"]
    answer = nbformat.v4.new_code_cell("print(f(1))")
    answer.metadata["tags"] = ["answer"]
    answer.outputs = [nbformat.v4.new_output("stream", text="2\n")]
    student = gen.student_version(tiny_solution([test_cell, only, answer]), "Exercise 9")
    sources = [c.source for c in student.cells]
    assert "assert f(1) == 2" not in sources and "the worked answer" not in sources
    last = student.cells[-1]
    assert last.outputs == [] and "nbval-ignore-output" in last.metadata["tags"]


def test_a_solution_region_without_nbgrader_metadata_is_refused():
    nb = tiny_solution()
    del nb.cells[1].metadata["nbgrader"]
    with pytest.raises(ValueError, match="no nbgrader solution metadata"):
        gen.student_version(nb, "Exercise 9")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_no_solution_code_leaks_into_the_learners_copy(solution):
    student = ROOT / "notebooks" / solution.name
    student_text = "\n".join(c.source for c in nbformat.read(student, as_version=4).cells)
    blocks = 0
    for cell in nbformat.read(solution, as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            if line.strip() == gen.BEGIN:
                inside, blocks = True, blocks + 1
            elif line.strip() == gen.END:
                inside = False
            elif inside and len(line.split("#")[0].strip()) > 12:  # a line of real code
                assert line.split("#")[0].strip() not in student_text, line
    assert blocks >= 1
    meta = json.loads(student.read_text())
    raises = [c for c in meta["cells"] if "raises-exception" in c["metadata"].get("tags", [])]
    assert raises and all("".join(c["source"]).startswith("# Expected to fail") for c in raises)


PREDICT = re.compile(r"\*\*Predict first[.:]\*\*")


@pytest.mark.parametrize("path", LEARNERS + sorted((ROOT / "notebooks").glob("0[5-9]_*.ipynb")),
                         ids=lambda p: p.name)
def test_no_prediction_prompt_is_followed_by_its_answer(path):
    """After a markdown cell that asks the learner to predict ("**Predict first.**"), the code
    cells up to the next markdown cell keep no stored output in the learner's copy."""
    asking = False
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type == "markdown":
            asking = bool(PREDICT.search(cell.source))
        elif asking:
            assert not cell.outputs, f"cell {i} answers a prediction but has a stored output"


def record_keys():
    """The keys of History's update records, evaluation records and summary."""
    h = run(AsyncConfig(num_updates=4, eval_every=2, concurrency=2))
    return set(h.updates[0]), set(h.evals[0]), set(h.summary())


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_markdown_names_only_record_fields_that_history_has(path):
    """In a sentence about the update records (``h.updates``) or the evaluation records
    (``h.evals``), every back-quoted name must be a key of those records."""
    updates, evals, summary = record_keys()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        for sentence in re.split(r"(?<=[.;])\s", cell.source):
            if "h.updates" in sentence or "update record" in sentence:
                known = updates
            elif "h.evals" in sentence or "evaluation record" in sentence:
                known = evals
            else:
                continue
            for name in re.findall(r"`([a-z_]+)`", sentence):
                assert name in known | {"alpha"}, (
                    f"{path.name}: {name!r} is named as a record field, but History's records "
                    f"have {sorted(known)}")


def test_the_field_check_would_catch_the_old_wording():
    updates, _, _ = record_keys()
    assert "time" not in updates and {"start_time", "arrival_time", "applied_time", "alpha"} <= updates
