"""The device model: with seconds_per_sample set, a job's time grows with the samples it
trains on times local_epochs, on top of the communication part, both at the client's speed;
left at 0, every job time is exactly what it was."""

import numpy as np
import pytest

from fedasync_lib import AsyncConfig, run
from fedasync_lib.core.clients import draw_mean_latencies, typical_job_times
from fedasync_lib.runner import build

CFG = AsyncConfig(num_updates=40, eval_every=20, concurrency=4, dirichlet_alpha=0.5)


def durations(h):
    return h.column("arrival_time") - h.column("start_time")


def test_at_the_default_job_times_are_unchanged():
    sizes = build(CFG).data.sizes
    np.testing.assert_array_equal(typical_job_times(CFG, sizes), draw_mean_latencies(CFG))
    assert [c.mean_latency for c in build(CFG).clients] == list(draw_mean_latencies(CFG))


def test_a_job_costs_communication_plus_training_at_the_clients_speed():
    cfg = CFG.replace(seconds_per_sample=0.01, local_epochs=3)
    setup = build(cfg)
    speed = draw_mean_latencies(cfg) / cfg.mean_latency
    expected = speed * (cfg.mean_latency + 0.01 * 3 * setup.data.sizes)
    np.testing.assert_allclose([c.mean_latency for c in setup.clients], expected)
    assert len(set(setup.data.sizes)) > 1  # label skew: clients hold different amounts


def test_more_local_epochs_or_more_data_take_longer():
    base = CFG.replace(seconds_per_sample=0.005, jitter=0.0, heterogeneity=0.0)
    one, four = run(base.replace(local_epochs=1)), run(base.replace(local_epochs=4))
    assert durations(four).mean() > 2 * durations(one).mean()
    sizes = build(base).data.sizes
    for u, d in zip(one.updates, durations(one)):  # no jitter, equal speeds: exactly the formula
        assert d == pytest.approx(1.0 + 0.005 * 1 * sizes[u["client_id"]])
    # without the device model, local epochs do not change the clock
    plain1, plain4 = run(CFG.replace(local_epochs=1)), run(CFG.replace(local_epochs=4))
    np.testing.assert_array_equal(durations(plain1), durations(plain4))


def test_given_latencies_get_the_training_part_at_their_own_speed():
    latencies = np.array([1.0, 2.0, 4.0])
    cfg = AsyncConfig(num_clients=3, concurrency=3, seconds_per_sample=0.1, local_epochs=2)
    times = typical_job_times(cfg, [10, 10, 20], latencies)
    np.testing.assert_allclose(times, latencies * (1 + 0.1 * 2 * np.array([10, 10, 20])))
