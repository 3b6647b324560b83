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
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import seeding
from .config import AsyncConfig
from .memory import check_data_fits


class AsyncDataset:
    """A labelled dataset held as two numpy arrays, ``x`` (float32) and ``y`` (int64).

    ``AsyncDataset(n, dim, classes, seed)`` draws the synthetic task from a
    private numpy generator: the same seed always gives the same arrays,
    whatever the global random state. It is also a map-style dataset
    (``len`` and ``[i]`` give ``(x_i, y_i)``), as a ``torch.utils.data.Dataset`` is.
    """

    def __init__(self, n: int = 200, dim: int = 32, classes: int = 10, seed: int = 0):
        if n < 1 or dim < 1 or classes < 2:
            raise ValueError(
                f"AsyncDataset(n={n}, dim={dim}, classes={classes}) is invalid: "
                "expected n >= 1, dim >= 1, classes >= 2"
            )
        gen = np.random.default_rng(seed)
        y = gen.integers(0, classes, n, dtype=np.int64)
        x = gen.standard_normal((n, dim), dtype=np.float32)
        x[np.arange(n), y % dim] += 2.0  # the class signal
        self.x, self.y = x, y

    @classmethod
    def from_arrays(cls, x, y) -> "AsyncDataset":
        """Wrap existing arrays (numpy, or anything ``np.asarray`` reads, such as CPU
        tensors): ``x`` of shape ``(n, ...)`` (features, or images such as ``(n, 1, 8, 8)``),
        ``y`` of shape ``(n,)``. No copy when they are already float32 and int64 numpy arrays."""
        x, y = _as_numpy(x), _as_numpy(y)
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"expected x of shape (n, ...) and y of shape (n,), got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
        data = cls.__new__(cls)
        data.x, data.y = x.astype(np.float32, copy=False), y.astype(np.int64, copy=False)
        return data

    def subset(self, indices: np.ndarray) -> "AsyncDataset":
        idx = np.asarray(indices, dtype=np.intp)
        return AsyncDataset.from_arrays(self.x[idx], self.y[idx])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx: int):
        return self.x[idx], self.y[idx]


def _as_numpy(a) -> np.ndarray:
    """``a`` as a numpy array; a torch tensor through ``.detach().cpu().numpy()`` (no copy
    for a CPU tensor), without importing torch."""
    if hasattr(a, "detach") and hasattr(a, "numpy"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


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
    train = AsyncDataset.from_arrays(x[train_idx], y[train_idx])
    test = AsyncDataset.from_arrays(x[test_idx], y[test_idx])
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

    @classmethod
    def from_clients(cls, clients: Sequence[Union[Tuple[Any, Any], Any]],
                     test: Union[Tuple[Any, Any], Any],
                     latencies: Optional[Sequence[float]] = None) -> "FederatedData":
        """Bring your own data: one ``(x, y)`` pair (numpy arrays or torch tensors) or
        map-style dataset (such as a ``torch.utils.data.Dataset``) per client.

        ``x`` holds float features of shape ``(n, ...)`` (for example ``(n, 64)``
        or images ``(n, 1, 8, 8)``), ``y`` integer class labels of shape
        ``(n,)``; a ``Dataset`` yields ``(x_i, y_i)`` pairs. ``test`` is the
        server's held-out set, in the same form. Every client must hold at
        least one sample, and every sample must have the same shape. Anything
        else raises ``ValueError`` naming the client and what is wrong. Labels
        are checked against ``config.num_classes`` when a run is built.
        """
        if len(clients) == 0:
            raise ValueError("clients is empty: expected one (x, y) pair or Dataset per client")
        datasets = [_as_dataset(c, f"client {i}") for i, c in enumerate(clients)]
        test_set = _as_dataset(test, "the test set")
        shape = tuple(datasets[0].x.shape[1:])
        for name, data in [*((f"client {i}", d) for i, d in enumerate(datasets)),
                           ("the test set", test_set)]:
            if tuple(data.x.shape[1:]) != shape:
                raise ValueError(f"{name}'s samples have shape {tuple(data.x.shape[1:])}, but "
                                 f"client 0's have {shape}: expected one sample shape for all")
        if latencies is not None:
            latencies = np.asarray(latencies, dtype=float)
            if latencies.shape != (len(datasets),) or not np.all(np.isfinite(latencies)) \
                    or not np.all(latencies > 0):
                raise ValueError(f"latencies={latencies!r} is invalid: expected one finite "
                                 f"number > 0 per client ({len(datasets)})")
        return cls(datasets, test_set, latencies)

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(c) for c in self.clients])

    def label_counts(self, num_classes: int) -> np.ndarray:
        """Matrix (clients x classes) of how many samples of each class a client holds."""
        return np.stack([np.bincount(c.y, minlength=num_classes) for c in self.clients])


