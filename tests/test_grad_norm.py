"""grad_norm_sq, the quantity the convergence theorems bound, against a direct autograd
computation: the gradient of the clients' uniform average objective."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from fedasync_lib import AsyncConfig
from fedasync_lib.core.data import FederatedData, load_digits_split
from fedasync_lib.core.model import AsyncModel
from fedasync_lib.runner import server_for


def direct(module: nn.Module, state, clients, loss) -> float:
    """(1/n) sum_i mean_j loss over client i, differentiated by plain autograd."""
    copies = (v.clone() if torch.is_tensor(v) else torch.tensor(v) for v in state.values())
    module.load_state_dict(dict(zip(module.state_dict(), copies)))
    module.zero_grad()
    total = sum(loss(module(torch.as_tensor(c.x)), torch.as_tensor(c.y)).mean()
                for c in clients) / len(clients)
    total.backward()
    return sum(float((p.grad.double() ** 2).sum()) for p in module.parameters())


def test_the_built_in_mlp_matches_autograd():
    cfg = AsyncConfig(dataset="digits", num_clients=4, num_updates=20, eval_every=10,
                      concurrency=2, dirichlet_alpha=0.5, track_grad_norm=True)
    server = server_for(cfg)
    h = server.train()
    assert all(math.isfinite(e["grad_norm_sq"]) and e["grad_norm_sq"] > 0 for e in h.evals)
    clients = [c.dataset for c in server.clients]
    want = direct(AsyncModel(cfg).to_module(), server.state, clients,
                  nn.CrossEntropyLoss(reduction="none"))
    assert h.evals[-1]["grad_norm_sq"] == pytest.approx(want, rel=1e-4)


def test_a_model_and_loss_of_ones_own_with_clients_of_unequal_size():
    """A sample-weighted gradient would differ here: the clients hold 5, 40 and 200 samples."""
    train, test = load_digits_split(0)
    sizes, start, clients = (5, 40, 200), 0, []
    for m in sizes:
        clients.append((train.x[start: start + m], train.y[start: start + m]))
        start += m
    data = FederatedData.from_clients(clients, (test.x, test.y))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 10))

    def loss(scores, labels):  # a per-sample squared error to the one-hot label
        one_hot = (labels.unsqueeze(-1) == torch.arange(scores.shape[-1])).to(scores.dtype)
        return ((scores - one_hot) ** 2).sum(-1)

    cfg = AsyncConfig(dataset="digits", num_clients=3, num_updates=6, eval_every=3, concurrency=2,
                      learning_rate=0.01, track_grad_norm=True)
    server = server_for(cfg, "fedasync", data, model=model, loss=loss)
    h = server.train()
    datasets = [c.dataset for c in server.clients]
    fresh = nn.Sequential(nn.Linear(64, 10))
    want = direct(fresh, server.state, datasets, loss)
    assert h.evals[-1]["grad_norm_sq"] == pytest.approx(want, rel=1e-4)
    # the sample-weighted objective's gradient is another number
    fresh.load_state_dict(server.state)
    fresh.zero_grad()
    x = torch.as_tensor(np.concatenate([d.x for d in datasets]))
    y = torch.as_tensor(np.concatenate([d.y for d in datasets]))
    loss(fresh(x), y).mean().backward()
    pooled = sum(float((p.grad.double() ** 2).sum()) for p in fresh.parameters())
    assert abs(pooled - want) > 1e-3 * want


@pytest.mark.parametrize("algorithm", ["fedasync", "fedbuff", "fedavg"])
def test_every_evaluation_records_a_finite_grad_norm_sq(algorithm):
    """At the start, every eval_every updates and after the last flush, for every policy."""
    cfg = AsyncConfig(dataset="digits", num_clients=4, num_updates=10, eval_every=4,
                      concurrency=2, buffer_size=2, track_grad_norm=True)
    h = server_for(cfg, algorithm).train()
    assert [e["update"] for e in h.evals] == [0, 4, 8, 10]
    assert all("grad_norm_sq" in e and math.isfinite(e["grad_norm_sq"]) and e["grad_norm_sq"] >= 0
               for e in h.evals)


def test_grad_norm_sq_is_recorded_only_when_asked_and_changes_nothing_else():
    """Off by default (it costs a backward pass over every training sample per evaluation);
    asked for, it adds one field to each evaluation and leaves the run as it was."""
    cfg = AsyncConfig(dataset="digits", num_clients=4, num_updates=10, eval_every=4, concurrency=2)
    plain = server_for(cfg).train()
    tracked = server_for(cfg.replace(track_grad_norm=True)).train()
    assert all("grad_norm_sq" not in e for e in plain.evals)
    with pytest.raises(KeyError, match="track_grad_norm=True"):
        plain.column("grad_norm_sq", "evals")
    assert len(tracked.column("grad_norm_sq", "evals")) == len(plain.evals)
    for mine, theirs in zip(tracked.evals, plain.evals):
        assert {k: v for k, v in mine.items() if k != "grad_norm_sq"} == theirs
    assert tracked.updates == plain.updates


@pytest.mark.parametrize("value", [1, "yes", None, 0.0])
def test_track_grad_norm_takes_a_bool_only(value):
    with pytest.raises(ValueError, match=rf"track_grad_norm={value!r} is invalid: expected one of True, False"):
        AsyncConfig(track_grad_norm=value)
