"""The root conftest.py's share-out of the suite to two workers: a notebook and its solution
copy are one unit, FIRST and then the long units go first, and every unit it names still exists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The root conftest.py under a name of its own ("conftest" may be another folder's).
_spec = importlib.util.spec_from_file_location("fedasync_root_conftest", ROOT / "conftest.py")
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)


def test_a_notebook_and_its_solution_copy_are_one_unit_and_a_module_is_one():
    assert (suite.scope_of("notebooks/03_staleness_weighting.ipynb::Cell 4")
            == suite.scope_of("notebooks/solutions/03_staleness_weighting.ipynb::Cell 9"))
    assert suite.scope_of("tests/test_cli.py::test_a") == suite.scope_of("tests/test_cli.py::test_b[1]")
    assert suite.scope_of("tests/test_cli.py::test_a") != suite.scope_of("tests/test_config.py::test_a")


def test_the_long_units_go_first_longest_first_and_the_rest_keep_their_order():
    rest = ["tests/test_z.py", "tests/test_a.py", "notebook 02_staleness.ipynb"]
    longest = max(suite.SECONDS, key=suite.SECONDS.get)
    shortest = min(suite.SECONDS, key=suite.SECONDS.get)
    first = suite.FIRST[0]
    order = suite.longest_first(rest[:1] + [shortest] + rest[1:] + [longest, first])
    assert order == [first] + [s for s in (longest, shortest) if s != first] + rest
    assert suite.longest_first(rest) == rest  # FIRST only when it is in the suite


def test_every_unit_the_table_names_exists():
    for scope in [*suite.SECONDS, *suite.FIRST]:
        if scope.startswith("notebook "):
            path = ROOT / "notebooks" / scope.removeprefix("notebook ")
        else:
            path = ROOT / scope
        assert path.exists(), f"conftest.SECONDS names {scope!r}, which is not in the suite any more"
