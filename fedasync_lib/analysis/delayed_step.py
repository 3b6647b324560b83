"""The exact stability region of gradient descent with a delayed gradient, on a quadratic.

Take a one-dimensional quadratic ``f(x) = L x^2 / 2`` (curvature ``L``) and gradient
descent in which every step uses the gradient from ``d`` steps back, as an asynchronous
server does when every update is ``d`` versions stale:

    x_{t+1} = x_t - eta * f'(x_{t-d}) = x_t - a * x_{t-d},        a = eta * L.

A linear recursion: try ``x_t = z^t``. Then ``z^{d+1} = z^d - a``, so every solution is a
combination of ``z^t`` over the roots of the **characteristic polynomial**

    p(z) = z^{d+1} - z^d + a,

and the iteration converges for every start exactly when all ``d + 1`` roots lie inside
the unit circle. At ``a = 0`` the roots are ``1`` and ``0`` (``d`` times); as ``a`` grows
from 0 the root at 1 moves inside, to about ``1 - a``. The iteration stops converging at
the first ``a`` where a root reaches the unit circle, ``z = e^{i theta}``:

    e^{i theta d} (e^{i theta} - 1) = -a.

Moduli: ``|e^{i theta} - 1| = 2 sin(theta / 2) = a``. Angles:
``e^{i theta} - 1 = 2 sin(theta / 2) e^{i (theta + pi) / 2}``, so
``theta d + (theta + pi) / 2 = pi (mod 2 pi)``, that is ``theta (2 d + 1) = pi (mod 4 pi)``.
The smallest such angle, ``theta = pi / (2 d + 1)``, gives the smallest ``a``:

    sup { eta * L : the iteration converges } = 2 sin( pi / (2 (2 d + 1)) ).

Delay 0: ``2 sin(pi / 2) = 2``, plain gradient descent's ``eta < 2 / L``. Delay 1:
``2 sin(pi / 6) = 1``. Large delays: ``2 sin(pi / (4 d + 2)) ~ pi / (2 d + 1) ~ 1.57 / d``:
the step must shrink like one over the delay, which is the ``1 / tau`` scaling of the step
sizes in Koloskova, Stich and Jaggi (2022), whose Theorem 8 allows at most
``1 / (4 L tau_t)`` for a gradient ``tau_t`` steps old.

On a quadratic in many dimensions (a Hessian ``H``) the recursion splits along the
eigenvectors of ``H``; each direction is the one-dimensional case with its own curvature,
and the largest one, ``L = lambda_max(H)``, decides. A constant term in the gradient (a
client's own optimum) only shifts the point the iteration settles at. Notebook 5 derives
delays 0 and 1 by hand, then checks this bound on the simulator.

The derivation is this library's; the recursion is the textbook model of a delayed
gradient step (it is Algorithm 1 of Koloskova et al. with one client and fixed delays).
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _check_delay(delay: object) -> int:
    if (not isinstance(delay, numbers.Integral) or isinstance(delay, bool)) or int(delay) < 0:
        raise ValueError(f"delay={delay!r} is invalid: expected a whole number of steps >= 0")
    return int(delay)


def largest_stable_step(delay: int) -> float:
    """The supremum of ``eta * L`` for which gradient descent with every gradient ``delay``
    steps old converges on a quadratic of curvature ``L``: ``2 sin(pi / (2 (2 delay + 1)))``
    (derived in the module docstring). 2 at delay 0, 1 at delay 1, about
    ``pi / (2 delay + 1)`` for large delays."""
    d = _check_delay(delay)
    return 2.0 * math.sin(math.pi / (2.0 * (2 * d + 1)))


def characteristic_roots(step: float, delay: int) -> np.ndarray:
    """The roots of ``z^{delay+1} - z^delay + step`` (``step`` is ``eta * L``), computed
    numerically (:func:`numpy.roots`): the iteration converges when all lie inside the
    unit circle."""
    d = _check_delay(delay)
    a = float(step)
    if not math.isfinite(a) or a < 0:
        raise ValueError(f"step={step!r} is invalid: expected a finite number >= 0 (eta * L)")
    coefficients = np.zeros(d + 2)
    coefficients[0], coefficients[1] = 1.0, -1.0
    coefficients[-1] += a
    return np.roots(coefficients)


def spectral_radius(step: float, delay: int) -> float:
    """The largest modulus of the :func:`characteristic_roots`: the factor by which the
    distance to the optimum shrinks (below 1) or grows (above 1) per step, in the long run."""
    return float(np.max(np.abs(characteristic_roots(step, delay))))


def delayed_iterates(step: float, delay: int, steps: int) -> np.ndarray:
    """``x_0 .. x_steps`` of ``x_{t+1} = x_t - step * x_{t-delay}`` from ``x = 1`` (the
    ``delay`` iterates before the start at 1 too, as when every job starts from the
    initial model): the iteration itself, to watch it converge or blow up."""
    d = _check_delay(delay)
    a = float(step)
    x = np.ones(d + 1 + int(steps))
    for t in range(d, d + int(steps)):
        x[t + 1] = x[t] - a * x[t - d]
    return x[d:]
