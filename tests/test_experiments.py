"""The exercises' experiment functions at their sliders' extremes, and the claims
the solution notebooks make, checked against fresh runs."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from fedasync_lib import adaptive, experiments as ex, lesson, plots  # noqa: E402

LO, HI = lesson.SLIDERS["max_staleness"][:2]
HET_LO, HET_HI = lesson.SLIDERS["heterogeneity"][:2]


def draw(fig):
    fig.canvas.draw()
    plt.close(fig)


# --- Exercise 1 ---------------------------------------------------------------------
@pytest.mark.parametrize("bound", [LO, HI])
def test_bound_demo_at_extremes(bound):
    drop, wait = ex.bound_run("drop", bound), ex.bound_run("wait", bound)
    assert 0 <= drop.thrown_away <= 1 and wait.thrown_away == 0
    assert 0 <= wait.idle <= 1 and drop.idle == pytest.approx(0, abs=1e-9)
    assert wait.max_seen_staleness <= bound + lesson.LESSON.concurrency - 1
    draw(plots.plot_convergence({"drop": drop.history, "wait": wait.history}, log_time=True))


def test_claims_exercise_1():
    sweep = ex.bound_sweep([0, 5, 20])
    unbounded = sweep["drop"][-1]
    for r in sweep["drop"][:-1]:
        assert r.accuracy > unbounded.accuracy + 0.02 and r.virtual_time == unbounded.virtual_time
    assert sweep["wait"][1].virtual_time > 10 * unbounded.virtual_time
    equal = lesson.LESSON.replace(heterogeneity=0.0)
    assert ex.bound_run("wait", 5, equal).accuracy > ex.bound_run("drop", 5, equal).accuracy
    draw(plots.plot_bound_sweep(sweep))


# --- Exercise 2 ---------------------------------------------------------------------
def test_speed_skewed_digits_give_slow_clients_the_high_digits():
    data = ex.speed_skewed_digits()
    assert list(data.latencies) == sorted(data.latencies)
    assert set(data.clients[0].y.tolist()) == {0} and set(data.clients[-1].y.tolist()) == {9}


def test_claims_exercise_2():
    results = {r.label: r for r in ex.scheduling_comparison()}
    rnd, fastest, fewest = (results[f"arrival / {o}"] for o in ("random", "fastest", "fewest"))
    assert fastest.jain < 0.3 and fastest.slowest_decile == 0 and fastest.slow_class_accuracy < 0.1
    assert fewest.jain > rnd.jain > fastest.jain
    assert fewest.accuracy > rnd.accuracy > fastest.accuracy
    draw(plots.plot_scheduling(list(results.values())))


# --- Exercise 3 ---------------------------------------------------------------------
RULES = {"fixed alpha": None, "staleness": adaptive.staleness_only(),
         "staleness + distance": adaptive.staleness_and_distance()}


@pytest.mark.parametrize("het", [HET_LO, HET_HI])
def test_mixing_demo_at_extremes(het):
    runs = ex.mixing_rules_run(het, RULES)
    for h in runs.values():
        assert not h.diverged and math.isfinite(h.tail_accuracy())
    draw(plots.plot_convergence(runs))


def test_claims_exercise_3():
    for het in (0.5, 1.0, 2.0):
        runs = ex.mixing_rules_run(het, RULES)
        assert runs["staleness"].tail_accuracy() > runs["fixed alpha"].tail_accuracy()
        assert runs["staleness"].swing() < runs["fixed alpha"].swing() / 3
    high = ex.mixing_rules_run(2.0, RULES)
    assert high["staleness + distance"].swing() < high["staleness"].swing()


# --- Exercise 4 ---------------------------------------------------------------------
@pytest.mark.parametrize("het", [HET_LO, HET_HI])
def test_race_demo_at_extremes(het):
    runs = ex.sync_vs_async(het)
    assert set(runs) == {"FedAvg (sync)", "FedAsync", "FedBuff"}
    assert all(h.time_to_accuracy(0.9) is not None for h in runs.values())
    draw(plots.plot_sync_vs_async(runs, 0.9))


def test_claims_exercise_4():
    hets = [0.0, 0.25, 1.5]
    t = ex.crossover(hets, 0.9)
    assert t["FedAvg (sync)"][0] < t["FedAsync"][0]  # equal speeds: sync wins
    assert t["FedAsync"][1] < t["FedAvg (sync)"][1]  # from 0.25 on, async wins
    assert t["FedAvg (sync)"][2] > 10 * t["FedAsync"][2] and t["FedBuff"][2] < t["FedAsync"][2]
    draw(plots.plot_crossover(hets, t, 0.9))


def test_update_distances_are_measured_on_the_staleness_weighted_trajectory():
    import numpy as np
    """Exercise E3 calibrates its trust region on these: they must come from the trajectory
    the rule runs on (staleness weighting), where models move less than with a fixed rate."""
    from fedasync_lib import adaptive
    from fedasync_lib.teaching import experiments
    weighted = experiments.update_distances(seeds=(42,))
    fixed = experiments.update_distances(seeds=(42,), rule=lambda ctx: ctx.config.mixing_alpha)
    assert len(weighted) == len(fixed) == experiments.LESSON.num_updates
    assert np.median(weighted) < 0.75 * np.median(fixed)
    again = experiments.update_distances(seeds=(42,), rule=adaptive.staleness_only())
    assert np.array_equal(weighted, again)
