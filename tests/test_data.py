import numpy as np
import pytest

from fedasync_lib import AsyncConfig, AsyncDataset, make_federated_data
from fedasync_lib.core.data import load_digits_split, partition_dirichlet, partition_iid


def test_same_seed_same_arrays_whatever_the_global_rng():
    np.random.seed(1)
    a = AsyncDataset(n=50, seed=7)
    np.random.seed(999)
    np.random.rand(100)
    b = AsyncDataset(n=50, seed=7)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert a.x.dtype == np.float32 and a.y.dtype == np.int64
    c = AsyncDataset(n=50, seed=8)
    assert not np.array_equal(a.x, c.x)


def test_synthetic_task_carries_the_class_signal():
    d = AsyncDataset(n=2000, dim=32, classes=10, seed=0)
    signal = d.x[np.arange(2000), d.y % 32]
    assert signal.mean() == pytest.approx(2.0, abs=0.1)
    assert d.x.mean() == pytest.approx(2.0 / 32, abs=0.02)


def test_digits_split_is_stratified_standardised_and_complete():
    train, test = load_digits_split(seed=0)
    assert len(train) + len(test) == 1797
    assert len(test) == pytest.approx(0.2 * 1797, abs=10)
    assert train.x.shape[1] == 64
    train_share = np.bincount(train.y, minlength=10) / len(train)
    test_share = np.bincount(test.y, minlength=10) / len(test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)
    assert np.abs(train.x.mean(0)).max() < 1e-4
    assert np.isfinite(train.x).all() and np.isfinite(test.x).all()


def test_iid_partition_covers_every_index_once():
    parts = partition_iid(103, 10, np.random.default_rng(0))
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(103))
    assert {len(p) for p in parts} <= {10, 11}


@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0, 100.0])
def test_dirichlet_partition_covers_every_index_once_and_no_client_is_empty(alpha):
    labels = np.random.default_rng(0).integers(0, 10, size=500)
    parts = partition_dirichlet(labels, 20, alpha, np.random.default_rng(1))
    assert sorted(np.concatenate(parts).tolist()) == list(range(500))
    assert min(len(p) for p in parts) >= 1


def test_small_dirichlet_alpha_gives_label_skew():
    def classes_per_client(alpha):
        data = make_federated_data(AsyncConfig(dataset="digits", dirichlet_alpha=alpha))
        counts = data.label_counts(10)
        return (counts > 0).sum(axis=1).mean()

    assert classes_per_client(0.1) < 5 < classes_per_client(100.0)
    iid = make_federated_data(AsyncConfig(dataset="digits")).label_counts(10)
    assert (iid > 0).sum(axis=1).mean() > 9


def test_federated_data_is_reproducible_and_seed_dependent():
    a = make_federated_data(AsyncConfig(seed=3))
    b = make_federated_data(AsyncConfig(seed=3))
    c = make_federated_data(AsyncConfig(seed=4))
    assert all(np.array_equal(x.x, y.x) for x, y in zip(a.clients, b.clients))
    assert not np.array_equal(a.clients[0].x, c.clients[0].x)
    assert a.sizes.sum() == 20 * 200 and len(a.test) == 1000


def test_too_many_clients_for_the_data_is_a_clear_error():
    with pytest.raises(ValueError, match=r"num_clients=2000 .*only 1438 samples"):
        make_federated_data(AsyncConfig(dataset="digits", num_clients=2000, concurrency=10))
