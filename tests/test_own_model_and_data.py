"""Bring your own model and data: any nn.Module through torch.func, per-client tensors."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset, TensorDataset

from fedasync_lib import AsyncConfig, AsyncModel, FederatedData, make_federated_data, run
from fedasync_lib.core.data import load_digits_split
from fedasync_lib.core.model_zoo import DigitsCNN, LogisticRegression
from fedasync_lib.runner import server_for

# The digits with a step large enough for 200 updates to reach a good model.
DIGITS = AsyncConfig(dataset="digits", learning_rate=0.2, num_updates=200, eval_every=50)


# --- any model, end to end ------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["fedasync", "fedbuff", "fedavg"])
@pytest.mark.parametrize("make_model, minimum", [
    (lambda seed: DigitsCNN(seed=seed), 0.85),  # 0.93-0.94 with this seed
    (lambda seed: LogisticRegression(seed=seed), 0.90),  # 0.95
], ids=["cnn", "logistic-regression"])
def test_other_models_learn_the_digits_under_every_algorithm(algorithm, make_model, minimum):
    model = make_model(DIGITS.seed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    h = run(DIGITS, algorithm, model=model)
    assert len(h.updates) == DIGITS.num_updates and not h.diverged
    assert h.evals[0]["accuracy"] < 0.3  # it starts from chance...
    assert h.final_accuracy >= minimum  # ...and learns
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # not modified


def test_a_run_with_another_model_is_reproducible_and_uses_torch_func():
    server = server_for(DIGITS.replace(num_updates=30), model=LogisticRegression(seed=1))
    assert server.local_training.name == "torch.func"
    a = server.train()
    b = run(DIGITS.replace(num_updates=30), model=LogisticRegression(seed=1))
    np.testing.assert_array_equal(a.column("accuracy", "evals"), b.column("accuracy", "evals"))


def test_the_torch_func_path_runs_the_built_in_mlp_like_the_fast_path():
    cfg = DIGITS.replace(num_updates=60, eval_every=20)
    fast, generic = run(cfg), run(cfg, training="torch.func")
    assert [u["client_id"] for u in fast.updates] == [u["client_id"] for u in generic.updates]
    np.testing.assert_allclose(fast.column("accuracy", "evals"), generic.column("accuracy", "evals"),
                               atol=2e-3)
    np.testing.assert_allclose(fast.column("train_loss"), generic.column("train_loss"), rtol=1e-3)


class Wide(nn.Module):
    def forward(self, x):
        return torch.zeros(len(x), 3)


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(13, 10)

    def forward(self, x):
        return self.linear(x)


@pytest.mark.parametrize("model, message", [
    (Wide(), r"model Wide returned \(2, 3\) for 2 samples: expected \(2, num_classes=10\)"),
    (Broken(), r"model Broken cannot take the data's inputs of shape \(64,\) per sample: "
               r"RuntimeError"),
])
def test_a_model_that_does_not_fit_the_data_is_a_clear_error(model, message):
    with pytest.raises(ValueError, match=message):
        run(DIGITS, model=model)


def test_hidden_dim_is_not_read_with_another_model():
    with pytest.raises(ValueError, match="hidden_dim=32 is not read when a model is given"):
        run(DIGITS.replace(hidden_dim=32), model=LogisticRegression())


# --- any data -------------------------------------------------------------------------------
def own_split(num_clients, as_dataset=False, images=False):
    """The digits cut into contiguous shards: data the package did not split."""
    train, test = load_digits_split(seed=3)
    x = train.x.reshape(-1, 1, 8, 8) if images else train.x
    test_x = test.x.reshape(-1, 1, 8, 8) if images else test.x
    shards = np.array_split(np.arange(len(train)), num_clients)
    pairs = [(torch.from_numpy(x[s]), torch.from_numpy(train.y[s])) for s in shards]  # tensors
    if as_dataset:
        pairs = [TensorDataset(a, b) for a, b in pairs]
    return FederatedData.from_clients(pairs, (test_x, test.y))


@pytest.mark.parametrize("as_dataset", [False, True], ids=["pairs", "datasets"])
def test_own_tensors_or_datasets_per_client_train_and_learn(as_dataset):
    data = own_split(DIGITS.num_clients, as_dataset=as_dataset)
    assert len(data.clients) == DIGITS.num_clients and sum(data.sizes) == 1438
    h = run(DIGITS, data=data)
    assert h.final_accuracy >= 0.85


def test_own_image_tensors_with_a_cnn():
    data = own_split(DIGITS.num_clients, images=True)
    assert data.clients[0].x.shape[1:] == (1, 8, 8)
    h = run(DIGITS.replace(num_updates=100), data=data, model=DigitsCNN(seed=0))
    assert h.final_accuracy >= 0.6


def test_own_latencies_are_used():
    train, test = load_digits_split(seed=3)
    pairs = [(train.x[i::4], train.y[i::4]) for i in range(4)]
    data = FederatedData.from_clients(pairs, (test.x, test.y), latencies=[1.0, 2.0, 4.0, 8.0])
    h = run(DIGITS.replace(num_clients=4, concurrency=4, num_updates=40), data=data)
    delivered = h.contributions(applied_only=False)
    assert delivered[0] > delivered[3]  # the fast client delivers more


class NoLen(Dataset):
    def __getitem__(self, i):
        return torch.zeros(3), 0


class Singles(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return torch.zeros(3)


GEN = torch.Generator().manual_seed(0)
X, Y = torch.randn(10, 4, generator=GEN), torch.arange(10) % 3  # labels 0, 1, 2
TEST = (torch.randn(5, 4, generator=GEN), torch.arange(5) % 3)


@pytest.mark.parametrize("clients, test, message", [
    ([], TEST, "clients is empty"),
    ([(X, Y), (X[:7], Y)], TEST, "client 1 has 7 inputs but 10 labels"),
    ([(X, Y), (X[:0], Y[:0])], TEST, "client 1 has no samples"),
    ([(X, Y), TensorDataset(X[:0], Y[:0])], TEST, "client 1 has no samples"),
    ([(X.long(), Y)], TEST, "client 0's x has dtype torch.int64: expected floating-point"),
    ([(X > 0, Y)], TEST, "client 0's x has dtype torch.bool: expected floating-point"),
    ([(X, Y), (X, Y.float())], TEST, "client 1's y has dtype torch.float32: expected integer"),
    ([(X, Y), (X, Y.bool())], TEST, "client 1's y has dtype torch.bool: expected integer"),
    ([(X, Y), (X, Y[:, None])], TEST, r"client 1's y has shape \(10, 1\): expected \(n,\)"),
    ([(X[:, 0], Y)], TEST, r"client 0's x has shape \(10,\): expected \(n, ...\)"),
    ([(X, Y), (torch.full((10, 4), float("nan")), Y)], TEST, "client 1's x has 40 NaN"),
    ([(X, Y), (X[:, :3], Y)], TEST, r"client 1's samples have shape \(3,\), but client 0's "
                                    r"have \(4,\)"),
    ([(X, Y)], (TEST[0][:, :2], TEST[1]), r"the test set's samples have shape \(2,\)"),
    ([(X, Y)], (TEST[0], TEST[1][:3]), "the test set has 5 inputs but 3 labels"),
    ([(X, Y), "data"], TEST, "client 1 is a str: expected an \\(x, y\\) pair"),
    ([(X, Y, Y)], TEST, "client 0 is a sequence of length 3: expected an \\(x, y\\) pair"),
    ([NoLen()], TEST, "client 0 is a Dataset without len"),
    ([Singles()], TEST, r"client 0's Dataset does not yield \(x, y\) pairs"),
])
def test_bad_data_is_a_clear_error_naming_the_client(clients, test, message):
    with pytest.raises(ValueError, match=message):
        FederatedData.from_clients(clients, test)


@pytest.mark.parametrize("latencies", [[1.0], [1.0, -1.0], [1.0, float("nan")]])
def test_bad_latencies_are_a_clear_error(latencies):
    with pytest.raises(ValueError, match="latencies=.* is invalid: expected one finite number > 0 "
                                         r"per client \(2\)"):
        FederatedData.from_clients([(X, Y), (X, Y)], TEST, latencies=latencies)


def test_labels_outside_the_classes_are_a_clear_error_when_the_run_is_built():
    data = FederatedData.from_clients([(X, Y), (X, Y + 9)], TEST)
    cfg = AsyncConfig(num_clients=2, concurrency=2, input_dim=4, num_classes=10)
    with pytest.raises(ValueError, match=r"client 1 has labels from 9 to 11: expected 0 to "
                                         r"num_classes - 1 = 9"):
        run(cfg, data=data)
    with pytest.raises(ValueError, match="data has 2 clients, expected num_clients=3"):
        run(cfg.replace(num_clients=3), data=data)


def test_the_built_in_split_is_unchanged_by_the_shared_storage():
    """make_federated_data's clients are views of one tensor; each holds its own rows."""
    cfg = AsyncConfig(num_clients=4, concurrency=4, dirichlet_alpha=0.5)
    data = make_federated_data(cfg)
    assert all(c.x.base is data.clients[0].x.base for c in data.clients)
    total = np.concatenate([c.y for c in data.clients])
    assert len(total) == cfg.num_clients * cfg.samples_per_client
    assert AsyncModel(cfg)(data.clients[0].x).shape == (len(data.clients[0]), 10)
