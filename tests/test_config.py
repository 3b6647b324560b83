import dataclasses
import math
import re

import pytest

from fedasync_lib import AsyncConfig

# One or more bad values for every field, and a word the error must contain.
BAD_VALUES = {
    "num_updates": [0, -5, 2.5, "10", True],
    "num_clients": [0, -1, 1.0],
    "input_dim": [0, 3.0],
    "hidden_dim": [0, -64],
    "num_classes": [1, 0],
    "learning_rate": [0.0, -0.01, math.nan, math.inf, 11.0],
    "batch_size": [0, 32.0],
    "local_epochs": [0, -2],
    "max_staleness": [-1, 2.5, "10"],
    "staleness_weight_decay": [0.0, 1.5, -0.5, math.nan],
    "seed": [-1, 1.5, None],
    "concurrency": [0, 21, -3],
    "mean_latency": [0.0, -1.0, math.inf],
    "seconds_per_sample": [-1.0, math.nan, 2000.0],
    "heterogeneity": [-0.1, 5.5, math.nan],
    "jitter": [-0.1, 6.0],
    "mixing": ["fedavg", "", None],
    "mixing_alpha": [0.0, 1.01, -0.5, math.nan],
    "damping_constant": [0.0, -100.0],
    "staleness": ["linear", "Polynomial", None],
    "poly_a": [-0.5, math.inf],
    "hinge_a": [-1.0, math.nan],
    "hinge_b": [-1, 4.5],
    "dataset": ["mnist", None],
    "samples_per_client": [0, -10],
    "test_size": [0],
    "dirichlet_alpha": [0.0, -1.0, math.inf],
    "eval_every": [0, -20],
    "staleness_policy": ["block", None],
    "apply_time": [-1.0, math.nan],
    "update_order": ["lifo", None],
    "client_order": ["slowest", 3],
    "buffer_size": [0, 2.5],
    "server_lr": [0.0, -1.0, 101.0],
    "track_grad_norm": [1, "yes", None],
    "server_optimizer": ["fedadam", "Adam", None],
    "buffer_window": [-1.0, math.nan, math.inf, "1"],
    "oversample": [0.5, 0.0, math.nan, 101.0],
    "round_deadline": [0.0, -1.0, math.inf],
    "server_momentum": [1.0, -0.1, math.nan],
    "server_beta2": [1.0, -0.5],
    "server_epsilon": [0.0, -1e-3, math.inf],
    "availability": ["sometimes", None, 1],
    "availability_share": [0.0, 1.5, math.nan],
    "availability_amplitude": [-0.1, 1.1, math.nan],
    "day_length": [0.0, -24.0, math.inf],
    "availability_trace": [5, "abc"],
    "dropout": [1.0, -0.1, math.nan],
    "job_timeout": [0.0, -1.0, math.inf],
}


def test_every_field_has_a_bad_input_case():
    assert set(BAD_VALUES) == {f.name for f in dataclasses.fields(AsyncConfig)}


@pytest.mark.parametrize("field,value",
                         [(f, v) for f, values in BAD_VALUES.items() for v in values])
def test_bad_value_raises_naming_field_value_and_range(field, value):
    with pytest.raises(ValueError) as err:
        AsyncConfig(**{field: value})
    message = str(err.value)
    assert message.startswith(f"{field}={value!r}"), message
    assert "expected" in message
    # The allowed range or choices are spelled out.
    assert re.search(r"[\[(].*[\])]|one of", message), message


def test_seed_defaults_are_kept():
    cfg = AsyncConfig()
    assert (cfg.num_updates, cfg.num_clients, cfg.input_dim, cfg.hidden_dim, cfg.num_classes) == (
        200, 20, 32, 64, 10)
    assert (cfg.learning_rate, cfg.batch_size, cfg.local_epochs) == (0.01, 32, 2)
    assert (cfg.max_staleness, cfg.staleness_weight_decay, cfg.seed) == (10, 0.5, 42)


def test_valid_edge_values_are_accepted():
    AsyncConfig(concurrency=20, num_clients=20)
    AsyncConfig(concurrency=1, heterogeneity=0.0, jitter=0.0, max_staleness=0)
    AsyncConfig(max_staleness=None, dirichlet_alpha=0.01, mixing_alpha=1.0,
                staleness_weight_decay=1.0)


def test_concurrency_range_follows_num_clients():
    AsyncConfig(num_clients=5, concurrency=5)
    with pytest.raises(ValueError, match=r"concurrency=6 .*\[1, 5\]"):
        AsyncConfig(num_clients=5, concurrency=6)


def test_digits_needs_ten_classes():
    with pytest.raises(ValueError, match="num_classes=5"):
        AsyncConfig(dataset="digits", num_classes=5)
    assert AsyncConfig(dataset="digits").feature_dim == 64
    assert AsyncConfig(input_dim=7).feature_dim == 7


def test_replace_validates_again():
    cfg = AsyncConfig()
    assert cfg.replace(concurrency=3).concurrency == 3
    with pytest.raises(ValueError, match="mixing_alpha"):
        cfg.replace(mixing_alpha=2.0)
