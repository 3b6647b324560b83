"""The built-in models in numpy: dense layers, their losses, and their gradients written out by hand.

A built-in model is a stack of dense layers with ReLU between them,

    z_1 = x W_1^T + b_1,  a_1 = relu(z_1),  ...,  z_L = a_{L-1} W_L^T + b_L  (the class scores)

* the two-layer perceptron (:class:`~fedasync_lib.core.model.AsyncModel`, one hidden layer);
* a linear model (:class:`~fedasync_lib.core.model.LinearModel`, no hidden layer): multinomial
  logistic regression with cross-entropy, least squares with the squared error.

Two per-sample losses, with ``Y`` the one-hot label and ``p = softmax(z_L)``:

    cross_entropy:  l = log sum_c exp(z_c) - z_y       dl/dz_L = p - Y
    squared_error:  l = ||z_L - Y||^2 / 2              dl/dz_L = z_L - Y

For a minibatch with sample weights ``w`` (``1/b`` for each of its ``b`` real samples, 0 for
the padding of a short minibatch) the loss is ``L = sum_i w_i l_i`` and backpropagation gives

    g_L = (dl/dz_L) * w                                 (w scales each row)
    dW_l = g_l^T a_{l-1},   db_l = sum_rows(g_l)        (a_0 = x)
    g_{l-1} = (g_l W_l) * [z_{l-1} > 0]

**Bias as a weight.** A column of ones appended to ``x`` and to each hidden ``a`` turns
``a W^T + b`` into one product ``[a, 1] A`` with ``A = [W^T; b]`` of shape ``(in + 1, out)``,
and ``db`` into the last row of ``[a, 1]^T g``. Every array has a leading job dimension ``K``:
one ``np.matmul`` multiplies the matrices of all jobs in flight. These functions are the one
implementation of the forward pass, the losses and the gradients: local SGD
(:mod:`fedasync_lib.core.training_dense`), evaluation and the gradient norm of notebook 5 all
call them. ``tests/test_training.py`` checks them against ``torch.optim.SGD`` with autograd.

**Classes first for the softmax.** The last layer's scores are computed transposed,
``(K, C, B)``, so that the softmax's max and sum run over a short axis with the samples
contiguous (several times faster in numpy than over a last axis ``C`` long; see
:func:`forward`).

Nothing here imports torch, so the simulator runs where torch does not exist (in the browser,
on Pyodide). The arithmetic is float32, as it was in the torch engine before.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: The per-sample losses that built-in models have gradients for.
LOSSES = ("cross_entropy", "squared_error")

State = Dict[str, np.ndarray]


def check_loss(loss: str) -> str:
    """``loss`` if it is one of :data:`LOSSES`; else ``ValueError``."""
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is invalid for a built-in model: expected one of "
                         f"{', '.join(map(repr, LOSSES))}")
    return loss


def init_layer(fan_in: int, fan_out: int, gen: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` of one dense layer, as PyTorch's ``nn.Linear`` draws them: both uniform on
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` (Kaiming-uniform with ``a = sqrt(5)``), float32."""
    bound = 1.0 / np.sqrt(fan_in)
    weight = gen.uniform(-bound, bound, size=(fan_out, fan_in)).astype(np.float32)
    bias = gen.uniform(-bound, bound, size=fan_out).astype(np.float32)
    return weight, bias


def stack(states: Sequence[State], layers: Sequence[Tuple[str, str]], dtype=np.float32) -> List[np.ndarray]:
    """The layers of ``K`` states as ``A_l = [W_l^T; b_l]``, each ``(K, in + 1, out)``, a fresh copy."""
    return [np.concatenate([np.stack([s[w] for s in states]).transpose(0, 2, 1),
                            np.stack([s[b] for s in states])[:, None, :]], axis=1).astype(dtype)
            for w, b in layers]


def unstack(weights: Sequence[np.ndarray], layers: Sequence[Tuple[str, str]], k: int) -> State:
    """Job ``k``'s state from the stacked ``A_l`` of :func:`stack` (contiguous copies)."""
    state: State = {}
    for A, (w, b) in zip(weights, layers):
        state[w] = np.ascontiguousarray(A[k, :-1].T)
        state[b] = A[k, -1].copy()
    return state


def with_ones(x: np.ndarray) -> np.ndarray:
    """``[x, 1]``: ``x`` with a column of ones appended along the last axis."""
    out = np.empty((*x.shape[:-1], x.shape[-1] + 1), dtype=x.dtype)
    out[..., :-1] = x
    out[..., -1] = 1
    return out


def forward(weights: Sequence[np.ndarray], x1: np.ndarray,
            hidden: Optional[Sequence[np.ndarray]] = None) -> Tuple[List[np.ndarray], np.ndarray]:
    """Every layer's input ``[a_0, a_1, ..., a_{L-1}]`` and the scores, transposed.

    ``x1 = a_0`` is ``(K, B, in + 1)`` with its column of ones, and so is each hidden ``a_l``.
    The scores come as ``z_L^T``, ``(K, C, B)``: classes along axis 1 and samples along the
    last, contiguous axis, where numpy's max and sum over the classes (the softmax) are
    several times faster than over a last axis only ``C`` long. ``hidden``: arrays to hold
    the hidden ``a_l`` (their last column already 1), reused from step to step; by default
    new ones."""
    acts = [x1]
    for layer, A in enumerate(weights[:-1]):
        a = (hidden[layer] if hidden is not None
             else np.ones((*x1.shape[:-1], A.shape[-1] + 1), dtype=x1.dtype))
        z = a[..., :-1]
        np.matmul(acts[-1], A, out=z)
        np.maximum(z, 0, out=z)
        acts.append(a)
    return acts, np.matmul(weights[-1].transpose(0, 2, 1), acts[-1].transpose(0, 2, 1))


