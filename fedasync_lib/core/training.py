"""Local training: plain minibatch SGD on a client's data, many clients at once.

A client's *job* starts from the server state it was handed, runs
``local_epochs`` epochs of SGD, and returns its new state. Each epoch
shuffles the client's data and cuts it into minibatches of ``batch_size``;
the last one may be smaller, as with a ``DataLoader`` that keeps the
remainder.

Why train several jobs at once? On the virtual clock a job's result is
needed only when the job *arrives*. Until then nothing depends on it. So the
server can collect the jobs in flight and train them together, as one
batched computation where every tensor gets a leading job dimension ``K``.
Each job keeps its own weights, data and shuffle order, so the result of
every job is the same as if it had been trained alone (up to floating-point
rounding: a batched matrix product may add in another order); only the number
of Python-level tensor operations drops by a factor of ``K``.

Two trainers do the batched SGD, and give the same result where both apply
(``tests/test_training.py``):

* :class:`fedasync_lib.core.training_dense.DenseTrainer`, the built-in models
  (numpy): gradients written out by hand (:mod:`fedasync_lib.core.dense`);
* :class:`fedasync_lib.core.training_func.FuncTrainer`, any ``nn.Module``:
  ``torch.func.grad`` of a real ``torch.nn`` loss, ``vmap``-ed over the jobs.

:func:`local_trainer` picks one. This module holds what both share: the job,
its minibatch schedule, the step-major arrays of a batch of jobs, and each
job's client samples, on which it reports the trained model's loss. It is
numpy only: torch is imported by the second trainer alone.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import seeding
from .config import AsyncConfig
from .data import AsyncDataset

if TYPE_CHECKING:
    from .model import Loss, State

TRAINING_PATHS = ("auto", "hand-written", "torch.func")


@dataclass
class LocalJob:
    """One round of local training that a client was asked to do."""

    job_id: int  # unique within a run; selects the job's shuffle stream
    client_id: int
    base_version: int  # server version of base_state
    base_state: "State"
    start_time: float = 0.0  # when the client was handed the model
    arrival_time: float = 0.0  # when its update reaches the server


def minibatch_schedule(n: int, batch_size: int, epochs: int,
                       gen: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Indices and per-sample weights of every SGD step of one job.

    Returns ``(idx, weight)``, both of shape ``(steps, batch_size)`` with
    ``steps = epochs * ceil(n / batch_size)``. Each epoch is a fresh
    permutation of ``range(n)`` drawn from ``gen``, cut into minibatches.
    ``weight`` is ``1 / b`` for the ``b`` real samples of a step and 0 for
    padding (whose index is 0), so the weighted sum of per-sample losses is
    the minibatch mean. ``weight`` depends only on the sizes: it is shared,
    read-only.
    """
    steps_per_epoch = math.ceil(n / batch_size)
    order = np.zeros((epochs, steps_per_epoch * batch_size), dtype=np.intp)
    for epoch in range(epochs):
        order[epoch, :n] = gen.permutation(n)
    return order.reshape(-1, batch_size), _step_weights(n, batch_size, epochs)


@functools.lru_cache(maxsize=1024)
def _step_weights(n: int, batch_size: int, epochs: int) -> np.ndarray:
    """The ``weight`` of :func:`minibatch_schedule`, computed once per size."""
    steps_per_epoch = math.ceil(n / batch_size)
    real = np.arange(steps_per_epoch * batch_size).reshape(steps_per_epoch, batch_size) < n
    weight = np.tile(real / real.sum(axis=1, keepdims=True), (epochs, 1)).astype(np.float32)
    weight.flags.writeable = False
    return weight


@dataclass
class AllSamples:
    """Every client's samples in one pair of arrays, client after client.

    Client ``c``'s samples are rows ``starts[c] : starts[c] + sizes[c]`` of
    ``x`` and ``y``, so that the minibatches of many jobs are gathered with one
    indexing operation.
    """

    x: np.ndarray
    y: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, datasets: Sequence[AsyncDataset]) -> "AllSamples":
        """The datasets' samples together: the array they are slices of, when they are
        consecutive slices of one (as :func:`~fedasync_lib.core.data.split_rows` makes
        them), so that nothing is copied; otherwise a copy."""
        sizes = np.array([len(d) for d in datasets], dtype=np.intp)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return cls(_joined([d.x for d in datasets], starts),
                   _joined([d.y for d in datasets], starts), starts, sizes)


