"""How two pytest workers share the suite (``-n 2``, scripts/test.sh).

Each test module goes to one worker as a whole, as ``--dist loadscope`` would do. A
notebook and its worked solution go to the *same* worker, one after the other, so that
the second finds the runs the first finished in the session's run cache
(fedasync_lib/teaching/run_cache.py); nbval's cells of one notebook stay in order on one
kernel either way.

The grouping is a scheduler of our own (xdist's ``pytest_xdist_make_scheduler`` hook), not
``xdist_group`` marks: with pytest 9.2, ``--dist loadgroup`` silently ignores marks
(pytest-dev/pytest-xdist#1386), and cells of one notebook then land on two kernels.
"""

from __future__ import annotations

from pathlib import PurePosixPath


def scope_of(nodeid: str) -> str:
    """The unit one worker runs whole: a test module, or a notebook with its solution copy."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return f"notebook {PurePosixPath(path).name}"  # notebooks/x and notebooks/solutions/x
    return path


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrNotebook(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return ModuleOrNotebook(config, log)
