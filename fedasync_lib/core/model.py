"""The built-in models, and how the server evaluates any model from its state.

    AsyncModel:   scores = W2 relu(W1 x + b1) + b2      (the two-layer perceptron)
    LinearModel:  scores = W x + b                      (logistic regression, least squares)

Both are numpy (:mod:`fedasync_lib.core.dense` holds their formulas), so a run of a
built-in model needs no torch. Any ``torch.nn.Module`` works too (notebook 7): torch is
imported only when one is given.

The server keeps the model as a *state*: a dict from parameter name to array, numpy for a
built-in model and torch tensors for a module, with the names and shapes of
``nn.Module.state_dict()``. States are never changed in place: aggregation builds a new
dict, so a client that started from an older version still holds exactly the arrays it was
handed. A built-in model's arrays are read-only, so that an accidental ``+=`` fails at once.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from . import dense, seeding
from .config import AsyncConfig

#: A model's parameters by name: numpy arrays for a built-in model, tensors for a module.
State = Dict[str, Any]
#: A per-sample loss: the name of a built-in one (:data:`~fedasync_lib.core.dense.LOSSES`) for
#: a built-in model; for a module, a callable (output, labels) -> one loss per sample, such as
#: ``nn.CrossEntropyLoss(reduction="none")``.
Loss = Union[str, Callable[[Any, Any], Any]]

# Parameter names in the state dict of AsyncModel.
W1, B1, W2, B2 = "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"


def frozen(state: State) -> State:
    """``state`` with every numpy array made read-only (in place: the dict is returned)."""
    for value in state.values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return state


class DenseModel:
    """A built-in model: dense layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with ReLU
    between, named ``layers`` (a (weight, bias) pair of state names per layer).

    Weights are drawn as PyTorch's ``nn.Linear`` draws them, under ``seed`` with numpy's
    generator (never a global random state). ``loss`` is the model's default per-sample
    loss, one of :data:`~fedasync_lib.core.dense.LOSSES`.
    """

    def __init__(self, sizes: List[int], layers: List[Tuple[str, str]], seed: int,
                 loss: str = "cross_entropy"):
        if len(layers) != len(sizes) - 1:
            raise ValueError(f"{len(layers)} layer names for {len(sizes) - 1} layers")
        for name, size in zip(("in_features", *["hidden"] * (len(sizes) - 2), "num_classes"), sizes):
            if not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"{name}={size!r} is invalid: expected a whole number >= 1")
        self.sizes = [int(s) for s in sizes]
        self.layers = list(layers)
        self.loss = dense.check_loss(loss)
        gen = seeding.rng(seed, "model-init")
        self._state: State = {}
        for (w, b), fan_in, fan_out in zip(self.layers, self.sizes[:-1], self.sizes[1:]):
            self._state[w], self._state[b] = dense.init_layer(fan_in, fan_out, gen)
        frozen(self._state)

    def state_dict(self) -> State:
        """The parameters (read-only arrays; a new dict)."""
        return dict(self._state)

    def state(self) -> State:
        """The parameters, as the server stores them."""
        return self.state_dict()

    def num_parameters(self) -> int:
        return sum(v.size for v in self._state.values())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The class scores of the rows of ``x``."""
        return scores_of(self._state, np.asarray(x, dtype=np.float32), self)

    def to_module(self):
        """The same model as a ``torch.nn.Module`` with the same weights (needs torch)."""
        import torch
        import torch.nn as nn

        linears = [nn.Linear(i, o) for i, o in zip(self.sizes[:-1], self.sizes[1:])]
        parts: List[nn.Module] = []
        for k, lin in enumerate(linears):
            parts += [lin, nn.ReLU()] if k < len(linears) - 1 else [lin]
        module = nn.Sequential(*parts)
        names = [f"{2 * k}.{p}" for k in range(len(linears)) for p in ("weight", "bias")]
        values = [self._state[n] for pair in self.layers for n in pair]
        module.load_state_dict({n: torch.tensor(np.array(v)) for n, v in zip(names, values)})
        return module

    def __repr__(self) -> str:
        return f"{type(self).__name__}({' -> '.join(map(str, self.sizes))}, loss={self.loss!r})"


class AsyncModel(DenseModel):
    """The built-in MLP ``feature_dim -> hidden_dim -> num_classes`` with ReLU, drawn under
    the config's seed."""

    def __init__(self, config: AsyncConfig):
        super().__init__([config.feature_dim, config.hidden_dim, config.num_classes],
                         [(W1, B1), (W2, B2)], config.seed)


class LinearModel(DenseModel):
    """``scores = W x + b`` on ``(n, in_features)`` inputs: multinomial logistic regression
    with ``loss="cross_entropy"``, least squares with ``loss="squared_error"`` (a quadratic in
    the weights: notebook 5)."""

    def __init__(self, in_features: int = 64, num_classes: int = 10, seed: int = 0,
                 loss: str = "cross_entropy"):
        super().__init__([in_features, num_classes], [("linear.weight", "linear.bias")], seed,
                         loss)


def is_builtin(model: Any) -> bool:
    """True for a built-in (numpy) model, and for ``None`` (the built-in MLP)."""
    return model is None or isinstance(model, DenseModel)


def scores_of(state: State, x: np.ndarray, model: DenseModel) -> np.ndarray:
    """A built-in model's class scores ``(n, C)`` for ``x (n, in)``, from ``state``."""
    weights = dense.stack([state], model.layers)
    return dense.scores(weights, dense.with_ones(x[None]))[0]


def logits(state: State, x: Any, model: Any) -> Any:
    """The model's forward pass on ``x``, computed from a state dict: numpy for a built-in
    model, ``torch.func.functional_call`` for a module."""
    if isinstance(model, DenseModel):
        return scores_of(state, x, model)
    import torch

    return torch.func.functional_call(model, state, (torch.as_tensor(x),))


def evaluate(state: State, x: Any, y: Any, model: Any, loss: Optional[Loss] = None
             ) -> Tuple[float, float]:
    """(accuracy, mean loss) of ``state`` on ``(x, y)``, with the run's loss: for a built-in
    model the loss's name (its own by default), for a module a per-sample callable
    (cross-entropy by default).

    A state with non-finite parameters gives (nan, nan): the accuracy of a diverged model
    is not a number worth plotting.
    """
    if isinstance(model, DenseModel):
        out = scores_of(state, x, model)
        if not np.isfinite(out).all():
            return float("nan"), float("nan")
        losses = dense.sample_losses(out, y, loss or model.loss)
        return float((out.argmax(axis=1) == y).mean()), float(losses.mean(dtype=np.float64))
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        xt, yt = torch.as_tensor(x), torch.as_tensor(y)
        out = logits(state, xt, model)
        mean_loss = (F.cross_entropy(out, yt) if loss is None else loss(out, yt).mean()).item()
        if not torch.isfinite(out).all():
            return float("nan"), float("nan")
        accuracy = (out.argmax(dim=1) == yt).float().mean().item()
    return accuracy, mean_loss
