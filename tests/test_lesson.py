"""Every notebook demo's function, called directly with its sliders' extreme values,
and the claims the notebooks' prose makes about the lesson's default experiment."""

import itertools
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fedasync_lib import lesson, plots  # noqa: E402
from fedasync_lib.teaching.widgets import slider  # noqa: E402

LO = {name: spec[0] for name, spec in lesson.SLIDERS.items()}
HI = {name: spec[1] for name, spec in lesson.SLIDERS.items()}


def corners(*names):
    return list(itertools.product(*[(LO[n], HI[n]) for n in names]))


def draw(fig):
    fig.canvas.draw()  # really render, so a plotting error cannot hide
    plt.close(fig)


@pytest.mark.parametrize("concurrency,heterogeneity", corners("concurrency", "heterogeneity"))
def test_timelines_demo_at_extremes(concurrency, heterogeneity):
    t = lesson.timelines(concurrency, heterogeneity)
    assert len(t.sync_jobs) == 40
    assert sum(1 for j in t.async_jobs if j.arrival_time <= t.async_time) == 40
    assert 0 < t.sync_utilization <= 1 + 1e-9
    assert t.async_utilization == pytest.approx(1.0)
    if concurrency == 1:  # nobody to wait for: both schedules coincide
        assert t.sync_time == pytest.approx(t.async_time)
    else:
        assert t.sync_time > t.async_time
    draw(plots.plot_timelines(t))


def test_sync_rounds_wait_for_their_slowest_job():
    t = lesson.timelines(concurrency=5, heterogeneity=1.0)
    starts = sorted({j.start_time for j in t.sync_jobs})
    for start, next_start in zip(starts, starts[1:]):
        round_jobs = [j for j in t.sync_jobs if j.start_time == start]
        assert len(round_jobs) == 5
        assert next_start == max(j.arrival_time for j in round_jobs)
        assert len({j.client_id for j in round_jobs}) == 5


@pytest.mark.parametrize("concurrency,heterogeneity", corners("concurrency", "heterogeneity"))
def test_staleness_profile_demo_at_extremes(concurrency, heterogeneity):
    p = lesson.staleness_profile(concurrency, heterogeneity)
    assert len(p.staleness) == lesson.LESSON.num_updates == p.contributions.sum()
    if concurrency == 1:
        assert np.all(p.staleness == 0)
    else:
        assert p.staleness.mean() > 0
    draw(plots.plot_staleness_profile(p))


def test_heterogeneity_starves_slow_clients():
    p = lesson.staleness_profile(concurrency=20, heterogeneity=HI["heterogeneity"])
    order = np.argsort(p.client_latency)
    assert p.contributions[order[:5]].sum() > 150
    assert p.contributions[order[-5:]].sum() == 0
    even = lesson.staleness_profile(concurrency=20, heterogeneity=0.0)
    assert even.contributions.min() >= 5


def test_equal_speeds_give_staleness_near_concurrency_minus_one():
    for c in (2, 5, 10, 20):
        mean = lesson.staleness_profile(c, 0.0).staleness.mean()
        assert abs(mean - (c - 1)) < 0.15 * c


def test_class_exposure_shares_sum_to_one():
    e = lesson.class_exposure(10, 2.0)
    assert e["data"].sum() == pytest.approx(1) and e["updates"].sum() == pytest.approx(1)
    draw(plots.plot_class_exposure(e))


@pytest.mark.parametrize("decay,poly_a,hinge_a,hinge_b",
                         corners("decay", "poly_a", "hinge_a", "hinge_b"))
def test_weighting_curves_demo_at_extremes(decay, poly_a, hinge_a, hinge_b):
    c = lesson.weighting_curves(decay, poly_a, hinge_a, hinge_b)
    for name in lesson.WEIGHTINGS:
        assert c[name].shape == c["t"].shape
        assert np.all((c[name] >= 0) & (c[name] <= 1)) and c[name][0] == 1.0
    draw(plots.plot_weighting_functions(c, mixing_alpha=0.9))


