"""The stability verdict (History.stable), the exact stability region on the simulator, and
notebook 5's two checkers (Exercises 5.1 and 5.2)."""

import math

import numpy as np
import pytest
import torch

from fedasync_lib.analysis import largest_stable_step
from fedasync_lib.core.history import STABLE_PEAK, History
from fedasync_lib.teaching import convergence
from fedasync_lib.teaching.exercises import check_delay_bound, check_delay_weight


# --- History.stable ----------------------------------------------------------------------------
def history(losses, diverged=False):
    h = History("test", diverged=diverged)
    h.evals = [{"update": 10 * i, "train_loss": float(v)} for i, v in enumerate(losses)]
    return h


def test_stable_reads_the_training_loss():
    assert history([2.3, 1.0, 0.5]).stable
    assert not history([2.3, 1.0, 2.4]).stable  # ends above its start
    assert not history([2.3, 2.3]).stable  # did not fall
    assert not history([2.3, STABLE_PEAK * 2.3 * 1.01, 0.1]).stable  # shot up, came back
    assert history([2.3, STABLE_PEAK * 2.3, 0.1]).stable  # the factor itself is allowed
    assert not history([2.3, float("nan"), 0.1]).stable
    assert not history([2.3, 0.1], diverged=True).stable
    assert not history([2.3]).stable  # one evaluation says nothing


def quadratic(concurrency, factor, seed=42):
    step = factor * largest_stable_step(concurrency - 1)
    return convergence.quadratic_run(convergence.quadratic_config(concurrency, step, seed=seed))


def test_stable_on_runs_that_learn_blow_up_and_end_above_their_start():
    learns = quadratic(4, 0.9)
    assert learns.stable and not learns.diverged
    blows_up = convergence.quadratic_run(convergence.quadratic_config(1, 2.5))
    assert blows_up.diverged and not blows_up.stable
    above = quadratic(16, 1.1)  # grows slowly: not stopped by the 10^6 rule, yet unstable
    loss = above.column("train_loss", "evals")
    assert not above.diverged and loss[-1] > loss[0] and not above.stable


def test_summary_carries_the_verdict():
    assert quadratic(4, 0.9).summary()["stable"] is True


# --- the exact region, on the simulator ---------------------------------------------------------
@pytest.mark.parametrize("concurrency", [2, 8])
def test_the_simulator_follows_the_derived_stability_limit(concurrency):
    """Equal speeds give every update the delay c - 1; just inside the derived limit the run
    is stable, just outside it is not, on two seeds."""
    for seed in (42, 1):
        assert quadratic(concurrency, 0.9, seed).stable
        assert not quadratic(concurrency, 1.1, seed).stable
    delays = convergence.steady_staleness(quadratic(concurrency, 0.9))
    assert set(delays.tolist()) == {concurrency - 1}


def test_the_quadratics_step_is_eta_times_l():
    """One curvature for all clients: every client holds the same samples."""
    data, curvature = convergence.quadratic_data()
    x = torch.as_tensor(data.clients[0].x).double()
    features = torch.cat([x, torch.ones(len(x), 1, dtype=torch.double)], 1)
    assert curvature == pytest.approx(torch.linalg.eigvalsh(features.T @ features / len(x)).max().item())
    assert all(np.array_equal(c.x, data.clients[0].x) for c in data.clients)
    cfg = convergence.quadratic_config(4, 0.3)
    assert cfg.learning_rate * curvature == pytest.approx(1.0)


@pytest.mark.parametrize("concurrency, step", [(0, 0.1), (21, 0.1), (4, 0.0), (4, float("nan"))])
def test_the_demo_names_bad_input(concurrency, step):
    with pytest.raises(ValueError, match="concurrency=|step="):
        convergence.quadratic_demo(concurrency, step)


