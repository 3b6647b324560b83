"""Exercise E4.2: how many clients a synchronous round asks when some do not report. The
binomial tail against a count of all outcomes, the reference against brute force, and the
checker judging properties: other correct designs pass, wasteful or short ones fail, and
any code ends in one sentence."""

import itertools
import math

import numpy as np
import pytest

from fedasync_lib.analysis import fewest_clients, prob_at_least
from fedasync_lib.teaching.exercises import check_round_size


@pytest.mark.parametrize("k,n,q", [(2, 5, 0.3), (1, 4, 0.9), (4, 4, 0.5), (0, 3, 0.2), (5, 3, 0.5)])
def test_the_binomial_tail_counts_every_outcome(k, n, q):
    want = sum(math.prod(q if x else 1 - q for x in outcome)
               for outcome in itertools.product([0, 1], repeat=n) if sum(outcome) >= k)
    assert prob_at_least(k, n, q) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("k,q,c", [(1, 0.3, 0.5), (10, 0.8, 0.9), (5, 0.6, 0.99), (40, 0.97, 0.9),
                                   (3, 1.0, 0.9), (50, 0.05, 0.99)])
def test_the_fewest_clients_is_the_first_n_that_is_enough(k, q, c):
    n = fewest_clients(k, q, c)
    assert prob_at_least(k, n, q) >= c
    assert n == k or prob_at_least(k, n - 1, q) < c
    brute = next(m for m in itertools.count(k) if prob_at_least(k, m, q) >= c)
    assert n == brute


def search_design(k, q, confidence):
    """Another correct design: a normal-approximation guess, then a walk to the exact answer."""
    n = max(int(k), math.ceil(k / q))
    while prob_at_least(int(k), n, float(q)) < confidence:
        n += 1
    while n > k and prob_at_least(int(k), n - 1, float(q)) >= confidence:
        n -= 1
    return n


@pytest.mark.parametrize("design,passes,phrase", [
    (fewest_clients, True, "all 60 checks passed"),
    (search_design, True, "all 60 checks passed"),
    (lambda k, q, c: np.int64(fewest_clients(int(k), float(q), c)), True, "passed"),
    (lambda k, q, c: 2 * fewest_clients(int(k), float(q), c), False, "more than needed"),
    (lambda k, q, c: math.ceil(k / q), False, "clients_to_ask("),
    (lambda k, q, c: int(k), False, "too few"),
    (lambda k, q, c: float(fewest_clients(int(k), float(q), c)), False, "return a whole number"),
    (lambda k, q: k, False, "raised TypeError"),
    (lambda k, q, c: None, False, "returned None"),
    (lambda k, q, c: 1 / 0, False, "raised ZeroDivisionError"),
])
def test_the_checker_judges_properties(design, passes, phrase, capsys):
    ok = check_round_size(design)
    out = capsys.readouterr().out
    assert bool(ok) is passes and phrase in out, out
    assert "Traceback" not in out and len([l for l in out.splitlines() if l.startswith("  -")]) <= 1


def test_a_stub_is_not_written_yet(capsys):
    def stub(k, q, c):
        raise NotImplementedError
    assert not check_round_size(stub)
    assert "not written yet" in capsys.readouterr().out
