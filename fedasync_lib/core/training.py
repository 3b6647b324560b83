"""Local training: plain minibatch SGD on a client's data, many clients at once.

A client's *job* starts from the server state it was handed, runs
``local_epochs`` epochs of SGD with cross-entropy loss, and returns its new
state. Each epoch shuffles the client's data and cuts it into minibatches of
``batch_size``; the last one may be smaller, as with a ``DataLoader`` that
keeps the remainder.

Why train several jobs at once? On the virtual clock a job's result is
needed only when the job *arrives*. Until then nothing depends on it. So the
server can collect the jobs in flight and train them together, as one
batched computation where every tensor gets a leading job dimension ``K``.
Each job keeps its own weights, data and shuffle order, so the result of
every job is the same as if it had been trained alone; only the number of
Python-level tensor operations drops by a factor of ``K``.

The gradients are written out by hand (two linear layers, ReLU and softmax
cross-entropy). For one minibatch of size ``b`` with one-hot labels ``Y``:

    z1 = x W1^T + b1,   h = relu(z1),   z2 = h W2^T + b2,   p = softmax(z2)
    g2 = (p - Y) / b                              dL/dz2
    dW2 = g2^T h,       db2 = sum_rows(g2)
    g1 = (g2 W2) * [z1 > 0]                       dL/dz1
    dW1 = g1^T x,       db1 = sum_rows(g1)

``tests/test_training.py`` checks them against PyTorch's autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
import torch

from . import seeding
from .data import AsyncDataset
from .model import B1, B2, W1, W2, State


@dataclass
class LocalJob:
    """One round of local training that a client was asked to do."""

    job_id: int  # unique within a run; selects the job's shuffle stream
    client_id: int
    base_version: int  # server version of base_state
    base_state: State
    start_time: float = 0.0  # when the client was handed the model
    arrival_time: float = 0.0  # when its update reaches the server


# softmax and log-softmax over the last dimension, shifted by the max for
# numerical stability. Written out because torch.softmax over a short last
# dimension (10 classes) takes a slow path on CPU: these are about 5x faster.
def softmax(z: torch.Tensor) -> torch.Tensor:
    e = (z - z.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


def log_softmax(z: torch.Tensor) -> torch.Tensor:
    shifted = z - z.amax(dim=-1, keepdim=True)
    return shifted - shifted.exp().sum(dim=-1, keepdim=True).log()


def minibatch_schedule(n: int, batch_size: int, epochs: int,
                       gen: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Indices and per-sample weights of every SGD step of one job.

    Returns ``(idx, weight)``, both of shape ``(steps, batch_size)`` with
    ``steps = epochs * ceil(n / batch_size)``. ``weight`` is ``1 / b`` for the
    ``b`` real samples of a step and 0 for padding, so the weighted sum of
    per-sample losses is the minibatch mean.
    """
    steps_per_epoch = math.ceil(n / batch_size)
    padded = steps_per_epoch * batch_size
    idx_epochs, w_epochs = [], []
    for _ in range(epochs):
        order = np.full(padded, -1, dtype=np.int64)
        order[:n] = gen.permutation(n)
        order = order.reshape(steps_per_epoch, batch_size)
        real = order >= 0
        idx_epochs.append(np.where(real, order, 0))
        w_epochs.append(real / real.sum(axis=1, keepdims=True))
    return np.concatenate(idx_epochs), np.concatenate(w_epochs).astype(np.float32)