def one_hot(y: np.ndarray, classes: int, dtype=np.float32) -> np.ndarray:
    """``Y[..., c] = 1`` where ``y == c``: labels ``(...,)`` to ``(..., classes)``."""
    return (y[..., None] == np.arange(classes)).astype(dtype)


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(z - max) / sum exp(z - max)`` along ``axis`` (the classes), in place of ``z``."""
    z -= z.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def sample_losses(scores: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """One loss per sample (see the module docstring): ``scores (..., C)``, ``y (...)``."""
    if loss == "cross_entropy":
        top = scores.max(axis=-1, keepdims=True)
        log_norm = np.log(np.exp(scores - top).sum(axis=-1)) + top[..., 0]
        return log_norm - np.take_along_axis(scores, y[..., None], axis=-1)[..., 0]
    return 0.5 * ((scores - one_hot(y, scores.shape[-1], scores.dtype)) ** 2).sum(axis=-1)


def score_gradient(scores_t: np.ndarray, target_t: np.ndarray, loss: str) -> np.ndarray:
    """``dl/dz_L`` per sample, ``softmax(z) - Y`` or ``z - Y``, from the transposed scores
    ``(K, C, B)`` and one-hot labels ``target_t`` laid out alike (in place of ``scores_t``)."""
    if loss == "cross_entropy":
        softmax(scores_t, axis=1)
    scores_t -= target_t
    return scores_t


def gradients(weights: Sequence[np.ndarray], x1: np.ndarray, target_t: np.ndarray,
              w: np.ndarray, loss: str, hidden: Optional[Sequence[np.ndarray]] = None
              ) -> List[np.ndarray]:
    """``dL/dA_l`` for every layer, ``L = sum_i w_i l_i`` over the samples of each job:
    inputs ``x1 (K, B, in + 1)``, one-hot labels transposed ``target_t (K, C, B)`` (see
    :func:`forward`), sample weights ``w (K, B)``; ``hidden`` as in :func:`forward`."""
    acts, scores_t = forward(weights, x1, hidden)
    g_t = score_gradient(scores_t, target_t, loss)  # (K, C, B)
    g_t *= w[:, None, :]
    last = len(weights) - 1
    grads: List[np.ndarray] = [None] * len(weights)  # type: ignore[list-item]
    grads[last] = np.matmul(acts[last].transpose(0, 2, 1), g_t.transpose(0, 2, 1))
    if last:  # back through the last layer's weights (not its bias): (K, B, hidden)
        g = np.matmul(g_t.transpose(0, 2, 1), weights[last][:, :-1].transpose(0, 2, 1))
    for layer in range(last - 1, -1, -1):
        a = acts[layer + 1]
        g *= a[..., :-1] > 0  # back through the ReLU
        grads[layer] = np.matmul(acts[layer].transpose(0, 2, 1), g)
        if layer:
            g = np.matmul(g, weights[layer][:, :-1].transpose(0, 2, 1))
    return grads


def sgd_steps(weights: List[np.ndarray], x1: np.ndarray, target_t: np.ndarray, w: np.ndarray,
              lr: float, loss: str) -> None:
    """Plain SGD, in place on the stacked ``weights``: one step ``A_l <- A_l - lr dL/dA_l`` per
    leading entry of ``x1 (S, K, B, in + 1)``, ``target_t (S, K, C, B)`` (one-hot labels,
    transposed as in :func:`forward`), ``w (S, K, B)``.

    The step is the gradient of the loss weighted by ``lr * w`` (the same thing, one
    multiplication fewer per layer). A step whose weights are all 0 (padding) leaves a job
    unchanged."""
    step_weights = w * np.float32(lr)
    K, B = x1.shape[1:3]
    hidden = [np.ones((K, B, A.shape[-1] + 1), dtype=x1.dtype) for A in weights[:-1]]
    for xs, ts, ws in zip(x1, target_t, step_weights):
        for A, g in zip(weights, gradients(weights, xs, ts, ws, loss, hidden)):
            A -= g


def scores(weights: Sequence[np.ndarray], x1: np.ndarray) -> np.ndarray:
    """The class scores ``z_L``, ``(K, B, C)``, for inputs ``x1`` with their column of ones."""
    return forward(weights, x1)[1].transpose(0, 2, 1)


def one_hot_t(y: np.ndarray, classes: int, dtype=np.float32) -> np.ndarray:
    """One-hot labels with the classes before the samples: ``y (..., B)`` to ``(..., C, B)``,
    the layout of :func:`gradients`."""
    return np.ascontiguousarray(np.swapaxes(one_hot(y, classes, dtype), -1, -2))
