"""FedBuff on a time window (``AsyncConfig.buffer_window``): the server steps on what it
took up within the window, however many updates that is."""

import numpy as np
import pytest

from fedasync_lib import AsyncConfig, run
from fedasync_lib.teaching.lesson import LESSON

CFG = AsyncConfig(concurrency=8, heterogeneity=1.0, num_updates=80, eval_every=10)


def steps(h):
    """The updates grouped by the server step that applied them: the model version they
    were taken up at (each step adds 1), in order."""
    groups = {}
    for u in h.updates:
        groups.setdefault(u["version"], []).append(u)
    return [groups[v] for v in sorted(groups)]


@pytest.mark.parametrize("config", [CFG, LESSON, CFG.replace(apply_time=0.05)])
def test_a_window_of_0_seconds_is_fedbuff_with_a_buffer_of_one(config):
    k1 = run(config.replace(buffer_size=1), "fedbuff")
    w0 = run(config.replace(buffer_window=0.0, buffer_size=7), "fedbuff")  # buffer_size unread
    assert w0.updates == k1.updates and w0.evals == k1.evals


@pytest.mark.parametrize("window", [0.3, 1.0, 2.5])
def test_each_step_applies_what_was_taken_up_within_its_window(window):
    h = run(CFG.replace(buffer_window=window), "fedbuff")
    groups = steps(h)
    assert len(groups) > 2
    for group, following in zip(groups, groups[1:]):
        opened = group[0]["applied_time"]
        assert all(opened <= u["applied_time"] <= opened + window for u in group)
        assert following[0]["applied_time"] > opened + window  # came after the window closed
        # each update of the step weighs server_lr / (K' sqrt(1 + s)), K' the window's count
        # of accepted updates (the staleness bound rejects the others: weight 0)
        accepted = [u for u in group if u["staleness"] <= CFG.max_staleness]
        for u in group:
            want = (CFG.server_lr / (len(accepted) * np.sqrt(1 + u["staleness"]))
                    if u in accepted else 0.0)
            assert u["alpha"] == pytest.approx(want)


def test_a_longer_window_takes_fewer_larger_steps():
    sizes = []
    for window in (0.2, 1.0, 4.0):
        h = run(CFG.replace(buffer_window=window), "fedbuff")
        sizes.append(len(h.updates) / len(steps(h)))
    assert sizes[0] < sizes[1] < sizes[2]


@pytest.mark.parametrize("window", [0.3, 1.0, 3.0])
@pytest.mark.parametrize("bound", [0, 1, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_window_keeps_the_bound_of_bounded_staleness_that_waits(window, bound, seed):
    """Under staleness_policy="wait" no update may arrive staler than the bound. A window's
    step comes after the updates that opened it: the bound counts an open window as a step
    already taken, and the run still finishes (a step comes when the window closes, even
    if no update arrives)."""
    h = run(CFG.replace(buffer_window=window, staleness_policy="wait", max_staleness=bound,
                        seed=seed), "fedbuff")
    assert len(h.updates) == CFG.num_updates
    assert max(u["staleness"] for u in h.updates) <= bound
    assert all(u["alpha"] > 0 for u in h.updates)  # nothing was dropped
