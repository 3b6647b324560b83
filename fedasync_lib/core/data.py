"""Datasets and how they are split across clients.

Two tasks:

* ``synthetic``: the original tutorial's task. Features are standard normal;
  the label is uniform over the classes, and the feature at position
  ``label % dim`` is shifted by +2, so a linear model can learn it.
* ``digits``: scikit-learn's bundled handwritten digits (1,797 images of 8x8
  pixels, 10 classes), shipped with scikit-learn, so nothing is downloaded.

The training pool is split across clients either IID (a random equal split)
or with label skew: for each class, the shares that go to each client are
drawn from Dirichlet(alpha) (Hsu, Qi and Brown 2019). Small alpha gives
clients that see only a few classes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from . import seeding
from .config import AsyncConfig


class AsyncDataset(Dataset):
    """A labelled dataset held as two tensors, ``x`` (float32) and ``y`` (int64).

    ``AsyncDataset(n, dim, classes, seed)`` draws the synthetic task from a
    private torch generator: the same seed always gives the same tensors,
    whatever the global random state.
    """

    def __init__(self, n: int = 200, dim: int = 32, classes: int = 10, seed: int = 0):
        if n < 1 or dim < 1 or classes < 2:
            raise ValueError(
                f"AsyncDataset(n={n}, dim={dim}, classes={classes}) is invalid: "
                "expected n >= 1, dim >= 1, classes >= 2"
            )
        gen = torch.Generator().manual_seed(seed)
        y = torch.randint(0, classes, (n,), generator=gen, dtype=torch.long)
        x = torch.randn(n, dim, generator=gen, dtype=torch.float32)
        x[torch.arange(n), y % dim] += 2.0  # the class signal
        self.x, self.y = x, y

    @classmethod
    def from_tensors(cls, x: torch.Tensor, y: torch.Tensor) -> "AsyncDataset":
        """Wrap existing tensors (no copy)."""
        if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"expected x of shape (n, d) and y of shape (n,), got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
        data = cls.__new__(cls)
        data.x, data.y = x.float(), y.long()
        return data

    def subset(self, indices: np.ndarray) -> "AsyncDataset":
        idx = torch.as_tensor(indices, dtype=torch.long)
        return AsyncDataset.from_tensors(self.x[idx], self.y[idx])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx: int):
        return self.x[idx], self.y[idx]


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    bunch = load_digits()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


def load_digits_split(seed: int, test_fraction: float = 0.2) -> tuple[AsyncDataset, AsyncDataset]:
    """scikit-learn's digits, split into train and test, stratified by class.

    Pixels (0..16) are standardised with the training set's mean and standard
    deviation; constant pixels (always 0 at the border) stay 0.
    """
    x, y = _digits_arrays()
    gen = seeding.rng(seed, "digits-split")
    test_idx, train_idx = [], []
    for c in np.unique(y):
        members = gen.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_fraction * len(members)))
        test_idx.extend(members[:n_test])
        train_idx.extend(members[n_test:])
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    mean = x[train_idx].mean(axis=0)
    std = x[train_idx].std(axis=0)
    std[std == 0] = 1.0
    x = (x - mean) / std
    train = AsyncDataset.from_tensors(torch.from_numpy(x[train_idx]), torch.from_numpy(y[train_idx]))
    test = AsyncDataset.from_tensors(torch.from_numpy(x[test_idx]), torch.from_numpy(y[test_idx]))
    return train, test


def partition_iid(n: int, num_clients: int, gen: np.random.Generator) -> List[np.ndarray]:
    """Shuffle ``range(n)`` and cut it into ``num_clients`` near-equal parts."""
    return [np.sort(part) for part in np.array_split(gen.permutation(n), num_clients)]


def partition_dirichlet(labels: np.ndarray, num_clients: int, alpha: float,
                        gen: np.random.Generator) -> List[np.ndarray]:
    """Label-skewed split: class c's samples go to clients in Dirichlet(alpha) shares.

    Every client gets at least one sample: a client left empty by the draw
    takes one sample from the largest client.
    """
    parts: List[list] = [[] for _ in range(num_clients)]
    for c in np.unique(labels):
        members = gen.permutation(np.flatnonzero(labels == c))
        shares = gen.dirichlet(np.full(num_clients, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
        for client, chunk in enumerate(np.split(members, cuts)):
            parts[client].extend(chunk.tolist())
    for client in range(num_clients):
        if not parts[client]:
            donor = max(range(num_clients), key=lambda k: len(parts[k]))
            parts[client].append(parts[donor].pop())
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]


@dataclass
class FederatedData:
    """Each client's training data, and the server's held-out test set.

    ``latencies`` optionally fixes each client's typical job time, for
    experiments that tie speed to data (for example, slow clients holding the
    classes that fast clients lack); otherwise speeds are drawn from the config.
    """

    clients: List[AsyncDataset]
    test: AsyncDataset
    latencies: Optional[np.ndarray] = None

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(c) for c in self.clients])

    def label_counts(self, num_classes: int) -> np.ndarray:
        """Matrix (clients x classes) of how many samples of each class a client holds."""
        return np.stack([np.bincount(c.y.numpy(), minlength=num_classes) for c in self.clients])


def make_federated_data(config: AsyncConfig, dirichlet_alpha: Optional[float] = None) -> FederatedData:
    """Build the training pool and test set of ``config.dataset`` and split the pool.

    ``dirichlet_alpha`` overrides ``config.dirichlet_alpha`` when given.
    """
    alpha = dirichlet_alpha if dirichlet_alpha is not None else config.dirichlet_alpha
    if config.dataset == "digits":
        pool, test = load_digits_split(config.seed)
    else:
        pool = AsyncDataset(config.num_clients * config.samples_per_client,
                            config.input_dim, config.num_classes,
                            seed=int(seeding.rng(config.seed, "train-data").integers(2**62)))
        test = AsyncDataset(config.test_size, config.input_dim, config.num_classes,
                            seed=int(seeding.rng(config.seed, "test-data").integers(2**62)))
    if config.num_clients > len(pool):
        raise ValueError(
            f"num_clients={config.num_clients} is invalid for dataset={config.dataset!r}: "
            f"its training pool has only {len(pool)} samples, expected num_clients <= {len(pool)}"
        )
    gen = seeding.rng(config.seed, "partition")
    if alpha is None:
        parts = partition_iid(len(pool), config.num_clients, gen)
    else:
        parts = partition_dirichlet(pool.y.numpy(), config.num_clients, alpha, gen)
    return FederatedData(clients=[pool.subset(p) for p in parts], test=test)
