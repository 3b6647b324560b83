"""Bad input to the library gets a plain error that names the setting or the hook, what
it got and what was expected, before anything runs or at the moment it is used; numpy
scalars count as the numbers they hold; no allowed config hangs, wastes or overflows;
and a run that blows up is reported as diverged, not as a number."""

import math

import numpy as np
import pytest
import torch

from fedasync_lib import AsyncConfig, lesson, run
from fedasync_lib.__main__ import main
from fedasync_lib.core import memory
from fedasync_lib.core.scheduling import Scheduler
from fedasync_lib.core.training import JobSteps, LocalJob, local_trainer
from fedasync_lib.runner import build, server_for

CFG = AsyncConfig(num_updates=30, eval_every=10, concurrency=5, heterogeneity=1.0)


# --- numpy scalars --------------------------------------------------------------------------
def test_numpy_scalars_are_the_numbers_they_hold():
    sweep = [AsyncConfig(concurrency=c, mixing_alpha=a)
             for c, a in zip(np.arange(1, 4), np.linspace(0.2, 0.6, 3, dtype=np.float32))]
    assert [type(c.concurrency) for c in sweep] == [int] * 3
    assert sweep[1] == AsyncConfig(concurrency=2, mixing_alpha=float(np.float32(0.4)))
    assert run(CFG.replace(concurrency=np.int64(2)), "fedasync").summary()["updates_applied"] > 0
    with pytest.raises(ValueError, match=r"concurrency=np\.True_ is invalid"):
        AsyncConfig(concurrency=np.bool_(True))


# --- hook results -------------------------------------------------------------------------------
@pytest.mark.parametrize("returned", [None, math.nan, "no", 1, torch.tensor(True)])
def test_accept_must_return_a_bool(returned):
    with pytest.raises(ValueError, match=r"^accept returned .*: expected True or False$"):
        run(CFG, accept=lambda s, m: returned)


def test_numpy_bools_from_the_bound_hooks_are_fine():
    h = run(CFG.replace(max_staleness=2), accept=lambda s, m: np.bool_(s <= m))
    assert h.num_rejected > 0
    h = run(CFG.replace(max_staleness=2, staleness_policy="wait"),
            may_start=lambda v, b, m: np.bool_(not b or v - min(b) + len(b) <= m))
    assert h.column("staleness").max() <= 2


def test_may_start_must_return_a_bool():
    with pytest.raises(ValueError, match=r"^may_start returned None \(NoneType\): expected True or False"):
        run(CFG.replace(staleness_policy="wait"), may_start=lambda v, b, m: None)


def test_mixing_rule_results():
    h = run(CFG.replace(max_staleness=None), mixing_rule=lambda ctx: np.float32(0.25))
    assert np.allclose(h.column("alpha"), 0.25)
    for returned, phrase in ((None, "returned None"), (np.float32([0.3]), "returned a numpy array"),
                             (math.nan, "returned nan"), (1.5, "returned 1.5"),
                             ("0.5", "returned '0.5'")):
        with pytest.raises(ValueError, match=f"^mixing_rule {phrase}"):
            run(CFG, mixing_rule=lambda ctx, r=returned: r)


def test_a_mixing_rule_that_changes_the_server_model_in_place_is_stopped():
    def zeroes(ctx):
        for v in ctx.server_state.values():
            v[...] = 0
        return 0.5
    with pytest.raises(ValueError, match="mixing_rule changed ctx.server_state in place"):
        run(CFG, mixing_rule=zeroes)


@pytest.mark.parametrize("step,phrase", [
    (lambda x, buf, lr: None, "buffer_step returned NoneType: expected a state dict"),
    (lambda x, buf, lr: {k: v for k, v in list(x.items())[1:]}, r"wrong keys \(missing \['net.0.weight'\]"),
    (lambda x, buf, lr: {k: v.astype(np.int64) for k, v in x.items()}, "as a int64 numpy array"),
    (lambda x, buf, lr: {k: v[None] for k, v in x.items()}, "of shape"),
    (lambda x, buf, lr: {k: 1.0 for k in x}, "returned float for 'net.0.weight'"),
])
def test_buffer_step_results_are_checked_at_once(step, phrase):
    with pytest.raises(ValueError, match=phrase):
        run(CFG.replace(buffer_size=2), "fedbuff", buffer_step=step)


def test_a_buffer_step_in_float64_is_cast_to_the_state_dtype_and_runs_as_fedbuff():
    """numpy 2 makes ``d / np.sqrt(1 + s)`` float64 for a float32 ``d``: a right step, in
    another precision. The run casts it back and goes on exactly as with FedBuff's own step."""
    cfg = CFG.replace(buffer_size=2)
    own = run(cfg, "fedbuff")
    server = server_for(cfg, "fedbuff", buffer_step=lambda x, buf, lr: {
        k: x[k] + lr * sum(d[k] / np.sqrt(1 + s) for d, s in buf) / len(buf) for k in x})
    mine = server.train()
    assert all(v.dtype == np.float32 for v in server.model.state.values())
    np.testing.assert_allclose(mine.column("accuracy", "evals"), own.column("accuracy", "evals"),
                               atol=1e-6)
    np.testing.assert_allclose(mine.column("loss", "evals"), own.column("loss", "evals"), rtol=1e-5)