@pytest.mark.parametrize("name", lesson.WEIGHTINGS)
@pytest.mark.parametrize("extreme", ["LO", "HI"])
def test_weighting_run_demo_at_extremes(name, extreme):
    values = LO if extreme == "LO" else HI
    runs = lesson.weighting_demo(name, values["decay"], values["poly_a"], values["hinge_a"],
                                 values["hinge_b"])
    assert set(runs) == {"sequential", "constant", name}
    h = runs[name]
    assert not h.diverged and 0.1 < h.tail_accuracy() <= 1.0
    draw(plots.plot_convergence(runs, log_time=True))


@pytest.mark.parametrize("alpha,lr", corners("mixing_alpha", "learning_rate"))
def test_mixing_demo_at_extremes(alpha, lr):
    runs = lesson.mixing_demo(alpha, lr)
    h = list(runs.values())[1]
    if lr == HI["learning_rate"]:
        assert h.diverged and math.isnan(h.final_accuracy)
    else:
        assert not h.diverged and np.isfinite(h.column("accuracy", "evals")).all()
    draw(plots.plot_convergence(runs))


def test_damping_demos():
    rates = lesson.damping_rates([27, 5000], mixing_alpha=0.9)
    assert rates["n=27"][0] == pytest.approx(27 / 127)
    assert rates["n=5000"][0] == pytest.approx(5000 / 5100)
    np.testing.assert_allclose(rates["fedasync"], 0.9 * 0.5 ** rates["t"])
    draw(plots.plot_damping_rates(rates))
    both = lesson.damping_comparison()
    sizes = lesson.federated_data(lesson.LESSON).sizes
    fresh = both["sample_damping"].column("staleness") == 0
    alphas = both["sample_damping"].column("alpha")[fresh]
    n = sizes[both["sample_damping"].column("client_id")[fresh]]
    np.testing.assert_allclose(alphas, n / (n + 100.0), rtol=1e-12)
    assert np.unique(both["fedasync"].column("alpha")[fresh]).tolist() == [0.9]
    draw(plots.plot_applied_rates(both, sizes))


def test_sliders_that_start_simulations_wait_for_release():
    for name, (low, high, _) in lesson.SLIDERS.items():
        s = slider(name, low)
        assert s.continuous_update is False and s.min == low and s.max == high


# --- the claims the notebooks make about the lesson's default experiment ------------
@pytest.fixture(scope="module")
def weighting_runs():
    return lesson.compare_weightings()


def test_claim_staleness_hurts_and_weighting_recovers_most_of_it(weighting_runs):
    acc = {k: h.tail_accuracy() for k, h in weighting_runs.items()}
    lost = acc["sequential"] - acc["constant"]
    assert lost > 0.04
    assert (acc["hinge"] - acc["constant"]) / lost > 0.5
    for name in ("polynomial", "hinge", "exponential"):
        assert acc[name] > acc["constant"]
        assert weighting_runs[name].swing() < weighting_runs["constant"].swing() / 5


def test_claim_async_is_much_faster_in_virtual_time(weighting_runs):
    seq = weighting_runs["sequential"].time_to_accuracy(0.9)
    for name in lesson.WEIGHTINGS:
        assert weighting_runs[name].time_to_accuracy(0.9) < seq / 20


def test_claim_alpha_too_small_crawls_too_large_swings():
    sweep = lesson.alpha_sweep([0.05, 0.6, 1.0])
    assert sweep[0.6].tail_accuracy() > sweep[0.05].tail_accuracy() + 0.05
    assert sweep[0.6].tail_accuracy() > sweep[1.0].tail_accuracy() + 0.05
    # notebook 4: at alpha 1.0 the swing is about eight times that at alpha 0.05
    assert 7 < sweep[1.0].swing() / sweep[0.05].swing() < 9
    hinge = lesson.simulate(lesson.LESSON.replace(mixing_alpha=1.0, staleness="hinge"))
    assert hinge.tail_accuracy() > sweep[0.6].tail_accuracy()


@pytest.mark.parametrize("algorithm", lesson.ALGORITHMS)
@pytest.mark.parametrize("extreme", ["LO", "HI"])
def test_classroom_app_at_extremes(algorithm, extreme):
    v = LO if extreme == "LO" else HI
    staleness = "exponential" if extreme == "LO" else "hinge"
    runs = lesson.classroom_run(algorithm, v["concurrency"], v["heterogeneity"], staleness,
                                v["decay"], v["mixing_alpha"])
    assert set(runs) == {"sequential", algorithm}
    assert len(runs[algorithm].updates) == lesson.LESSON.num_updates
    draw(plots.plot_classroom(runs, algorithm))


