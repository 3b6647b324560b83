"""The exact stability region of a delayed gradient step, against the polynomial's roots."""

import math

import numpy as np
import pytest

from fedasync_lib.analysis import characteristic_roots, largest_stable_step, spectral_radius
from fedasync_lib.analysis.delayed_step import delayed_iterates


def test_known_cases():
    assert largest_stable_step(0) == pytest.approx(2.0)  # plain gradient descent: eta < 2 / L
    assert largest_stable_step(1) == pytest.approx(1.0)


@pytest.mark.parametrize("delay", range(0, 101))
def test_closed_form_against_numerical_roots(delay):
    """Just below the bound every root is inside the unit circle, just above one is outside,
    and at the bound the largest root sits on it."""
    a = largest_stable_step(delay)
    assert spectral_radius(a * (1 - 1e-6), delay) < 1.0
    assert spectral_radius(a * (1 + 1e-6), delay) > 1.0
    assert spectral_radius(a, delay) == pytest.approx(1.0, abs=1e-7)


def test_bisection_on_roots_finds_the_same_supremum():
    """An independent route: bisect on the spectral radius alone, no formula."""
    for delay in (0, 1, 2, 5, 17, 64, 100):
        lo, hi = 0.0, 2.5
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if spectral_radius(mid, delay) < 1 else (lo, mid)
        assert lo == pytest.approx(largest_stable_step(delay), rel=1e-9)


def test_large_delays_scale_as_one_over_the_delay():
    for delay in (50, 100, 1000):
        assert largest_stable_step(delay) * (2 * delay + 1) == pytest.approx(math.pi, rel=1e-4)


def test_the_iteration_itself_converges_or_blows_up():
    for delay in (0, 1, 4):
        a = largest_stable_step(delay)
        assert abs(delayed_iterates(0.9 * a, delay, 2000)[-1]) < 1e-6
        assert abs(delayed_iterates(1.1 * a, delay, 2000)[-1]) > 1e6


def test_roots_are_the_polynomials():
    roots = characteristic_roots(0.3, 3)
    assert len(roots) == 4
    assert np.allclose(roots ** 4 - roots ** 3 + 0.3, 0, atol=1e-10)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_bad_delay_is_named(bad):
    with pytest.raises(ValueError, match="delay="):
        largest_stable_step(bad)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_step_is_named(bad):
    with pytest.raises(ValueError, match="step="):
        spectral_radius(bad, 2)