def test_a_buffer_step_that_changes_its_inputs_in_place_is_stopped():
    def in_place(x, buf, lr):
        for k in x:
            x[k] += lr * sum(d[k] for d, _ in buf) / len(buf)
        return x
    with pytest.raises(ValueError, match="buffer_step changed server_state in place"):
        run(CFG.replace(buffer_size=2), "fedbuff", buffer_step=in_place)


def test_a_scheduler_that_picks_a_busy_client_is_stopped():
    class PicksZero(Scheduler):
        def pick_client(self, idle, latency, delivered, gen):
            return 0
    with pytest.raises(ValueError, match=r"scheduler.pick_client returned 0: expected one of the idle"):
        run(CFG, scheduler=PicksZero())


def test_a_scheduler_that_pops_something_else_is_stopped():
    class PopsNone(Scheduler):
        def pop_update(self):
            super().pop_update()
    with pytest.raises(ValueError, match="scheduler.pop_update returned None"):
        run(CFG, scheduler=PopsNone())


# --- divergence -----------------------------------------------------------------------------------
def test_a_blow_up_with_finite_numbers_is_divergence():
    # The lesson's experiment at learning rate 1.5 and alpha 1: the test loss passes 10^7
    # times its start and every number stays finite; before the rule it ran to the end.
    h = lesson.simulate(lesson.LESSON.replace(learning_rate=1.5, mixing_alpha=1.0))
    assert h.diverged and "more than 10^6 times" in h.divergence
    assert all(math.isfinite(e["loss"]) for e in h.evals)
    assert math.isnan(h.final_accuracy) and len(h.updates) < 200
    assert h.summary()["divergence"] == h.divergence


def test_runs_that_recover_are_not_divergence():
    # The loss peaks at about 100 times its start, then the run recovers (notebook 4).
    h = lesson.simulate(lesson.LESSON.replace(learning_rate=1.5, mixing_alpha=0.6))
    assert not h.diverged and h.tail_accuracy() > 0.9


@pytest.mark.parametrize("algorithm", ["fedbuff", "fedavg"])
def test_updates_a_diverged_run_never_applied_are_not_rejected(algorithm):
    h = run(CFG.replace(learning_rate=10.0, server_lr=50.0, buffer_size=4), algorithm)
    assert h.diverged and h.num_applied == 0
    assert h.num_rejected == 0 and len(h.held_back) == len(h.updates) > 0


def test_the_cli_reports_divergence(capsys):
    assert main(["--learning-rate", "10", "--mixing-alpha", "1", "--num-updates", "50"]) == 0
    out = capsys.readouterr().out
    assert "DIVERGED after" in out and "final test accuracy" not in out


# --- configs that would hang, waste or overflow -------------------------------------------------------
def test_a_minibatch_larger_than_the_data_is_the_data():
    big, exact = CFG.replace(batch_size=100_000), CFG.replace(batch_size=200)
    assert [u["train_loss"] for u in run(big).updates] == [u["train_loss"] for u in run(exact).updates]
    setup = build(big)
    trainer = local_trainer(None, [c.dataset for c in setup.clients], big)
    steps = JobSteps.gather([LocalJob(0, 0, 0, setup.model.state())], trainer.samples, big)
    assert steps.x.shape[2] == 200  # not 100,000 rows of padding


def test_a_config_that_cannot_fit_is_refused_up_front_with_an_estimate():
    huge = AsyncConfig(num_clients=10_000, concurrency=10, samples_per_client=1_000_000,
                       input_dim=4096)
    with pytest.raises(ValueError, match=r"needs about [\d,.]+ GiB of memory \(training data"):
        run(huge)
    models = AsyncConfig(num_clients=10_000, concurrency=10_000, samples_per_client=1,
                         input_dim=4096, hidden_dim=4096)
    with pytest.raises(ValueError, match=r"\(models [\d,.]+ GiB.*lower concurrency"):
        run(models)
    # The estimate itself, against a small machine: the default config fits in 1 GiB.
    memory.check_data_fits(AsyncConfig(), limit=2**30)
    with pytest.raises(ValueError, match="more than this machine.s 1 MiB"):
        memory.check_data_fits(AsyncConfig(), limit=2**20)


def test_a_failing_cli_run_prints_one_line_and_exits_1(capsys):
    assert main(["--num-clients", "10000", "--samples-per-client", "1000000",
                 "--input-dim", "4096"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: this config needs about") and err.count("\n") == 1


def test_replace_with_an_unknown_setting_names_it_and_the_nearest():
    from fedasync_lib.core.config import AsyncConfig

    with pytest.raises(TypeError, match=r"no setting 'max_updates'.*did you mean 'num_updates'"):
        AsyncConfig().replace(max_updates=5)