def _as_dataset(data: Union[Tuple[Any, Any], Any], name: str) -> AsyncDataset:
    """One client's (or the test set's) data as an AsyncDataset, checked; ``name`` is for errors."""
    if isinstance(data, AsyncDataset):
        x, y = data.x, data.y
    elif isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError(f"{name} is a sequence of length {len(data)}: expected an (x, y) pair")
        x, y = data
    elif isinstance(data, (str, bytes)):
        raise ValueError(f"{name} is a {type(data).__name__}: expected an (x, y) pair of "
                         "arrays or tensors, or a map-style Dataset")
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):  # a map-style dataset
        n = len(data)
        if n == 0:
            raise ValueError(f"{name} has no samples: expected at least 1")
        pairs = [data[i] for i in range(n)]
        if not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
            raise ValueError(f"{name}'s Dataset does not yield (x, y) pairs")
        try:
            x = np.stack([_as_numpy(p[0]) for p in pairs])
            y = np.stack([_as_numpy(p[1]) for p in pairs])
        except ValueError as err:
            raise ValueError(f"{name}'s samples differ in shape: {err}") from None
    elif hasattr(data, "__getitem__"):
        raise ValueError(f"{name} is a Dataset without len(): expected a map-style Dataset")
    else:
        raise ValueError(f"{name} is a {type(data).__name__}: expected an (x, y) pair of "
                         "arrays or tensors, or a map-style Dataset")
    try:
        x, y = _as_numpy(x), _as_numpy(y)
    except Exception as err:  # anything np.asarray cannot read
        raise ValueError(f"{name}'s x and y cannot be read as arrays: {err}") from None
    if len(x) == 0 or len(y) == 0:
        raise ValueError(f"{name} has no samples: expected at least 1")
    if x.ndim < 2:
        raise ValueError(f"{name}'s x has shape {tuple(x.shape)}: expected (n, ...) with one "
                         "row per sample, such as (n, features)")
    if y.ndim != 1:
        raise ValueError(f"{name}'s y has shape {tuple(y.shape)}: expected (n,), one class "
                         "label per sample")
    if len(x) != len(y):
        raise ValueError(f"{name} has {len(x)} inputs but {len(y)} labels: expected as many of each")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name}'s x has dtype {_dtype_name(data, x)}: expected floating-point "
                         "features (convert with x.float() or x.astype(np.float32))")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}'s y has dtype {_dtype_name(data, y, 'y')}: expected integer "
                         "class labels (convert with y.long() or y.astype(np.int64))")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}'s x has {int((~np.isfinite(x)).sum())} NaN or infinite "
                         "values: expected finite features")
    return AsyncDataset.from_arrays(x, y)


def _dtype_name(data: Any, array: np.ndarray, which: str = "x") -> str:
    """The dtype as the learner wrote it: ``torch.float32`` for a tensor, else numpy's name."""
    given = data[0 if which == "x" else 1] if isinstance(data, (tuple, list)) else None
    dtype = getattr(given, "dtype", None)
    return str(dtype) if dtype is not None and "torch" in str(dtype) else str(array.dtype)


def make_federated_data(config: AsyncConfig, dirichlet_alpha: Optional[float] = None) -> FederatedData:
    """Build the training pool and test set of ``config.dataset`` and split the pool.

    ``dirichlet_alpha`` overrides ``config.dirichlet_alpha`` when given.
    """
    alpha = dirichlet_alpha if dirichlet_alpha is not None else config.dirichlet_alpha
    check_data_fits(config)
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
        parts = partition_dirichlet(pool.y, config.num_clients, alpha, gen)
    return FederatedData(clients=split_rows(pool, parts), test=test)


def split_rows(data: AsyncDataset, parts: List[np.ndarray]) -> List[AsyncDataset]:
    """The datasets of ``data``'s rows ``parts[0]``, ``parts[1]``, ...

    The rows are copied once, client after client, into one pair of arrays,
    and each client's dataset is a slice (a view) of them: no second copy, and
    a trainer can take all clients' samples as one tensor
    (:meth:`fedasync_lib.core.training.AllSamples.of`).
    """
    order = np.concatenate(parts).astype(np.intp)
    x, y = data.x[order], data.y[order]
    ends = np.cumsum([len(p) for p in parts]).tolist()
    return [AsyncDataset.from_arrays(x[start:end], y[start:end])
            for start, end in zip([0, *ends[:-1]], ends)]
