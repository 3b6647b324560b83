import numpy as np
import pytest

from fedasync_lib import AsyncConfig, staleness

S = np.arange(0, 40)


def test_constant():
    s = staleness.constant()
    assert s(0) == 1.0 and s(17) == 1.0
    np.testing.assert_array_equal(s(S), np.ones(len(S)))


@pytest.mark.parametrize("a", [0.0, 0.5, 1.0, 3.0])
def test_polynomial_matches_formula(a):
    s = staleness.polynomial(a)
    for t in (0, 1, 4, 39):
        assert s(t) == pytest.approx((1 + t) ** (-a), rel=1e-12)
    np.testing.assert_allclose(s(S), (1.0 + S) ** (-a), rtol=1e-12)


@pytest.mark.parametrize("a,b", [(10.0, 4), (1.0, 0), (0.5, 7), (0.0, 3)])
def test_hinge_matches_formula(a, b):
    s = staleness.hinge(a, b)
    expected = np.array([1.0 if t <= b else 1.0 / (a * (t - b) + 1.0) for t in S])
    np.testing.assert_allclose(s(S), expected, rtol=1e-12)
    assert s(b) == 1.0
    assert s(b + 1) == pytest.approx(1.0 / (a + 1.0))


@pytest.mark.parametrize("decay", [0.5, 0.9, 1.0])
def test_exponential_matches_formula(decay):
    s = staleness.exponential(decay)
    assert s(0) == 1.0
    assert s(3) == pytest.approx(decay ** 3)
    np.testing.assert_allclose(s(S), decay ** S.astype(float), rtol=1e-12)


@pytest.mark.parametrize("fn", [staleness.constant(), staleness.polynomial(0.5),
                                staleness.hinge(10, 4), staleness.exponential(0.5)])
def test_weights_in_unit_interval_and_non_increasing(fn):
    w = fn(np.arange(0, 200))
    assert np.all(w > 0) and np.all(w <= 1)
    assert np.all(np.diff(w) <= 0)
    assert isinstance(fn(3), float)
    assert fn(np.array([[1, 2], [3, 4]])).shape == (2, 2)


@pytest.mark.parametrize("bad", [-1, np.array([0, -2]), 1.5])
def test_bad_staleness_is_rejected(bad):
    with pytest.raises(ValueError, match="staleness="):
        staleness.polynomial(0.5)(bad)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="a=-1"):
        staleness.polynomial(-1)
    with pytest.raises(ValueError, match="b=-2"):
        staleness.hinge(1.0, -2)
    with pytest.raises(ValueError, match="decay=1.5"):
        staleness.exponential(1.5)


def test_from_config_picks_named_function_and_parameters():
    t = np.arange(10)
    cases = {
        "constant": np.ones(10),
        "polynomial": (1.0 + t) ** -0.7,
        "hinge": np.where(t <= 2, 1.0, 1.0 / (3.0 * (t - 2) + 1.0)),
        "exponential": 0.8 ** t.astype(float),
    }
    for name, expected in cases.items():
        cfg = AsyncConfig(staleness=name, poly_a=0.7, hinge_a=3.0, hinge_b=2,
                          staleness_weight_decay=0.8)
        np.testing.assert_allclose(staleness.from_config(cfg)(t), expected, rtol=1e-12)
