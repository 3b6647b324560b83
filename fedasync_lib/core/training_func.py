"""The generic path: batched local SGD of any ``nn.Module`` with ``torch.func``.

The gradient of one job's minibatch loss, as a function of its parameters,

    L(theta; x, y, w) = sum_i w_i * loss(model(theta, x)_i, y_i)

(``w_i = 1/b`` for the ``b`` real samples of the minibatch, 0 for padding, so
``L`` is the minibatch mean) is ``torch.func.grad(L)``. The jobs in flight
each have their own parameters, data and shuffle order; stacking their
parameters along a new leading dimension ``K`` and mapping ``grad(L)`` over it
with ``torch.func.vmap`` gives every job's gradient in one call, and the SGD
step ``theta <- theta - lr * grad`` is then one in-place update per
parameter tensor for all jobs together. ``torch.func.functional_call`` runs
the given module with the stacked parameters in place of its own.

``loss`` is a real ``torch.nn`` loss with ``reduction="none"`` (the default is
``nn.CrossEntropyLoss(reduction="none")``) or any function of ``(output,
target)`` that returns one loss per sample.

What the batched form cannot do, and so refuses with a ``ValueError`` when the
trainer is built: dropout (its random masks would depend on how jobs are
batched), BatchNorm (its batch statistics would count the padding, and its
running statistics are state that SGD does not train), integer state (which
the server cannot average), and weights tied between layers.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.func import functional_call, grad, vmap

from .config import AsyncConfig
from .data import AsyncDataset
from .model import Loss, State
from .training import JobSteps, LocalJob, LocalTrainer, mean_over_own_samples

_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
            nn.FeatureAlphaDropout)


def check_trainable(model: nn.Module) -> None:
    """Raise ``ValueError``, naming the layer, if ``model`` cannot be trained in a batch of jobs."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model={model!r} is invalid: expected a torch.nn.Module")
    for name, module in model.named_modules():
        where = f"model layer {name!r} ({type(module).__name__})" if name else "model"
        if isinstance(module, _DROPOUT) and module.p > 0:
            raise ValueError(f"{where} has dropout p={module.p}: dropout is not supported "
                             "(its random masks would depend on which jobs train together); "
                             "expected p=0 or no dropout layer")
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise ValueError(f"{where} is a BatchNorm layer, which is not supported: its batch "
                             "statistics would count the padding of short minibatches; use "
                             "nn.GroupNorm or nn.LayerNorm instead")
    shared = [n for n, _ in model.named_parameters(remove_duplicate=False)
              if n not in dict(model.named_parameters())]
    if shared:
        raise ValueError(f"model parameter {shared[0]!r} is shared with another layer (tied "
                         "weights), which is not supported: the server would average the two "
                         "names as separate state entries")
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            raise ValueError(f"model state entry {key!r} has dtype {value.dtype}: expected "
                             "floating-point state only (the server averages every entry)")
    if not list(model.parameters()):
        raise ValueError(f"model {type(model).__name__} has no parameters to train")


def per_sample_loss(loss: Optional[Loss]) -> Loss:
    """The loss to use: ``loss``, checked to keep one value per sample, or cross-entropy."""
    if loss is None:
        return nn.CrossEntropyLoss(reduction="none")
    if not callable(loss):
        raise ValueError(f"loss={loss!r} is invalid: expected a callable (output, target) -> "
                         "per-sample losses, such as nn.CrossEntropyLoss(reduction='none')")
    reduction = getattr(loss, "reduction", "none")
    if reduction != "none":
        raise ValueError(f"loss={loss!r} has reduction={reduction!r}: expected reduction='none'. "
                         "The trainer needs one loss per sample, to weight them into each "
                         "minibatch's mean")
    return loss


class FuncTrainer(LocalTrainer):
    """Batched local SGD of any ``model`` with ``torch.func`` (see the module docstring)."""

    name = "torch.func"

    def __init__(self, model: nn.Module, datasets: Sequence[AsyncDataset], config: AsyncConfig,
                 loss: Optional[Loss] = None):
        super().__init__(datasets, config)
        check_trainable(model)
        self.model = model
        self.loss = per_sample_loss(loss)
        state = model.state_dict()
        self.param_names = [n for n, _ in model.named_parameters()]  # trained by SGD
        self.buffer_names = [n for n in state if n not in self.param_names]  # carried along
        self._check_loss_shape()

        def minibatch_loss(params: Dict[str, torch.Tensor], buffers: Dict[str, torch.Tensor],
                           x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return (self.loss(functional_call(model, (params, buffers), (x,)), y) * w).sum()

        def sample_losses(params: Dict[str, torch.Tensor], buffers: Dict[str, torch.Tensor],
                          x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.loss(functional_call(model, (params, buffers), (x,)), y)

        self._grads = vmap(grad(minibatch_loss))  # every job's gradient at once
        self._sample_losses = vmap(sample_losses)

    def _check_loss_shape(self) -> None:
        data = next((d for d in self.datasets if len(d) >= 2), self.datasets[0])
        x, y = torch.as_tensor(data.x[:2]), torch.as_tensor(data.y[:2])
        with torch.no_grad():
            out = self.loss(self.model(x), y)
        if not isinstance(out, torch.Tensor) or out.shape != (len(y),):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"loss={self.loss!r} returned {shape} for a minibatch of {len(y)}: "
                             f"expected one loss per sample, shape ({len(y)},)")

    def _train(self, jobs: List[LocalJob], steps: JobSteps) -> List[Tuple[State, float]]:
        lr = self.config.learning_rate
        params = {n: torch.stack([j.base_state[n] for j in jobs]) for n in self.param_names}
        buffers = {n: torch.stack([j.base_state[n] for j in jobs]) for n in self.buffer_names}
        t = torch.from_numpy  # the steps' arrays as tensors, sharing their memory
        with torch.no_grad():
            for x, y, w in zip(t(steps.x), t(steps.y), t(steps.weight)):  # one SGD step of every job
                for name, g in self._grads(params, buffers, x, y, w).items():
                    params[name].sub_(g, alpha=lr)
            # The loss each client reports: its trained model on all its data.
            per_sample = self._sample_losses(params, buffers, t(steps.own_x), t(steps.own_y))
            mean_loss = mean_over_own_samples(per_sample, t(steps.own))
        trained = {**params, **buffers}
        return [({n: v[k].clone() for n, v in trained.items()}, mean_loss[k])
                for k in range(len(jobs))]
