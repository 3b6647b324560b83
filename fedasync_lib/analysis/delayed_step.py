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

**With server momentum** (FedBuff's ``server_optimizer="momentum"``, beta): the server
keeps ``m_t = beta m_{t-1} + g_t`` with the delayed change ``g_t = -L x_{t-d}`` and steps
``x_{t+1} = x_t + eta m_t``. Since ``eta m_t = x_{t+1} - x_t``,

    x_{t+1} - x_t = beta (x_t - x_{t-1}) - a x_{t-d},        a = eta * L,

and ``x_t = z^t`` gives (times ``z^{d+1-t}``) the characteristic polynomial

    P(z) = z^{d+2} - (1 + beta) z^{d+1} + beta z^d + a z = z [z^{d-1} (z - 1)(z - beta) + a]

for d >= 1 (for d = 0, ``z^2 - (1 + beta - a) z + beta``: the heavy ball). Beta = 0 gives
the polynomial above. Two cases by hand:

* d = 0: a real root reaches -1 when ``1 + (1 + beta - a) + beta = 0``: ``a < 2 (1 + beta)``,
  the heavy ball's bound. Per long-run step ``a / (1 - beta)`` (momentum moves a steady
  change ``1 / (1 - beta)`` times as far), that is ``2 (1 + beta) / (1 - beta)``: 6 at
  beta = 0.5, 38 at 0.9, against 2 without momentum.
* d = 1: ``P(z) / z = z^2 - (1 + beta) z + beta + a``; its complex roots have
  ``|z|^2 = beta + a`` (their product), so they reach the unit circle at ``a = 1 - beta``:
  a long-run step of exactly 1, with or without momentum.

For larger delays :func:`largest_stable_momentum_step` finds the bound numerically (the
roots, and bisection on their largest modulus): in long-run steps it falls below the
plain bound ``2 sin(pi / (4 d + 2))``, more with larger beta (d = 9: 0.153 at beta 0.5,
0.125 at 0.9, against 0.165). So momentum, which widens the stable steps of a fresh
gradient, narrows them once the gradient is stale: its own delay adds to staleness.
Checked on the simulator by ``teaching.convergence.momentum_delay_check`` (tested).
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


def _check_momentum(momentum: object) -> float:
    if not isinstance(momentum, numbers.Real) or not 0.0 <= float(momentum) < 1.0:
        raise ValueError(f"momentum={momentum!r} is invalid: expected a number in [0, 1)")
    return float(momentum)


def characteristic_roots(step: float, delay: int, momentum: float = 0.0) -> np.ndarray:
    """The roots of ``z^{delay+1} - z^delay + step`` (``step`` is ``eta * L``), computed
    numerically (:func:`numpy.roots`): the iteration converges when all lie inside the
    unit circle. With ``momentum`` beta > 0, the roots of the module's
    ``P(z) = z^{d+2} - (1 + beta) z^{d+1} + beta z^d + a z`` (one of them 0)."""
    d = _check_delay(delay)
    beta = _check_momentum(momentum)
    a = float(step)
    if not math.isfinite(a) or a < 0:
        raise ValueError(f"step={step!r} is invalid: expected a finite number >= 0 (eta * L)")
    if beta == 0.0:
        coefficients = np.zeros(d + 2)
        coefficients[0], coefficients[1] = 1.0, -1.0
        coefficients[-1] += a
    else:
        coefficients = np.zeros(d + 3)
        coefficients[0], coefficients[1] = 1.0, -(1.0 + beta)
        coefficients[2] += beta
        coefficients[-2] += a
    return np.roots(coefficients)


def spectral_radius(step: float, delay: int, momentum: float = 0.0) -> float:
    """The largest modulus of the :func:`characteristic_roots`: the factor by which the
    distance to the optimum shrinks (below 1) or grows (above 1) per step, in the long run."""
    return float(np.max(np.abs(characteristic_roots(step, delay, momentum))))


def largest_stable_momentum_step(delay: int, momentum: float) -> float:
    """The supremum of ``a = eta * L`` for which server momentum ``momentum`` (beta) with
    every change ``delay`` steps old converges on a quadratic (module docstring): the first
    ``a`` on a grid up to ``2 (1 + beta)`` whose :func:`spectral_radius` reaches 1, refined
    by bisection. Divide by ``1 - beta`` for the long-run step."""
    d = _check_delay(delay)
    beta = _check_momentum(momentum)
    grid = np.linspace(0.0, 2.0 * (1.0 + beta) + 1e-6, 2001)[1:]
    unstable = next(i for i, a in enumerate(grid) if spectral_radius(a, d, beta) >= 1.0)
    low, high = (grid[unstable - 1] if unstable else 0.0), grid[unstable]
    for _ in range(60):
        mid = (low + high) / 2
        if spectral_radius(mid, d, beta) < 1.0:
            low = mid
        else:
            high = mid
    return float(low)


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
