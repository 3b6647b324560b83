"""No "Predict first" question is answered before the learner runs the cell that measures it.

In a learner's copy the answer cell (tagged ``answer``) keeps no stored output; the existing test
in test_student_notebooks.py checks that. The answer can still leak three other ways, and this
module catches each:

(a) the markdown cell right after the answer states the reading: it must be collapsed
    (start with ``<details>``), so that the learner opens it after running the cell;
(b) a later stored output prints a number the answer prints;
(c) later markdown (a summary, a Think! question) states such a number outside ``<details>``.

The answer's numbers are recorded as digests when the notebook is executed
(scripts/spoilers.py). A number that already appears above the answer (in the prompt, in code,
or in an earlier output) is context, not an answer, and is not looked for.
"""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("spoilers", ROOT / "scripts" / "spoilers.py")
spoilers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(spoilers)

PREDICT = re.compile(r"\*\*Predict first[.:]\*\*")
LEARNERS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def problems(nb) -> list[str]:
    """Every way in which ``nb`` answers a prediction before the learner runs its answer cell."""
    found = []
    cells = nb.cells
    for i, prompt in enumerate(cells):
        if prompt.cell_type != "markdown" or not PREDICT.search(prompt.source):
            continue
        following = []
        for cell in cells[i + 1:]:
            if cell.cell_type == "markdown":
                break
            following.append(cell)
        answers = [cells.index(c) for c in following if "answer" in c.metadata.get("tags", [])]
        if not answers:
            found.append(f"cell {i} asks for a prediction, but no cell below it is tagged 'answer'")
            continue
        last = answers[-1]
        if any(spoilers.KEY not in cells[a].metadata for a in answers):
            found.append(f"answer cell {last} has no record of its numbers: run "
                         "scripts/execute_notebooks.py on this notebook")
            continue
        reading = next((k for k in range(last + 1, len(cells)) if cells[k].cell_type == "markdown"), None)
        if reading is not None and not cells[reading].source.lstrip().startswith("<details>"):
            found.append(f"cell {reading}, right after the answer to cell {i}'s prediction, is not "
                         "collapsed: start it with <details>")
        digests = set().union(*(cells[a].metadata[spoilers.KEY] for a in answers))
        context = set()
        for k, cell in enumerate(cells[:last + 1]):
            if cell.cell_type == "code":
                context |= spoilers.numbers(cell.source)
                if k < i:
                    context |= spoilers.numbers(spoilers.output_text(cell))
            elif k <= i:
                context |= spoilers.numbers(cell.source)
        digests -= {spoilers.digest(n) for n in context}
        for k in range(last + 1, len(cells)):
            cell = cells[k]
            if cell.cell_type == "code":
                text, verb = spoilers.output_text(cell), "prints in its stored output"
            else:
                text, verb = spoilers.visible_markdown(cell.source), "states outside <details>"
            for number in sorted(spoilers.numbers(text)):
                if spoilers.digest(number) in digests:
                    found.append(f"cell {k} {verb} {number}, which the answer to cell {i}'s "
                                 f"prediction prints (cell {last})")
    return found


@pytest.mark.parametrize("path", LEARNERS, ids=lambda p: p.name)
def test_no_prediction_is_answered_before_its_cell_runs(path):
    assert problems(nbformat.read(path, as_version=4)) == []


def test_every_learner_notebook_with_a_prediction_is_checked():
    """The test above is not vacuous: the lesson asks for predictions, and they are recorded."""
    asked = [p.name for p in LEARNERS
             if any(PREDICT.search(c.source) for c in nbformat.read(p, as_version=4).cells
                    if c.cell_type == "markdown")]
    assert len(asked) >= 8, asked
    recorded = sum(bool(c.metadata.get(spoilers.KEY)) for p in LEARNERS
                   for c in nbformat.read(p, as_version=4).cells)
    assert recorded >= 8


# --- the check itself, on small notebooks -----------------------------------------------------

def lesson(after_answer, later=(), printed="accuracy 0.917, 25.5 % dropped\n"):
    """A prompt, an answer cell that printed ``printed`` (then cleared), and what follows."""
    nb = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_code_cell("print(result)")
    answer.metadata["tags"] = ["answer"]
    answer.outputs = [nbformat.v4.new_output("stream", text=printed)]
    nb.cells = [nbformat.v4.new_markdown_cell("Bound 5. **Predict first.** How many are dropped?"),
                answer, *after_answer, *later]
    spoilers.fingerprint(nb)
    answer.outputs = []
    return nb


def details(text="The numbers: 25.5 % are dropped."):
    return nbformat.v4.new_markdown_cell(f"<details><summary>What the numbers say</summary>\n\n{text}\n</details>")


def test_a_collapsed_reading_passes():
    assert problems(lesson([details()])) == []


def test_form_a_an_open_reading_right_after_the_answer_fails():
    found = problems(lesson([nbformat.v4.new_markdown_cell("Few are dropped: see above.")]))
    assert len(found) == 1 and "not collapsed" in found[0]


def test_form_b_a_later_output_that_prints_the_answer_fails():
    later = nbformat.v4.new_code_cell("print(again)")
    later.outputs = [nbformat.v4.new_output("stream", text="seed 42: 25.5% dropped\n")]
    found = problems(lesson([details()], [later]))
    assert len(found) == 1 and "prints in its stored output 25.5%" in found[0]


def test_form_c_a_summary_that_repeats_the_answer_fails():
    summary = nbformat.v4.new_markdown_cell("## Summary\n- The accuracy reaches 0.917 at bound 5.")
    found = problems(lesson([details()], [summary]))
    assert len(found) == 1 and "states outside <details> 0.917" in found[0]


def test_numbers_given_before_the_question_are_context_not_answers():
    nb = lesson([details()], [nbformat.v4.new_markdown_cell("## Summary\nAt bound 5, accuracy 0.917.")])
    nb.cells[0].source = "Last time: accuracy 0.917. " + nb.cells[0].source
    assert problems(nb) == []


def test_an_unrecorded_or_untagged_answer_fails():
    nb = lesson([details()])
    del nb.cells[1].metadata[spoilers.KEY]
    assert "no record of its numbers" in problems(nb)[0]
    nb.cells[1].metadata["tags"] = []
    assert "no cell below it is tagged 'answer'" in problems(nb)[0]


def test_the_record_does_not_give_the_numbers_away():
    nb = lesson([details()])
    text = nbformat.writes(nb)
    assert "0.917" not in text.split("What the numbers say")[0] and "25.5" not in text.split("<details>")[0]
