"""FedBuff's server optimisers (momentum, Adam) on the buffer's averaged change:
fedasync_lib/algorithms/server_optimizers.py and FedBuff's use of them."""

import math

import numpy as np
import pytest

from fedasync_lib import AsyncConfig, run
from fedasync_lib.algorithms.fedbuff import fedbuff_step
from fedasync_lib.algorithms.server_optimizers import ServerOptimizer
from fedasync_lib.teaching import convergence

CFG = AsyncConfig(concurrency=6, heterogeneity=1.0, num_updates=60, eval_every=10, buffer_size=3)


def test_adam_steps_against_a_hand_computation():
    opt = ServerOptimizer(AsyncConfig(server_optimizer="adam", server_lr=0.5, server_momentum=0.8,
                                      server_beta2=0.9, server_epsilon=0.01))
    x = {"w": np.array([1.0, -2.0]), "b": np.array([3.0])}
    d1 = {"w": np.array([0.2, -0.4]), "b": np.array([0.0])}
    d2 = {"w": np.array([-0.1, 0.3]), "b": np.array([1.0])}
    x1 = opt.step(x, d1)
    x2 = opt.step(x1, d2)
    for key, i in (("w", 0), ("w", 1), ("b", 0)):
        # by hand, one coordinate at a time: m, v start at 0, no bias correction
        m = 0.2 * d1[key][i]
        v = 0.1 * d1[key][i] ** 2
        want1 = x[key][i] + 0.5 * m / (math.sqrt(v) + 0.01)
        m = 0.8 * m + 0.2 * d2[key][i]
        v = 0.9 * v + 0.1 * d2[key][i] ** 2
        want2 = want1 + 0.5 * m / (math.sqrt(v) + 0.01)
        assert x1[key][i] == pytest.approx(want1, rel=1e-12)
        assert x2[key][i] == pytest.approx(want2, rel=1e-12)
    assert x["w"].tolist() == [1.0, -2.0] and d1["w"].tolist() == [0.2, -0.4], "inputs changed"


def test_momentum_steps_against_a_hand_computation():
    opt = ServerOptimizer(AsyncConfig(server_optimizer="momentum", server_lr=0.5, server_momentum=0.8))
    x = {"w": np.array([1.0])}
    x1 = opt.step(x, {"w": np.array([2.0])})      # m = 2
    x2 = opt.step(x1, {"w": np.array([-1.0])})    # m = 0.8 * 2 - 1 = 0.6
    assert x1["w"][0] == pytest.approx(1.0 + 0.5 * 2.0)
    assert x2["w"][0] == pytest.approx(2.0 + 0.5 * 0.6)


def test_adam_on_a_quadratic_converges_to_its_minimum():
    """f(x) = 1/2 sum_i a_i (x_i - x*_i)^2, curvatures 1 to 100: the change d = -grad f."""
    a = np.array([1.0, 10.0, 100.0])
    target = np.array([1.0, -2.0, 0.5])
    opt = ServerOptimizer(AsyncConfig(server_optimizer="adam", server_lr=0.02, server_epsilon=1e-3))
    x = {"x": np.zeros(3)}
    f = []
    for _ in range(3000):
        x = opt.step(x, {"x": -a * (x["x"] - target)})
        f.append(0.5 * float((a * (x["x"] - target) ** 2).sum()))
    assert np.abs(x["x"] - target).max() < 1e-2
    assert f[-1] < 1e-4 * f[0] and max(f[-100:]) < 1e-3


def test_fedbuff_with_adam_on_the_lessons_quadratic_lowers_the_loss():
    """The simulator's FedBuff with FedAdam on notebook 5's least-squares problem, no
    staleness (one client at a time): the training loss falls, and keeps falling."""
    cfg = convergence.quadratic_config(1, 1.0).replace(server_optimizer="adam", server_lr=0.01,
                                                       num_updates=300)
    h = convergence.quadratic_run(cfg)
    loss = h.column("train_loss", "evals")
    assert loss[-1] < 0.5 * loss[0]
    assert all(b <= a * 1.001 for a, b in zip(loss[-6:], loss[-5:])), loss[-6:]
    assert h.stable


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_a_learners_buffer_step_plugs_in_under_a_server_optimizer(optimizer):
    cfg = CFG.replace(server_optimizer=optimizer, server_lr=0.3)
    own = run(cfg, "fedbuff")
    mine = run(cfg, "fedbuff", buffer_step=lambda x, buf, lr: {
        k: x[k] + lr * sum(d[k] / np.sqrt(1 + s) for d, s in buf) / len(buf) for k in x})
    np.testing.assert_allclose(mine.column("accuracy", "evals"), own.column("accuracy", "evals"), atol=1e-6)
    np.testing.assert_allclose(mine.column("train_loss", "evals"), own.column("train_loss", "evals"), rtol=1e-5)


def test_plain_steps_are_fedbuff_as_published():
    """The default optimiser is FedBuff's own step: a run with it spelled out is the same run,
    and its step is x + eta * (1/K) sum_i delta_i / sqrt(1 + s_i)."""
    a, b = run(CFG, "fedbuff"), run(CFG.replace(server_optimizer="sgd"), "fedbuff")
    assert a.updates == b.updates and a.evals == b.evals
    x = {"w": np.array([1.0, 2.0])}
    buf = [({"w": np.array([1.0, 0.0])}, 0), ({"w": np.array([0.0, 3.0])}, 3)]
    np.testing.assert_allclose(fedbuff_step(x, buf, 2.0)["w"], [1.0 + 2.0 * 1.0 / 2, 2.0 + 2.0 * 1.5 / 2])


def test_momentum_and_adam_keep_float32_states():
    for optimizer in ("momentum", "adam"):
        from fedasync_lib.runner import server_for
        server = server_for(CFG.replace(server_optimizer=optimizer, server_lr=0.3), "fedbuff")
        server.train()
        assert all(v.dtype == np.float32 for v in server.model.state.values())


def test_a_module_of_ones_own_trains_under_adam():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(CFG.feature_dim, CFG.num_classes))
    h = run(CFG.replace(server_optimizer="adam", server_lr=0.01), "fedbuff", model=model)
    assert h.stable and h.final_accuracy > h.evals[0]["accuracy"]
