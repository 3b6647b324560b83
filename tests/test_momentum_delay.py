"""Server momentum with stale changes on a quadratic: the stability bound derived in
fedasync_lib/analysis/delayed_step.py, against its two hand-derived cases, the plain bound,
the iteration itself, and the simulator's FedBuff with server momentum."""

import numpy as np
import pytest

from fedasync_lib.analysis import largest_stable_momentum_step, largest_stable_step, spectral_radius
from fedasync_lib.analysis.delayed_step import characteristic_roots
from fedasync_lib.teaching import convergence


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_no_delay_is_the_heavy_ball_bound(beta):
    assert largest_stable_momentum_step(0, beta) == pytest.approx(2 * (1 + beta), rel=1e-6)


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_a_delay_of_one_allows_a_long_run_step_of_exactly_one(beta):
    assert largest_stable_momentum_step(1, beta) == pytest.approx(1 - beta, rel=1e-6)


@pytest.mark.parametrize("delay", [0, 1, 3, 9])
def test_without_momentum_the_polynomials_agree(delay):
    for a in (0.05, 0.3, 1.0):
        plain = sorted(characteristic_roots(a, delay), key=lambda z: (z.real, z.imag))
        with_zero = characteristic_roots(a, delay, 1e-12)
        assert spectral_radius(a, delay) == pytest.approx(np.abs(with_zero).max(), abs=1e-5)
        assert len(plain) == delay + 1


@pytest.mark.parametrize("delay", [3, 6, 9])
def test_with_stale_changes_momentum_narrows_the_stable_long_run_step(delay):
    plain = largest_stable_step(delay)
    long_run = [largest_stable_momentum_step(delay, b) / (1 - b) for b in (0.5, 0.9)]
    assert long_run[1] < long_run[0] < plain


@pytest.mark.parametrize("delay,beta", [(2, 0.5), (5, 0.9)])
def test_the_iteration_itself_converges_below_the_bound_and_grows_above(delay, beta):
    a = largest_stable_momentum_step(delay, beta)
    for factor, converges in ((0.9, True), (1.1, False)):
        x, m = np.ones(delay + 1), 0.0  # x_{t-d} .. x_t, all 1 at the start
        for _ in range(4000):
            m = beta * m - factor * a * x[0]
            x = np.append(x[1:], x[-1] + m)
        assert (abs(x[-1]) < 1e-3) == converges


def test_the_simulators_fedbuff_with_momentum_follows_the_bound():
    """Equal speeds, a buffer of 1: every change is c - 1 steps old. Runs near the bound
    with a large beta grow slowly, hence the longer runs there."""
    rows = convergence.momentum_delay_check([(2, 0.5, 400), (4, 0.9, 1500), (10, 0.9, 3000)],
                                            seeds=(42,))
    for row in rows:
        assert row["stable"] == {0.9: 1, 1.1: 0}, row


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan"), "0.5"])
def test_momentum_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="momentum=.* is invalid: expected a number in \\[0, 1\\)"):
        largest_stable_momentum_step(3, bad)