def test_classroom_rejects_an_unknown_algorithm():
    with pytest.raises(ValueError, match="algorithm='FedProx'"):
        lesson.classroom_run("FedProx", 10, 1.0, "constant", 0.5, 0.9)


def test_classroom_greys_out_exactly_the_controls_an_algorithm_ignores():
    assert lesson.classroom_ignored("FedAsync", "exponential") == []
    assert lesson.classroom_ignored("FedAsync", "polynomial") == ["decay"]
    for algorithm in ("FedBuff", "FedAvg (sync)"):
        assert lesson.classroom_ignored(algorithm, "hinge") == ["staleness", "decay", "mixing_alpha"]
        # and indeed: moving a greyed-out control does not change the run
        a = lesson.classroom_run(algorithm, 6, 1.0, "hinge", 0.5, 0.9)[algorithm]
        b = lesson.classroom_run(algorithm, 6, 1.0, "exponential", 0.2, 0.3)[algorithm]
        assert a.column("alpha").tolist() == b.column("alpha").tolist()
        assert a.column("accuracy", "evals").tolist() == b.column("accuracy", "evals").tolist()


def test_curves_beyond_the_colour_cycle_are_drawn():
    runs = {f"run {i}": lesson.simulate(lesson.LESSON.replace(num_updates=20, seed=i))
            for i in range(12)}
    draw(plots.plot_sync_vs_async(runs, 0.5))
    draw(plots.plot_convergence(runs))


# --- 6. bring your own model and data --------------------------------------------------
@pytest.mark.parametrize("model", lesson.MODELS)
@pytest.mark.parametrize("staleness", lesson.WEIGHTINGS)
def test_model_demo_at_every_menu_value(model, staleness):
    runs = lesson.model_demo(model, staleness)
    assert list(runs) == list(dict.fromkeys(["built-in MLP", model]))
    for h in runs.values():
        assert len(h.updates) == lesson.LESSON.num_updates and math.isfinite(h.tail_accuracy())
    draw(plots.plot_convergence(runs, title=f"{model}, {staleness}"))


def test_claim_staleness_cripples_the_cnn_and_weighting_rescues_it():
    """Notebook 6: without a discount the CNN ends far below the MLP and logistic
    regression; every discount lifts it, and it gains the most."""
    constant = lesson.compare_models("constant")
    tail = {name: r.history.tail_accuracy() for name, r in constant.items()}
    assert tail["CNN"] < tail["built-in MLP"] - 0.15 and tail["CNN"] < tail["logistic regression"] - 0.15
    gains = {}
    for weighting in ("polynomial", "hinge", "exponential"):
        after = {n: lesson.model_run(n, weighting).history.tail_accuracy() for n in lesson.MODELS}
        assert after["CNN"] > tail["CNN"] + 0.15
        gains[weighting] = {n: after[n] - tail[n] for n in lesson.MODELS}
        assert max(gains[weighting], key=gains[weighting].get) == "CNN"
    assert constant["CNN"].training == "torch.func"
    assert constant["built-in MLP"].training.startswith("hand-written")
    assert constant["CNN"].parameters < constant["built-in MLP"].parameters


def test_two_digit_shards_are_built_with_from_clients_and_skewed():
    shards = lesson.two_digit_shards()
    assert len(shards.clients) == lesson.LESSON.num_clients
    assert sum(shards.sizes) == 1438  # every training digit, once
    assert shards.clients[0].x.shape[1:] == (1, 8, 8) and shards.test.x.shape[1:] == (1, 8, 8)
    held = [len(set(c.y.tolist())) for c in shards.clients]
    assert max(held) <= 4 and np.median(held) <= 3  # two shards: mostly two or three digits
    flat = lesson.two_digit_shards(images=False)
    assert flat.clients[0].x.shape[1:] == (64,)


def test_bad_model_menu_values_are_clear_errors():
    with pytest.raises(ValueError, match="model='ResNet' is invalid: expected one of 'built-in MLP'"):
        lesson.make_model("ResNet")
    with pytest.raises(ValueError, match="staleness='linear' is invalid: expected one of 'constant'"):
        lesson.model_run("CNN", "linear")
