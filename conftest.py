"""How two pytest workers share the suite (``-n 2``, scripts/test.sh).

Each test module goes to one worker as a whole, as ``--dist loadscope`` would do. A
notebook and its worked solution go to the *same* worker, one after the other, so that
the second finds the runs the first finished in the session's run cache
(fedasync_lib/teaching/run_cache.py); nbval's cells of one notebook stay in order on one
kernel either way.

The longest units are handed out first (:data:`SECONDS`), so that neither worker is left
alone with a long one at the end: on two workers, a unit of 90 s started last can make the
whole run 45 s longer than it need be. The others follow in xdist's order (most tests
first). Before all of them comes :data:`FIRST`: nbval's notebook 5, whose runs (about 80 s
of simulation) then go into the session's run cache from a plain kernel while the other
worker starts the browser's notebooks 7 and 6; the browser reaches notebook 5 last
(tests/browser/notebook_runs.py) and finds its runs kept, instead of computing them inside
JupyterLab while Chromium competes for the same two cores. Exercise E4 (its tuned race,
about 35 s of simulation) comes second in :data:`FIRST` for the same reason: the browser's
exercises reach it third.

The grouping is a scheduler of our own (xdist's ``pytest_xdist_make_scheduler`` hook), not
``xdist_group`` marks: with pytest 9.2, ``--dist loadgroup`` silently ignores marks
(pytest-dev/pytest-xdist#1386), and cells of one notebook then land on two kernels.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Dict, Iterable, List

#: Seconds each long unit took on a fresh clone (2 cores, ``bash .ci/run --durations=0 -v``,
#: summed per unit; docs/testing.md; E4, notebook 5 and test_deploy.py estimated from their
#: new cells and tests, #31). Only their order matters: a stale number costs balance,
#: never a test.
SECONDS: Dict[str, float] = {
    "tests/browser/test_lite.py": 125.2,
    "tests/browser/test_browser_bonus.py": 110.0,
    "tests/browser/test_browser.py": 114.5,
    "tests/browser/test_browser_exercises.py": 93.9,
    "tests/test_deploy.py": 62.0,
    "notebook 06_deploy_on_dask.ipynb": 28.6,
    "tests/test_course.py": 26.7,
    "tests/browser/test_slides_and_book.py": 22.4,
    "tests/test_setup.py": 20.0,
    "notebook exercise_4_sync_vs_async.ipynb": 65.0,
    "tests/test_deploy_hosts.py": 15.5,
    "tests/test_queueing.py": 14.1,
    "notebook exercise_2_priority_scheduling.ipynb": 13.5,
    "notebook 05_analyzing_convergence.ipynb": 27.0,
}


#: Units handed out before the longest (see the module's docstring).
FIRST: List[str] = ["notebook 05_analyzing_convergence.ipynb", "notebook exercise_4_sync_vs_async.ipynb"]


def scope_of(nodeid: str) -> str:
    """The unit one worker runs whole: a test module, or a notebook with its solution copy."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return f"notebook {PurePosixPath(path).name}"  # notebooks/x and notebooks/solutions/x
    return path


def longest_first(scopes: Iterable[str]) -> List[str]:
    """``scopes`` with those of :data:`FIRST` first, then those of :data:`SECONDS`, longest
    first; the rest as they came."""
    scopes = list(scopes)
    first = [s for s in FIRST if s in scopes]
    known = sorted((s for s in scopes if s in SECONDS and s not in first), key=lambda s: -SECONDS[s])
    return first + known + [s for s in scopes if s not in SECONDS and s not in first]


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrNotebook(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:  # the queue is complete when the first unit is handed out
                for scope in reversed(longest_first(self.workqueue)):
                    self.workqueue.move_to_end(scope, last=False)
                self.ordered = True
            super()._assign_work_unit(node)

    return ModuleOrNotebook(config, log)