def train_jobs(jobs: List[LocalJob], datasets: List[AsyncDataset], *, seed: int,
               learning_rate: float, batch_size: int, local_epochs: int,
               num_classes: int) -> List[Tuple[State, float]]:
    """Run every job's local SGD, all jobs in one batched computation.

    ``datasets[client_id]`` is each client's data. Returns, per job, its new
    state and the mean loss of that new state on the client's own data.
    """
    if not jobs:
        return []
    K = len(jobs)
    schedules = [
        minibatch_schedule(len(datasets[j.client_id]), batch_size, local_epochs,
                           seeding.rng(seed, "local-shuffle", j.job_id))
        for j in jobs
    ]
    steps = [len(idx) for idx, _ in schedules]
    S = max(steps)
    dim = datasets[jobs[0].client_id].x.shape[1]

    # Inputs, one-hot labels and sample weights of every step, step-major:
    # shape (S, K, B, ...), so that step s is the cheap slice X[s]. A job with
    # fewer steps is padded with weight-0 steps, which leave its parameters
    # unchanged (plain SGD: zero gradient, zero step).
    X = torch.zeros(S, K, batch_size, dim)
    Y = torch.zeros(S, K, batch_size, num_classes)
    Wt = torch.zeros(S, K, batch_size, 1)
    for k, (job, (idx, w)) in enumerate(zip(jobs, schedules)):
        data = datasets[job.client_id]
        rows = torch.from_numpy(idx)
        X[: steps[k], k] = data.x[rows]
        Y[: steps[k], k] = torch.nn.functional.one_hot(data.y[rows], num_classes).float()
        Wt[: steps[k], k, :, 0] = torch.from_numpy(w)

    w1 = torch.stack([j.base_state[W1] for j in jobs])  # (K, H, D); stack copies
    b1 = torch.stack([j.base_state[B1] for j in jobs]).unsqueeze(1)  # (K, 1, H)
    w2 = torch.stack([j.base_state[W2] for j in jobs])  # (K, C, H)
    b2 = torch.stack([j.base_state[B2] for j in jobs]).unsqueeze(1)  # (K, 1, C)
    lr = learning_rate

    with torch.no_grad():
        for x, y, w in zip(X, Y, Wt):  # one SGD step of every job
            z1 = torch.baddbmm(b1, x, w1.transpose(1, 2))
            h = z1.clamp_min(0.0)
            z2 = torch.baddbmm(b2, h, w2.transpose(1, 2))
            g2 = (softmax(z2) - y) * w
            g1 = torch.bmm(g2, w2) * (z1 > 0)
            w2.sub_(torch.bmm(g2.transpose(1, 2), h), alpha=lr)
            b2.sub_(g2.sum(dim=1, keepdim=True), alpha=lr)
            w1.sub_(torch.bmm(g1.transpose(1, 2), x), alpha=lr)
            b1.sub_(g1.sum(dim=1, keepdim=True), alpha=lr)

        # The loss each client reports: its trained model on all its data.
        # A job's first epoch visits each of its samples once, so reuse those steps.
        first = [math.ceil(len(datasets[j.client_id]) / batch_size) for j in jobs]
        most = max(first)
        in_first = torch.arange(most).unsqueeze(1) < torch.tensor(first)  # (most, K)
        seen = ((Wt[:most, :, :, 0] > 0) & in_first.unsqueeze(-1)).float()
        x_all = X[:most].transpose(0, 1).flatten(1, 2)  # (K, most * B, D)
        y_all = Y[:most].transpose(0, 1).flatten(1, 2)
        seen = seen.transpose(0, 1).flatten(1, 2)
        z = torch.baddbmm(b2, torch.baddbmm(b1, x_all, w1.transpose(1, 2)).clamp_min(0.0),
                          w2.transpose(1, 2))
        per_sample = -(log_softmax(z) * y_all).sum(-1)
        mean_loss = ((per_sample * seen).sum(1) / seen.sum(1)).tolist()
    b1, b2 = b1.squeeze(1), b2.squeeze(1)
    return [({W1: w1[k], B1: b1[k], W2: w2[k], B2: b2[k]}, mean_loss[k]) for k in range(K)]


@dataclass
class LazyTrainer:
    """Trains submitted jobs only when a result is asked for, in one batch.

    ``submit(job)`` records a job; ``result(job)`` returns its trained state,
    training it together with every other submitted job not trained yet.
    Jobs still in flight when a run ends are never trained at all.
    """

    datasets: List[AsyncDataset]
    seed: int
    learning_rate: float
    batch_size: int
    local_epochs: int
    num_classes: int
    _waiting: Dict[int, LocalJob] = field(default_factory=dict)
    _done: Dict[int, Tuple[State, float]] = field(default_factory=dict)
    batches: List[int] = field(default_factory=list)  # jobs per batch, for inspection

    def submit(self, job: LocalJob) -> None:
        self._waiting[job.job_id] = job

    def result(self, job: LocalJob) -> Tuple[State, float]:
        if job.job_id not in self._done:
            if job.job_id not in self._waiting:
                raise KeyError(f"job {job.job_id} was never submitted")
            pending = list(self._waiting.values())
            self._waiting.clear()
            outputs = train_jobs(pending, self.datasets, seed=self.seed,
                                 learning_rate=self.learning_rate, batch_size=self.batch_size,
                                 local_epochs=self.local_epochs, num_classes=self.num_classes)
            self._done.update({j.job_id: out for j, out in zip(pending, outputs)})
            self.batches.append(len(pending))
        return self._done.pop(job.job_id)

