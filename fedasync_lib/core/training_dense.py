"""Batched local SGD of the built-in models (numpy), with the gradients of :mod:`.dense`.

Every job in flight starts from its own state; their layers are stacked along a leading job
dimension ``K`` (``A_l = [W_l^T; b_l]``, shape ``(K, in + 1, out)``), and each SGD step of all
jobs is a few ``np.matmul`` calls (:func:`fedasync_lib.core.dense.sgd_steps`). A step of a
small model costs what its operations' fixed overheads cost, far more than its arithmetic, so
one batched operation for ``K`` jobs is about ``K`` times cheaper than ``K`` separate ones.
``tests/test_training.py`` checks a job trained here against ``torch.optim.SGD`` with
autograd, from the same state and minibatches.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from . import dense
from .config import AsyncConfig
from .data import AsyncDataset
from .model import DenseModel, State, frozen
from .training import JobSteps, LocalJob, LocalTrainer, mean_over_own_samples


class DenseTrainer(LocalTrainer):
    """Batched local SGD of a built-in ``model`` (see the module docstring), with the model's
    own loss or the built-in loss that ``loss`` names."""

    name = "hand-written gradients (numpy)"

    def __init__(self, model: DenseModel, datasets: Sequence[AsyncDataset], config: AsyncConfig,
                 loss: Optional[str] = None):
        if loss is not None and not isinstance(loss, str):
            raise ValueError(f"loss={loss!r} is invalid for the built-in {type(model).__name__}: "
                             f"expected the name of a built-in loss, one of "
                             f"{', '.join(map(repr, dense.LOSSES))} (a torch loss trains a "
                             "torch.nn.Module)")
        super().__init__(datasets, config)
        self.model = model
        self.loss = dense.check_loss(loss) if loss is not None else model.loss
        for i, data in enumerate(self.datasets):
            if data.x.ndim != 2 or data.x.shape[1] != model.sizes[0]:
                raise ValueError(
                    f"client {i}'s x has shape {tuple(data.x.shape)}, but the built-in "
                    f"{type(model).__name__} takes (n, {model.sizes[0]}) inputs")

    def _train(self, jobs: List[LocalJob], steps: JobSteps) -> List[Tuple[State, float]]:
        classes = self.model.sizes[-1]
        weights = dense.stack([j.base_state for j in jobs], self.model.layers)
        dense.sgd_steps(weights, dense.with_ones(steps.x), dense.one_hot_t(steps.y, classes),
                        steps.weight, self.config.learning_rate, self.loss)
        # The loss each client reports: its trained model on all its data.
        per_sample = dense.sample_losses(dense.scores(weights, dense.with_ones(steps.own_x)),
                                         steps.own_y, self.loss)
        mean_loss = mean_over_own_samples(per_sample.astype(np.float64), steps.own)
        return [(frozen(dense.unstack(weights, self.model.layers, k)), mean_loss[k])
                for k in range(len(jobs))]
