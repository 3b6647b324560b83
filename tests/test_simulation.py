"""The simulator's promises: staleness that really appears, bounds that really act,
clients whose speed decides who arrives first, and runs that repeat exactly."""

import math

import numpy as np
import pytest
import torch

from fedasync_lib import AsyncConfig, run_fedasync

HETERO = AsyncConfig(concurrency=10, heterogeneity=1.0, max_staleness=None)


@pytest.fixture(scope="module")
def hetero_run():
    return run_fedasync(HETERO)


def test_sequential_run_has_zero_staleness():
    h = run_fedasync(AsyncConfig(concurrency=1, num_updates=60))
    assert np.all(h.column("staleness") == 0)
    assert h.num_rejected == 0


def test_concurrency_makes_staleness_wide(hetero_run):
    s = hetero_run.column("staleness")
    assert s.mean() > 1
    assert s.max() >= 3 * s.mean()  # slow clients come back very stale
    assert len(np.unique(s)) > 10


def test_fast_clients_contribute_more_than_slow_ones(hetero_run):
    latency = np.array(hetero_run.client_latency)
    counts = hetero_run.contributions(applied_only=False)
    order = np.argsort(latency)
    fastest, slowest = order[:5], order[-5:]
    assert counts[fastest].sum() > 2 * counts[slowest].sum()
    assert np.corrcoef(latency, counts)[0, 1] < -0.5


def test_staleness_is_the_number_of_applied_updates_while_the_client_trained():
    """Recompute staleness from the records alone: the updates applied in between."""
    h = run_fedasync(AsyncConfig(concurrency=6, max_staleness=4, num_updates=150))
    ups = h.updates
    for i, u in enumerate(ups):
        applied_between = sum(1 for v in ups[:i] if v["alpha"] > 0 and v["arrival_time"] > u["start_time"])
        assert u["staleness"] == applied_between
        version_on_arrival = ups[i - 1]["version"] if i else 0
        assert u["staleness"] == version_on_arrival - u["base_version"]


def test_every_update_beyond_max_staleness_is_rejected_and_recorded():
    h = run_fedasync(AsyncConfig(concurrency=10, heterogeneity=1.0, max_staleness=3))
    s, alpha = h.column("staleness"), h.column("alpha")
    assert np.all(alpha[s > 3] == 0)
    assert np.all(alpha[s <= 3] > 0)
    assert h.num_rejected == int((s > 3).sum()) > 0
    versions = h.column("version")
    assert np.all(np.diff(np.concatenate([[0], versions])) == (alpha > 0))


def test_arrivals_in_time_order_with_concurrency_respected():
    cfg = AsyncConfig(concurrency=7, num_updates=120)
    h = run_fedasync(cfg)
    times, starts = h.column("arrival_time"), h.column("start_time")
    assert np.all(np.diff(times) >= 0)
    assert np.all(starts < times)
    for t in times:  # at most `concurrency` jobs in flight at any moment
        assert ((starts <= t) & (times > t)).sum() <= cfg.concurrency
    for c in range(cfg.num_clients):  # a client runs one job at a time
        mine = sorted((s, t) for s, t, u in zip(starts, times, h.updates) if u["client_id"] == c)
        assert all(a[1] <= b[0] for a, b in zip(mine, mine[1:]))


def test_jobs_take_their_clients_time():
    cfg = AsyncConfig(concurrency=20, jitter=0.0, heterogeneity=1.0, num_updates=100)
    h = run_fedasync(cfg)
    for u in h.updates:
        assert u["arrival_time"] - u["start_time"] == pytest.approx(h.client_latency[u["client_id"]])


def test_same_config_same_history_other_seed_other_history():
    cfg = AsyncConfig(num_updates=80, concurrency=5)
    a = run_fedasync(cfg)
    torch.manual_seed(123)
    np.random.seed(123)
    b = run_fedasync(cfg)
    assert a.updates == b.updates and a.evals == b.evals
    c = run_fedasync(cfg.replace(seed=43))
    assert a.updates != c.updates


def test_history_records_have_the_documented_keys():
    cfg = AsyncConfig(num_updates=45, eval_every=10)
    h = run_fedasync(cfg)
    assert len(h.updates) == 45
    assert set(h.updates[0]) >= {"arrival_time", "client_id", "base_version", "version",
                                 "staleness", "alpha"}
    assert [e["update"] for e in h.evals] == [0, 10, 20, 30, 40, 45]
    assert set(h.evals[0]) >= {"time", "version", "accuracy", "loss"}
    assert h.final_accuracy == h.evals[-1]["accuracy"]


def test_training_learns_digits():
    h = run_fedasync(AsyncConfig(dataset="digits", concurrency=1, learning_rate=0.05))
    assert h.evals[0]["accuracy"] < 0.25
    assert h.final_accuracy > 0.9


def test_divergence_is_caught_and_reported_not_returned_as_a_number():
    h = run_fedasync(AsyncConfig(learning_rate=10.0, mixing_alpha=1.0,
                                 staleness="constant", max_staleness=None))
    assert h.diverged
    assert math.isnan(h.final_accuracy)
    assert len(h.updates) < 200
