"""The fast path: batched local SGD of the built-in MLP, gradients written out by hand.

For one minibatch with one-hot labels ``Y`` (rows of ``x`` are samples) and
sample weights ``w`` (``1/b`` for each of its ``b`` real samples, 0 for the
padding that fills a short minibatch up to the batch size), the model and the
gradients of its mean cross-entropy ``L = sum_i w_i CE(p_i, Y_i)`` are

    z1 = x W1^T + b1,   h = relu(z1),   z2 = h W2^T + b2,   p = softmax(z2)
    g2 = (p - Y) * w                              dL/dz2 (w scales each row)
    dW2 = g2^T h,       db2 = sum_rows(g2)
    g1 = (g2 W2) * [z1 > 0]                       dL/dz1
    dW1 = g1^T x,       db1 = sum_rows(g1)

Two bookkeeping tricks make a step few tensor operations, which is what a
step of a small model costs on a CPU (each operation has a fixed overhead of
a few microseconds, far more than its arithmetic):

* **Bias as a weight.** A column of ones appended to ``x`` (and to ``h``)
  turns ``x W1^T + b1`` into one product ``[x, 1] A1`` with
  ``A1 = [W1^T; b1]``, and ``db1`` into the last row of ``[x, 1]^T g1``.
  Layer 2 is kept as ``A2 = [W2, b2]`` of shape ``(C, H + 1)``.
* **In-place updates.** ``A -= lr * (u^T v)`` is one ``baddbmm_``.

Layer 2 works on transposed ``(C, B)`` matrices, so that the softmax runs
over classes along dimension 1, with the samples as the long, contiguous
dimension: ``torch.softmax`` is several times faster that way round on a CPU.

Every tensor has a leading job dimension ``K``: one ``bmm`` multiplies the
matrices of all jobs in flight. ``tests/test_training.py`` checks this path
against ``torch.optim.SGD`` with autograd and against the generic
``torch.func`` path of :mod:`fedasync_lib.core.training_func`.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F

from .config import AsyncConfig
from .data import AsyncDataset
from .model import B1, B2, W1, W2, State
from .training import JobSteps, LocalJob, LocalTrainer, mean_over_own_samples

# grad * [h > 0] in one operation: the backward of ReLU that autograd itself uses.
_relu_backward = torch.ops.aten.threshold_backward


class MLPTrainer(LocalTrainer):
    """Batched local SGD of :class:`~fedasync_lib.core.model.AsyncModel` (see the module docstring)."""

    name = "hand-written MLP gradients"

    def __init__(self, datasets: Sequence[AsyncDataset], config: AsyncConfig):
        super().__init__(datasets, config)
        for i, data in enumerate(self.datasets):
            if data.x.ndim != 2 or data.x.shape[1] != config.feature_dim:
                raise ValueError(
                    f"client {i}'s x has shape {tuple(data.x.shape)}, but the built-in MLP takes "
                    f"(n, {config.feature_dim}) inputs (config.feature_dim)")

    def _train(self, jobs: List[LocalJob], steps: JobSteps) -> List[Tuple[State, float]]:
        # inference_mode: no autograd bookkeeping at all, which makes each of the many
        # small operations cheaper than under no_grad. The trained states leave it as
        # copies (LocalTrainer.train), ordinary tensors.
        with torch.inference_mode():
            return self._sgd(jobs, steps)

    def _sgd(self, jobs: List[LocalJob], steps: JobSteps) -> List[Tuple[State, float]]:
        cfg = self.config
        lr, C = cfg.learning_rate, cfg.num_classes
        K, B, D = len(jobs), steps.x.shape[2], steps.x.shape[-1]
        H = jobs[0].base_state[B1].shape[0]

        # The data of every step: inputs with a column of ones; sample weights (1/b,
        # or 0 for padding); minus the labels as one-hot columns times the weights.
        xs = F.pad(steps.x, (0, 1), value=1.0)  # (S, K, B, D + 1)
        weight = steps.weight.unsqueeze(2)  # (S, K, 1, B)
        S = len(xs)
        minus_y_weighted = torch.zeros(S, K, C, B).scatter_(  # -weight at each sample's label
            2, steps.y.unsqueeze(2), weight.neg())  # (S, K, C, B)

        # The jobs' weights: A1 = [W1^T; b1] (K, D + 1, H), A2 = [W2, b2] (K, C, H + 1).
        A1 = torch.cat([torch.stack([j.base_state[W1] for j in jobs]).transpose(1, 2),
                        torch.stack([j.base_state[B1] for j in jobs]).unsqueeze(1)], dim=1)
        A2 = torch.cat([torch.stack([j.base_state[W2] for j in jobs]),
                        torch.stack([j.base_state[B2] for j in jobs]).unsqueeze(2)], dim=2)
        W2_view = A2[:, :, :H]  # a view: it follows A2's in-place updates
        h = torch.ones(K, B, H + 1)  # [relu(z1), 1]: the last column stays 1
        h_relu, h_t = h[:, :, :H], h.transpose(1, 2)

        for x, minus_y_w, w in zip(xs, minus_y_weighted, weight):  # one SGD step of every job
            torch.clamp_min(torch.bmm(x, A1), 0.0, out=h_relu)  # h = relu(z1)
            z2_t = torch.bmm(A2, h_t)  # (K, C, B)
            g2_t = torch.addcmul(minus_y_w, torch.softmax(z2_t, dim=1), w)  # (p - Y) * weight
            g1 = _relu_backward(torch.bmm(g2_t.transpose(1, 2), W2_view), h_relu, 0.0)
            A2.baddbmm_(g2_t, h, alpha=-lr)
            A1.baddbmm_(x.transpose(1, 2), g1, alpha=-lr)

        # The loss each client reports: its trained model on all its data (its
        # samples without the column of ones, so the biases are added apart).
        hidden = torch.baddbmm(A1[:, D:], steps.own_x, A1[:, :D]).clamp_min_(0.0)  # (K, N, H)
        z2_t = torch.baddbmm(A2[:, :, H:], W2_view, hidden.transpose(1, 2))  # (K, C, N)
        per_sample = F.cross_entropy(z2_t, steps.own_y, reduction="none")  # (K, N)
        mean_loss = mean_over_own_samples(per_sample, steps.own)

        # Back to the state dict's names and shapes (views; LocalTrainer.train copies them).
        w1 = A1[:, :D].transpose(1, 2).unbind()
        b1, w2, b2 = A1[:, D].unbind(), A2[:, :, :H].unbind(), A2[:, :, H].unbind()
        return [({W1: w1[k], B1: b1[k], W2: w2[k], B2: b2[k]}, mean_loss[k]) for k in range(K)]
