"""Notebooks 5 to 7 (convergence, deploy, your own model) as a learner sees them: run in JupyterLab in Chromium,
a slider (or a menu) moved in each interactive demo. A module of its own, with its own
JupyterLab, so that two pytest workers can share the browser tests."""

from __future__ import annotations

import pytest

from notebook_runs import BONUS, run_notebook_and_move_its_demo


@pytest.mark.parametrize("notebook", BONUS, ids=lambda p: p.name)
def test_notebook_runs_and_its_demo_responds(notebook, browser, jupyterlab, screenshots):
    run_notebook_and_move_its_demo(notebook, browser, jupyterlab, screenshots)
