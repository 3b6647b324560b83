"""The student notebooks are generated from the solution notebooks, and nothing else."""

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("make_student_notebooks",
                                              ROOT / "scripts" / "make_student_notebooks.py")
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)


def test_committed_student_notebooks_match_the_generator(capsys):
    assert gen.main(["--check"]) == 0, capsys.readouterr().out


def test_stub_keeps_one_hint_per_line_and_raises():
    source = '''def f(x):
    """doc"""
    ### BEGIN SOLUTION
    if x is None:  # nothing to do
        return 0  # zero
    return x + 1  # the answer
    ### END SOLUTION
'''
    stub = gen.stub_out(source, "Exercise 9")
    assert stub.splitlines()[2:] == [
        "    ...  # nothing to do", "    ...  # zero", "    ...  # the answer",
        '    raise NotImplementedError("Exercise 9: replace each ... with your code")']
    namespace = {}
    exec(compile(stub, "stub", "exec"), namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


def test_solution_line_without_hint_is_refused():
    with pytest.raises(ValueError, match="without a hint"):
        gen.stub_out("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "Exercise 9")


@pytest.mark.parametrize("solution", sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_no_solution_code_leaks_into_the_student_notebook(solution):
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
            elif inside and line.split("#")[0].strip():
                assert line.split("#")[0].strip() not in student_text.replace("...", "")
    assert blocks >= 1
    meta = json.loads(student.read_text())
    raises = [c for c in meta["cells"] if "raises-exception" in c["metadata"].get("tags", [])]
    assert raises and all("".join(c["source"]).startswith("# Expected to fail") for c in raises)