def _joined(parts: List[np.ndarray], starts: np.ndarray) -> np.ndarray:
    """``np.concatenate(parts)``, or the array the parts are consecutive row slices of."""
    base = parts[0].base  # the array a view was sliced from (None if not a view)
    if isinstance(base, np.ndarray) and base.flags.c_contiguous and len(base):
        address = base.__array_interface__["data"][0]
        row = base[0].nbytes
        if (sum(len(p) for p in parts) == len(base)
                and all(p.base is base and p.__array_interface__["data"][0] == address + start * row
                        for p, start in zip(parts, starts.tolist()))):
            return base
    return np.concatenate(parts)


@dataclass
class JobSteps:
    """The minibatches of ``K`` jobs, step-major, so that step ``s`` is the slice ``[s]``,
    and each job's client data, to report the trained model's loss on.

    x: ``(S, K, B, *sample_shape)`` inputs; y: ``(S, K, B)`` labels;
    weight: ``(S, K, B)``, ``1 / b`` for the ``b`` real samples of a step, 0
    for padding. ``S`` is the most steps of any job: a job with fewer steps
    is padded with weight-0 steps, which leave its parameters unchanged
    (plain SGD: zero gradient, zero step).
    own_x: ``(K, N, *sample_shape)`` and own_y: ``(K, N)``: each job's client
    samples, each once, in the client's order; ``N`` is the most samples of any
    of the ``K`` clients, and a smaller client's rows are padded with its
    first sample. own: ``(K, N)``, 1 for a real sample, 0 for padding.
    """

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    own_x: np.ndarray
    own_y: np.ndarray
    own: np.ndarray

    @classmethod
    def gather(cls, jobs: Sequence[LocalJob], samples: "AllSamples",
               config: AsyncConfig) -> "JobSteps":
        """Draw each job's schedule (its own shuffle stream), gather its minibatches
        and its client's samples."""
        clients = np.array([j.client_id for j in jobs])
        sizes, starts = samples.sizes[clients], samples.starts[clients]
        # A minibatch larger than the largest client's data is that client's whole data:
        # the same steps, without padding rows that would only cost memory and time.
        B = min(config.batch_size, int(sizes.max()))
        schedules = [
            minibatch_schedule(int(n), B, config.local_epochs,
                               seeding.rng(config.seed, "local-shuffle", j.job_id))
            for j, n in zip(jobs, sizes)
        ]
        S = max(len(idx) for idx, _ in schedules)
        # Row of every sample of every step in samples.x; padding steps take the
        # job's sample 0 with weight 0.
        rows = np.zeros((S, len(jobs), B), dtype=np.intp)
        weight = np.zeros((S, len(jobs), B), dtype=np.float32)
        for k, (idx, w) in enumerate(schedules):
            rows[: len(idx), k] = idx
            weight[: len(w), k] = w
        rows += starts[:, None]  # a row of the client's data -> a row of samples.x
        # Each client's rows in its own order, padded with its first row.
        position = np.arange(sizes.max())
        own = position < sizes[:, None]  # (K, N)
        own_rows = starts[:, None] + np.where(own, position, 0)
        x, y = _rows(samples, rows)
        own_x, own_y = _rows(samples, own_rows)
        return cls(x, y, weight, own_x, own_y, own.astype(np.float32))


