import numpy as np
import pytest
import torch

from fedasync_lib import AsyncAggregator, AsyncConfig, Update
from fedasync_lib.algorithms.aggregator import mix


def states(kind="numpy"):
    """Two float32 states: numpy arrays (a built-in model's) or tensors (a module's)."""
    gen = np.random.default_rng(0)
    server, client = ({"w": gen.standard_normal((3, 4), np.float32),
                       "b": gen.standard_normal(4, np.float32)} for _ in range(2))
    if kind == "torch":
        server, client = ({k: torch.from_numpy(v) for k, v in s.items()} for s in (server, client))
    return server, client


def values(v):
    return v.numpy() if hasattr(v, "numpy") else np.asarray(v)


def close(a, b):
    torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b))


def update(client_state, base_version, num_samples=200):
    return Update(client_state, client_id=0, base_version=base_version, num_samples=num_samples)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_mix_is_convex_combination_and_leaves_inputs_untouched(kind):
    server, client = states(kind)
    before = {k: values(v) for k, v in server.items()}
    out = mix(server, client, 0.3)
    for k in server:
        close(out[k], 0.7 * server[k] + 0.3 * client[k])
        assert type(out[k]) is type(server[k]) and out[k].dtype == server[k].dtype
        assert np.array_equal(values(server[k]), before[k])
    assert all(np.array_equal(values(mix(server, client, 1.0)[k]), values(client[k]))
               for k in server)
    assert all(np.array_equal(values(mix(server, client, 0.0)[k]), values(server[k]))
               for k in server)


@pytest.mark.parametrize("stale", [0, 1, 3, 10])
def test_fedasync_rate_is_alpha_times_staleness_weight(stale):
    cfg = AsyncConfig(mixing_alpha=0.6, staleness="polynomial", poly_a=0.5, max_staleness=10)
    agg = AsyncAggregator(cfg)
    server, client = states()
    new, alpha = agg.aggregate(server, update(client, base_version=20), current_version=20 + stale)
    assert alpha == pytest.approx(0.6 * (1 + stale) ** -0.5)
    for k in server:
        close(new[k], (1 - alpha) * server[k] + alpha * client[k])


def test_update_beyond_bound_is_rejected_and_state_unchanged():
    agg = AsyncAggregator(AsyncConfig(max_staleness=3))
    server, client = states()
    same, alpha = agg.aggregate(server, update(client, 0), current_version=4)
    assert alpha == 0.0 and same is server
    _, alpha_at_bound = agg.aggregate(server, update(client, 0), current_version=3)
    assert alpha_at_bound > 0


def test_no_bound_accepts_any_staleness():
    agg = AsyncAggregator(AsyncConfig(max_staleness=None, staleness="constant", mixing_alpha=0.5))
    _, alpha = agg.aggregate(*states()[:1], update(states()[1], 0), current_version=10_000)
    assert alpha == 0.5


def test_sample_damping_is_the_original_rule_and_depends_on_sample_count():
    cfg = AsyncConfig(mixing="sample_damping", staleness="exponential",
                      staleness_weight_decay=0.5, damping_constant=100.0)
    agg = AsyncAggregator(cfg)
    _, client = states()
    w = 0.5 ** 2 * 200
    assert agg.mixing_rate(update(client, 0, 200), 2) == pytest.approx(w / (w + 100))
    small = agg.mixing_rate(update(client, 0, 50), 0)
    large = agg.mixing_rate(update(client, 0, 5000), 0)
    assert small == pytest.approx(1 / 3) and large == pytest.approx(5000 / 5100)


def test_update_staleness_needs_a_version_not_older_than_its_base():
    _, client = states()
    assert update(client, 5).staleness(9) == 4
    with pytest.raises(ValueError, match="current_version=4"):
        update(client, 5).staleness(4)
