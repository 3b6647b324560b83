"""Staleness weighting functions s(t).

An update computed from server version ``v_base`` that arrives when the
server is at version ``v_now`` has staleness ``t = v_now - v_base`` (0 means
no other update landed while the client trained). A staleness function maps
t >= 0 to a weight in (0, 1] that shrinks the update's mixing rate:

    alpha_t = mixing_alpha * s(t)                    (FedAsync, Xie et al. 2019)

The first three are the families of Xie, Koyejo and Gupta (2019),
"Asynchronous Federated Optimization", Section 5; the exponential rule is
the one the original tutorial used.

Each factory returns a function that accepts an int or a numpy array of ints
and returns a float or an array of floats of the same shape.
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np

from ..core.config import AsyncConfig

Staleness = Union[int, np.ndarray]
StalenessFn = Callable[[Staleness], Union[float, np.ndarray]]


def _as_staleness(t: Staleness) -> np.ndarray:
    if type(t) is int:  # the common case, one update's staleness: no array needed
        if t < 0:
            raise ValueError(f"staleness={t!r} is invalid: expected integers >= 0")
        return np.float64(t)
    arr = np.asarray(t)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise ValueError(f"staleness={t!r} is invalid: expected integers >= 0")
    if np.any(arr < 0):
        raise ValueError(f"staleness={t!r} is invalid: expected integers >= 0")
    return arr.astype(np.float64)


def _result(values: np.ndarray, t: Staleness) -> Union[float, np.ndarray]:
    return float(values) if np.ndim(t) == 0 else values


def constant() -> StalenessFn:
    """s(t) = 1: every update counts fully, however stale."""

    def s(t: Staleness) -> Union[float, np.ndarray]:
        return _result(np.ones_like(_as_staleness(t)), t)

    s.__name__ = "constant"
    return s


def polynomial(a: float) -> StalenessFn:
    """s(t) = (1 + t)^(-a), a >= 0. Smooth decay; a = 0 is constant."""
    if not (np.isfinite(a) and a >= 0):
        raise ValueError(f"a={a!r} is invalid: expected a finite number >= 0")

    def s(t: Staleness) -> Union[float, np.ndarray]:
        return _result((1.0 + _as_staleness(t)) ** (-a), t)

    s.__name__ = f"polynomial(a={a:g})"
    return s


def hinge(a: float, b: int) -> StalenessFn:
    """s(t) = 1 if t <= b, else 1 / (a (t - b) + 1).

    Updates up to ``b`` versions old count fully; older ones decay like 1/t
    with slope ``a``.
    """
    if not (np.isfinite(a) and a >= 0):
        raise ValueError(f"a={a!r} is invalid: expected a finite number >= 0")
    if not (isinstance(b, (int, np.integer)) and b >= 0):
        raise ValueError(f"b={b!r} is invalid: expected an integer >= 0")

    def s(t: Staleness) -> Union[float, np.ndarray]:
        arr = _as_staleness(t)
        over = np.maximum(arr - b, 0.0)
        return _result(1.0 / (a * over + 1.0), t)

    s.__name__ = f"hinge(a={a:g}, b={b})"
    return s


def exponential(decay: float) -> StalenessFn:
    """s(t) = decay^t, 0 < decay <= 1 (the original tutorial's rule).

    Decays fast: with decay 0.5 an update 10 versions old keeps 0.1 % weight.
    """
    if not (np.isfinite(decay) and 0 < decay <= 1):
        raise ValueError(f"decay={decay!r} is invalid: expected a number in (0, 1]")

    def s(t: Staleness) -> Union[float, np.ndarray]:
        return _result(decay ** _as_staleness(t), t)

    s.__name__ = f"exponential(decay={decay:g})"
    return s


def from_config(config: AsyncConfig) -> StalenessFn:
    """The staleness function that ``config.staleness`` names, with its parameters."""
    if config.staleness == "constant":
        return constant()
    if config.staleness == "polynomial":
        return polynomial(config.poly_a)
    if config.staleness == "hinge":
        return hinge(config.hinge_a, config.hinge_b)
    return exponential(config.staleness_weight_decay)
