"""The queue model's predictions against the simulator: each client's steady-state staleness
(after the first 200 updates, over seeds, weighted by each client's share of the updates),
its share of the updates, the mean staleness c - 1, and what a drop bound throws away."""

import numpy as np
import pytest

from fedasync_lib import AsyncConfig, predicted_staleness, run
from fedasync_lib.analysis import predicted_drop_share, queue_model

# Small data, so that a long run (3,000 updates) takes well under a second.
SMALL = dict(samples_per_client=20, test_size=50, input_dim=8, max_staleness=None,
             num_updates=3000, eval_every=3000)


def measured(cfg, skip=200):
    h = run(cfg)
    cid = h.column("client_id")[skip:]
    staleness = h.column("staleness")[skip:]
    share = np.bincount(cid, minlength=cfg.num_clients) / len(cid)
    mean = np.array([staleness[cid == i].mean() if np.any(cid == i) else np.nan
                     for i in range(cfg.num_clients)])
    return share, mean, staleness


def weighted_error(predicted, mean, share):
    seen = ~np.isnan(mean)
    return float(np.sum(share[seen] * np.abs(predicted[seen] - mean[seen]) / mean[seen])
                 / share[seen].sum())


@pytest.mark.parametrize("concurrency,heterogeneity", [(4, 0.3), (4, 1.0), (8, 0.6), (16, 1.0)])
def test_predicted_staleness_per_client_within_20_percent(concurrency, heterogeneity):
    errors = []
    for seed in (1, 2, 3):
        cfg = AsyncConfig(num_clients=4 * concurrency, concurrency=concurrency,
                          heterogeneity=heterogeneity, seed=seed, **SMALL)
        share, mean, staleness = measured(cfg)
        model = queue_model(cfg)
        errors.append(weighted_error(model.staleness, mean, share))
        assert staleness.mean() == pytest.approx(concurrency - 1, rel=0.03)  # Little's law
        assert model.mean_staleness == pytest.approx(concurrency - 1)
        assert np.abs(model.shares - share).max() < 0.02
    assert np.mean(errors) < 0.2, errors


def test_slow_clients_are_far_staler_than_fast_ones():
    cfg = AsyncConfig(num_clients=40, concurrency=10, heterogeneity=1.0, seed=1, **SMALL)
    s = predicted_staleness(cfg)
    order = np.argsort(queue_model(cfg).durations)
    assert s[order[-1]] > 10 * s[order[0]]
    assert np.all(np.diff(s[order]) >= 0)  # staleness grows with the job time


def test_two_clients_per_slot_need_the_exact_model():
    """The lesson's own 20 clients for 10 slots: the product form still holds, the
    mean-field shortcut does not."""
    exact, shortcut = [], []
    for seed in (1, 2, 3):
        cfg = AsyncConfig(num_clients=20, concurrency=10, heterogeneity=2.0, seed=seed, **SMALL)
        share, mean, _ = measured(cfg)
        exact.append(weighted_error(predicted_staleness(cfg), mean, share))
        shortcut.append(weighted_error(predicted_staleness(cfg, method="mean-field"), mean, share))
    assert np.mean(exact) < 0.1 and np.mean(shortcut) > 0.15, (exact, shortcut)


def test_fedbuff_counts_staleness_in_server_steps():
    cfg = AsyncConfig(num_clients=24, concurrency=6, heterogeneity=0.5, buffer_size=3, seed=2,
                      **SMALL)
    h = run(cfg, "fedbuff")
    assert h.column("staleness")[200:].mean() == pytest.approx(
        queue_model(cfg, "fedbuff").mean_staleness, rel=0.15)


@pytest.mark.parametrize("bound", [2, 5, 10])
def test_predicted_drop_share(bound):
    cfg = AsyncConfig(num_clients=40, concurrency=10, heterogeneity=1.0, **SMALL)
    shares = [np.mean(run(cfg.replace(max_staleness=bound, seed=s)).column("alpha")[200:] == 0)
              for s in (1, 2, 3)]
    predicted = np.mean([predicted_drop_share(cfg.replace(seed=s), bound) for s in (1, 2, 3)])
    assert predicted == pytest.approx(np.mean(shares), abs=0.03)


@pytest.mark.parametrize("changes,phrase", [
    ({"client_order": "fastest"}, "client_order='fastest' is not modelled"),
    ({"apply_time": 0.1}, "apply_time=0.1 is not modelled"),
    ({"staleness_policy": "wait", "max_staleness": 3}, "staleness_policy='wait'"),
])
def test_what_the_model_does_not_cover_is_refused(changes, phrase):
    with pytest.raises(ValueError, match=phrase):
        predicted_staleness(AsyncConfig(**changes))
    with pytest.raises(ValueError, match="algorithm='fedavg' is invalid"):
        predicted_staleness(AsyncConfig(), "fedavg")