def test_the_buffer_held_apart_moves_every_arrival_by_the_same_step():
    runs = convergence.buffer_runs([1, 5], step_per_arrival=0.6, seeds=(42,))
    assert [h.summary()["updates_applied"] for h in (runs[1][0], runs[5][0])] == [300, 300]
    # K * s at the server, 1/K of it per change: s per arrival, whatever K
    assert runs[5][0].column("alpha")[-1] > 0


# --- Exercise 5.1: the bound at delays 0 and 1 -------------------------------------------------
def search(delay):
    """A numerical search is another correct design."""
    from fedasync_lib.analysis import spectral_radius
    lo, hi = 0.0, 3.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if spectral_radius(mid, delay) < 1 else (lo, mid)
    return lo


@pytest.mark.parametrize("bound", [
    lambda d: 2.0 if d == 0 else 1.0,
    lambda d: 2 * math.sin(math.pi / (4 * d + 2)),
    lambda d: np.float32([2, 1][d]),
    search,
])
def test_ex51_correct_bounds_pass(bound, capsys):
    assert check_delay_bound(bound)
    assert "all 2 checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("bound, phrase", [
    (lambda d: [2.0, 1.5][d], "too large"),
    (lambda d: [1.0, 1.0][d], "too cautious"),
    (lambda d: [2.0, 0.25][d], "too cautious"),  # real roots only: safe, but not the limit
    (lambda d: None, "forget `return`"),
    (lambda d: [2.0][d], "raised IndexError"),
    (lambda d: -1.0, "above 0"),
    (lambda d: torch.tensor(2.0), "tensor"),
    (lambda: 2.0, "raised TypeError"),
])
def test_ex51_wrong_bounds_are_named(bound, phrase, capsys):
    assert not check_delay_bound(bound)
    assert phrase in capsys.readouterr().out


def test_ex51_stub_is_not_written(capsys):
    def stub(delay):
        raise NotImplementedError
    assert not check_delay_bound(stub)
    assert "not written yet" in capsys.readouterr().out


# --- Exercise 5.2: a delay-adaptive weight, judged by the verdict ---------------------------------
@pytest.mark.parametrize("weight", [
    lambda t, c: 1.0 / (1.0 + t),
    lambda t, c: math.exp(-t / 8),
])
def test_ex52_stable_weights_pass(weight, capsys):
    assert check_delay_weight(weight)
    assert "all 3 checks passed" in capsys.readouterr().out


@pytest.mark.parametrize("weight", [
    lambda t, c: 1.0 if t == 0 else 0.5,  # halves every stale change: too large, not wasteful
    lambda t, c: min(1.0, math.sqrt(2.0 / (1.0 + t))),
])
def test_ex52_an_unstable_weight_is_told_it_is_unstable_and_where(weight, capsys):
    assert not check_delay_weight(weight)
    out = capsys.readouterr().out
    assert "unstable at 16 clients in flight and a server step of 4" in out
    assert "wastes" not in out


def test_ex52_a_wasteful_weight_is_told_it_wastes(capsys):
    # 1/(1+t)^2 is stable on every seed and ends far below FedBuff's weight (0.71 against
    # 0.97). Keeping fresh changes only is no good example: it barely learns at all, and
    # whether its loss ends a hair above or below its start is noise.
    assert not check_delay_weight(lambda t, c: 1.0 / (1 + t) ** 2)
    out = capsys.readouterr().out
    assert "stable but wastes the stale changes" in out and "unstable" not in out


def test_ex52_a_weight_that_drops_every_stale_change_is_told_so(capsys):
    """Fresh changes only barely learn: whether one seed's loss ends a hair above its start
    (unstable) or not (wasteful) is noise, but the advice is never that stale changes weigh
    too much."""
    assert not check_delay_weight(lambda t, c: 1.0 if t == 0 else 0.0)
    out = capsys.readouterr().out
    assert "weigh too much" not in out
    assert "throws every stale change away" in out or "stable but wastes the stale changes" in out