def _rows(samples: AllSamples, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``samples.x[rows]`` and ``samples.y[rows]``, shaped ``(*rows.shape, *sample_shape)``."""
    flat = rows.reshape(-1)
    return (np.take(samples.x, flat, axis=0).reshape(*rows.shape, *samples.x.shape[1:]),
            np.take(samples.y, flat).reshape(rows.shape))


class LocalTrainer:
    """Trains a batch of jobs on the clients' ``datasets`` with ``config``'s SGD settings.

    ``train(jobs)`` returns, per job, its new state and the mean loss of that
    new state on the client's own data. Subclasses implement ``_train``.
    """

    name = "local SGD"
    #: At most this many jobs are trained in one batched computation: a larger
    #: batch is cut into chunks, which bounds memory (1,000 jobs started at once
    #: would need about 300 MB of minibatches) and changes no result.
    max_batch = 128

    def __init__(self, datasets: Sequence[AsyncDataset], config: AsyncConfig):
        self.datasets = list(datasets)
        self.config = config
        self.samples = AllSamples.of(self.datasets)

    def train(self, jobs: List[LocalJob]) -> List[Tuple["State", float]]:
        results: List[Tuple["State", float]] = []
        for i in range(0, len(jobs), self.max_batch):
            chunk = jobs[i: i + self.max_batch]
            # Each job's state has its own memory (_train's contract), so that a job whose
            # update arrives late does not keep the whole batch's arrays alive.
            results += self._train(chunk, JobSteps.gather(chunk, self.samples, self.config))
        return results

    def _train(self, jobs: List[LocalJob], steps: JobSteps) -> List[Tuple["State", float]]:
        """Per job: its new state (arrays of its own, not views into the batch's) and its loss."""
        raise NotImplementedError


def mean_over_own_samples(per_sample, own) -> List[float]:
    """Each job's mean of ``per_sample`` losses ``(K, N)`` over its client's samples:
    those where ``own`` (:attr:`JobSteps.own`) is 1 (numpy arrays, or tensors)."""
    return ((per_sample * own).sum(1) / own.sum(1)).tolist()


def local_trainer(model, datasets: Sequence[AsyncDataset], config: AsyncConfig, *,
                  loss: Optional["Loss"] = None, training: str = "auto") -> LocalTrainer:
    """The trainer for ``model``: a built-in model (``None``: the built-in MLP), or any
    ``torch.nn.Module``.

    ``training="auto"`` (or ``"hand-written"``) trains a built-in model with its gradients
    written out in numpy, with its own loss or the built-in one that ``loss`` names; a
    module trains through ``torch.func`` (``"auto"`` or ``"torch.func"``), with ``loss`` a
    per-sample callable. To train a built-in model through ``torch.func``, give its
    ``to_module()`` (:func:`fedasync_lib.runner.run` does that for ``training="torch.func"``).
    """
    from .model import AsyncModel, is_builtin

    if training not in TRAINING_PATHS:
        raise ValueError(f"training={training!r} is invalid: expected one of "
                         f"{', '.join(map(repr, TRAINING_PATHS))}")
    if is_builtin(model):
        if training == "torch.func":
            raise ValueError("training='torch.func' needs a torch.nn.Module: give the built-in "
                             "model's to_module()")
        from .training_dense import DenseTrainer
        return DenseTrainer(model if model is not None else AsyncModel(config), datasets,
                            config, loss=loss)
    if training == "hand-written":
        raise ValueError(f"training='hand-written' has gradients for the built-in models only, "
                         f"not {type(model).__name__}: use training='torch.func' or 'auto'")
    from .training_func import FuncTrainer
    return FuncTrainer(model, datasets, config, loss=loss)


@dataclass
class LazyTrainer:
    """Trains submitted jobs only when a result is asked for, in one batch.

    ``submit(job)`` records a job; ``result(job)`` returns its trained state,
    training it together with every other submitted job not trained yet.
    Jobs still in flight when a run ends are never trained at all.
    """

    trainer: LocalTrainer
    _waiting: Dict[int, LocalJob] = field(default_factory=dict)
    _done: Dict[int, Tuple["State", float]] = field(default_factory=dict)
    batches: List[int] = field(default_factory=list)  # jobs per batch, for inspection

    def submit(self, job: LocalJob) -> None:
        self._waiting[job.job_id] = job

    def cancel(self, job: LocalJob) -> None:
        """Forget ``job``: it is not trained, or its result is dropped."""
        self._waiting.pop(job.job_id, None)
        self._done.pop(job.job_id, None)

    def result(self, job: LocalJob) -> Tuple["State", float]:
        if job.job_id not in self._done:
            if job.job_id not in self._waiting:
                raise KeyError(f"job {job.job_id} was never submitted")
            pending = list(self._waiting.values())
            self._waiting.clear()
            outputs = self.trainer.train(pending)
            self._done.update({j.job_id: out for j, out in zip(pending, outputs)})
            self.batches.append(len(pending))
        return self._done.pop(job.job_id)
