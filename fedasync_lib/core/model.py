"""The built-in model: a two-layer perceptron (any other ``nn.Module`` works too).

    logits = W2 relu(W1 x + b1) + b2

The server keeps the model as a *state*: a dict from parameter name to
tensor, as ``nn.Module.state_dict()`` gives it, for any model. States are never changed in
place: aggregation builds a new dict, so a client that started from an older
version still holds exactly the tensors it was handed.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import seeding
from .config import AsyncConfig

State = Dict[str, torch.Tensor]
#: A per-sample loss: (model output, labels) -> one loss per sample, such as
#: ``nn.CrossEntropyLoss(reduction="none")``.
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Parameter names in the state dict of AsyncModel.
W1, B1, W2, B2 = "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"


class AsyncModel(nn.Module):
    """MLP ``feature_dim -> hidden_dim -> num_classes`` with ReLU.

    Weights use PyTorch's default initialisation, drawn under the config's
    seed without touching the global random state.
    """

    def __init__(self, config: AsyncConfig):
        super().__init__()
        init_seed = int(seeding.rng(config.seed, "model-init").integers(2**62))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.net = nn.Sequential(
                nn.Linear(config.feature_dim, config.hidden_dim),
                nn.ReLU(),
                nn.Linear(config.hidden_dim, config.num_classes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def state(self) -> State:
        """A detached copy of the parameters, as the server stores them."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()}


def logits(state: State, x: torch.Tensor, model: Optional[nn.Module] = None) -> torch.Tensor:
    """The model's forward pass on ``x``, computed from a state dict.

    ``model`` is the module whose parameters ``state`` holds; ``None`` (or an
    :class:`AsyncModel`) is the built-in MLP, written out here.
    """
    if model is None or type(model) is AsyncModel:
        return F.linear(F.relu(F.linear(x, state[W1], state[B1])), state[W2], state[B2])
    return torch.func.functional_call(model, state, (x,))


def evaluate(state: State, x: torch.Tensor, y: torch.Tensor, model: Optional[nn.Module] = None,
             loss: Optional[Loss] = None) -> Tuple[float, float]:
    """(accuracy, mean loss) of ``state`` on ``(x, y)``: cross-entropy unless ``loss`` is given.

    ``model`` is as in :func:`logits`; ``loss`` gives per-sample losses
    (``reduction="none"``), averaged here. A state with non-finite parameters
    gives (nan, nan): the accuracy of a diverged model is not a number worth
    plotting.
    """
    with torch.no_grad():
        out = logits(state, x, model)
        mean_loss = (F.cross_entropy(out, y) if loss is None else loss(out, y).mean()).item()
        if not torch.isfinite(out).all():
            return float("nan"), float("nan")
        accuracy = (out.argmax(dim=1) == y).float().mean().item()
    return accuracy, mean_loss
