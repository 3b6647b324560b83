"""Several seeds in one call, and the statistics the lesson's comparisons rest on; and
train_loss, the objective the theorems bound, checked against a direct computation."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fedasync_lib import AsyncConfig, run, run_seeds, seeds as seeds_module
from fedasync_lib.analysis import compare, spread
from fedasync_lib.analysis.statistics import standard_error_of_accuracy
from fedasync_lib.runner import server_for

CFG = AsyncConfig(dataset="digits", num_updates=60, eval_every=20, concurrency=5,
                  learning_rate=0.1, dirichlet_alpha=0.5)


def same(a, b):
    return a.updates == b.updates and a.evals == b.evals and a.unfinished == b.unfinished


@pytest.mark.parametrize("workers", [1, 2])
def test_run_seeds_is_run_with_each_seed(workers, monkeypatch):
    monkeypatch.setattr(seeds_module, "POOL_START_SECONDS", 0.0)  # use the pool even for short runs
    monkeypatch.setattr(seeds_module, "HAND_OVER_SECONDS", 0.0)
    seeds = [3, 1, 4, 1]
    many = run_seeds(CFG, seeds, "fedbuff", workers=workers)
    assert len(many) == 4
    for s, h in zip(seeds, many):
        assert same(h, run(CFG.replace(seed=s), "fedbuff"))


def test_run_seeds_takes_hooks_and_numpy_seeds():
    hs = run_seeds(CFG, np.arange(2), mixing_rule=lambda ctx: 0.5, workers=2)
    assert all(np.all(h.column("alpha")[h.column("alpha") > 0] == 0.5) for h in hs)
    for bad in ([], [1.5], ["1"], [True]):
        with pytest.raises(ValueError, match="seeds=.* is invalid"):
            run_seeds(CFG, bad)


def test_train_loss_is_the_server_models_loss_on_all_training_samples():
    server = server_for(CFG)
    h = server.train()
    x = torch.as_tensor(np.concatenate([c.dataset.x for c in server.clients]))
    y = torch.as_tensor(np.concatenate([c.dataset.y for c in server.clients]))
    module = server.module.to_module()
    module.load_state_dict(dict(zip(module.state_dict(),
                                    (torch.tensor(v) for v in server.state.values()))))
    direct = F.cross_entropy(module(x), y).item()
    assert h.evals[-1]["train_loss"] == pytest.approx(direct, rel=1e-5)
    assert h.summary()["train_loss"] == h.evals[-1]["train_loss"]
    assert h.evals[0]["train_loss"] > h.evals[-1]["train_loss"]  # it trains


def test_spread_and_compare():
    s = spread([0.9, 0.92, 0.94, 0.96])
    assert (s.mean, s.low, s.high, s.n) == (pytest.approx(0.93), 0.9, 0.96, 4)
    assert s.std == pytest.approx(np.std([0.9, 0.92, 0.94, 0.96], ddof=1))
    assert str(s) == "0.930 ± 0.026 (4 seeds, 0.900 to 0.960)"
    assert standard_error_of_accuracy(0.94, 359) == pytest.approx(0.0125, abs=1e-4)

    class H:  # what compare reads of a History
        def __init__(self, v):
            self.v = v

        def tail_accuracy(self):
            return self.v

    a = [H(v) for v in (0.95, 0.96, 0.94, 0.95)]
    b = [H(v) for v in (0.90, 0.91, 0.90, 0.89)]
    assert compare(a, b, names=("x", "y")).verdict == "x"
    assert compare(b, a, names=("x", "y")).verdict == "y"
    assert compare(a, b, test_size=10).verdict == "tie"  # 10 test samples: all noise
    close = [H(v) for v in (0.951, 0.955, 0.945, 0.949)]
    assert compare(a, close).verdict == "tie"
    assert compare(a[:3], b[:3]).verdict == "tie"  # fewer than 4 seeds: no ranking
    with pytest.raises(ValueError, match="one pair per seed"):
        compare(a, b[:2])
