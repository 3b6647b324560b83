"""Bounded staleness (drop and wait), the scheduler, custom mixing rules,
FedBuff and synchronous FedAvg."""

import math

import numpy as np
import pytest

from fedasync_lib import AsyncConfig, run, run_fedasync, run_fedavg, run_fedbuff
from fedasync_lib import bounded
from fedasync_lib.core.scheduling import Scheduler
from fedasync_lib.runner import build
from fedasync_lib.core.training import LocalJob
from fedasync_lib.core.training_dense import DenseTrainer

HET = AsyncConfig(concurrency=10, heterogeneity=1.5, num_updates=150)


# --- bounded staleness -------------------------------------------------------------
def test_accept_is_inclusive_and_none_means_unbounded():
    assert bounded.accept(3, 3) and not bounded.accept(4, 3)
    assert bounded.accept(10**6, None)


def test_may_start_counts_the_oldest_job_and_the_jobs_that_could_land_first():
    assert bounded.may_start(version=13, in_flight_base_versions=[11, 12], max_staleness=4)
    assert not bounded.may_start(version=13, in_flight_base_versions=[11, 12], max_staleness=3)
    assert not bounded.may_start(version=14, in_flight_base_versions=[13, 10], max_staleness=5)
    assert bounded.may_start(version=99, in_flight_base_versions=[], max_staleness=0)
    assert not bounded.may_start(version=5, in_flight_base_versions=[5], max_staleness=0)
    assert bounded.may_start(version=99, in_flight_base_versions=[0], max_staleness=None)


def test_wait_policy_drops_nothing_bounds_staleness_and_costs_time():
    bound = 3
    drop = run_fedasync(HET.replace(max_staleness=bound))
    wait = run_fedasync(HET.replace(max_staleness=bound, staleness_policy="wait"))
    assert drop.num_rejected > 0 and wait.num_rejected == 0
    assert wait.column("staleness").max() == bound  # the bound holds, and is reached
    assert drop.column("staleness").max() > bound
    assert wait.virtual_time > drop.virtual_time  # clients waited
    starts, ends = wait.column("start_time"), wait.column("arrival_time")
    busy = max(((starts <= t) & (ends > t)).sum() for t in ends)
    assert busy <= HET.concurrency


def test_wait_policy_with_bound_zero_runs_one_job_at_a_time():
    h = run_fedasync(HET.replace(max_staleness=0, staleness_policy="wait", num_updates=60))
    assert h.column("staleness").max() == 0 and h.num_rejected == 0
    starts, arrivals = h.column("start_time"), h.column("arrival_time")
    assert np.all(starts[1:] >= arrivals[:-1])  # each job starts after the last one landed


@pytest.mark.parametrize("algorithm", ["fedasync", "fedbuff"])
@pytest.mark.parametrize("bound", [1, 2, 5])
def test_wait_policy_bounds_every_update_under_both_buffered_and_immediate_steps(algorithm, bound):
    h = run(HET.replace(max_staleness=bound, staleness_policy="wait", num_updates=80,
                        buffer_size=3), algorithm)
    assert h.column("staleness").max() <= bound and h.num_rejected == 0


def test_learner_bound_hooks_are_used():
    seen = []

    def accept_nothing_stale(staleness, max_staleness):
        seen.append(staleness)
        return staleness == 0

    h = run_fedasync(HET.replace(num_updates=60), accept=accept_nothing_stale)
    assert len(seen) == 60
    assert np.all((h.column("alpha") > 0) == (h.column("staleness") == 0))


# --- scheduling -------------------------------------------------------------------------
def test_scheduler_update_orders():
    fifo, fresh = Scheduler("arrival"), Scheduler("freshest")
    for name, arrival, base in [("a", 1.0, 5), ("b", 2.0, 9), ("c", 3.0, 7), ("d", 3.0, 9)]:
        fifo.push_update(name, arrival, base)
        fresh.push_update(name, arrival, base)
    assert [fifo.pop_update() for _ in range(4)] == ["a", "b", "c", "d"]
    assert [fresh.pop_update() for _ in range(4)] == ["b", "d", "c", "a"]


def test_scheduler_client_orders():
    latency, delivered = [3.0, 1.0, 2.0, 0.5], [4, 0, 0, 9]
    gen = np.random.default_rng(0)
    assert Scheduler(client_order="fastest").pick_client([0, 1, 2], latency, delivered, gen) == 1
    assert Scheduler(client_order="fewest").pick_client([0, 2, 3], latency, delivered, gen) == 2
    picks = {Scheduler().pick_client([0, 2, 3], latency, delivered, gen) for _ in range(50)}
    assert picks == {0, 2, 3}
    with pytest.raises(ValueError, match="client_order='slowest'"):
        Scheduler(client_order="slowest")


def test_update_order_decides_which_waiting_update_goes_first():
    cfg = HET.replace(apply_time=0.08, max_staleness=None)
    fifo = run_fedasync(cfg)
    fresh = run_fedasync(cfg.replace(update_order="freshest"))
    waits = fifo.column("applied_time") - fifo.column("arrival_time")
    assert waits.max() > 0 and np.all(waits >= 0)
    assert np.all(np.diff(fifo.column("arrival_time")) >= 0)  # first come, first served
    overtaken = 0
    for a, b in zip(fresh.updates, fresh.updates[1:]):
        if b["arrival_time"] <= a["applied_time"]:  # b was already waiting when a was chosen
            assert a["base_version"] >= b["base_version"]
            overtaken += b["arrival_time"] < a["arrival_time"]
    assert overtaken > 0
    # When the server is the bottleneck (150 updates x 0.08 s is most of the run), the
    # order also decides who is heard: a client is handed the model again only once
    # its update is taken up, so freshest-first keeps the fast clients cycling.
    assert fresh.jain_index() < fifo.jain_index()


@pytest.mark.parametrize("order", ["arrival", "freshest"])
def test_a_waiting_update_holds_its_client_so_the_queue_stays_bounded(order):
    h = run_fedasync(HET.replace(apply_time=0.08, max_staleness=None, update_order=order))
    for u in h.updates:  # no job of the same client started while its update waited
        assert not any(v["client_id"] == u["client_id"] and
                       u["arrival_time"] <= v["start_time"] < u["applied_time"] for v in h.updates)
    queued = [sum(v["arrival_time"] <= u["applied_time"] < v["applied_time"] for v in h.updates)
              for u in h.updates]
    assert max(queued) < HET.num_clients


def test_a_server_far_slower_than_its_clients_still_finishes_at_once():
    # 1e6 virtual seconds per update: the clients all wait for the server; nothing piles up.
    h = run_fedasync(HET.replace(apply_time=1e6, num_updates=8, eval_every=4))
    assert len(h.updates) == 8 and len(h.unfinished) <= HET.num_clients
    assert h.virtual_time < 1e6 * 8


def test_fewest_first_is_fairer_than_fastest_first():
    cfg = HET.replace(concurrency=5, num_updates=200, max_staleness=None)
    jain = {order: run_fedasync(cfg.replace(client_order=order)).jain_index()
            for order in ("fastest", "random", "fewest")}
    assert jain["fastest"] < jain["random"] < jain["fewest"]


# --- custom mixing --------------------------------------------------------------------
def test_mixing_rule_sets_alpha_and_bad_values_are_reported():
    h = run_fedasync(HET.replace(num_updates=50, max_staleness=None),
                     mixing_rule=lambda ctx: 0.3 / (1 + ctx.staleness))
    np.testing.assert_allclose(h.column("alpha"), 0.3 / (1 + h.column("staleness")))
    with pytest.raises(ValueError, match=r"mixing_rule returned 1\.5 \(float\): expected a number in \[0, 1\]"):
        run_fedasync(HET.replace(num_updates=5), mixing_rule=lambda ctx: 1.5)


# --- FedBuff ----------------------------------------------------------------------------
def test_fedbuff_steps_once_per_full_buffer_with_staleness_scaled_weights():
    cfg = HET.replace(buffer_size=4, server_lr=2.0, max_staleness=None)
    h = run_fedbuff(cfg)
    assert h.algorithm == "fedbuff"
    versions = h.column("version")
    np.testing.assert_array_equal(versions, np.arange(1, len(versions) + 1) // 4)
    # 150 = 37 full buffers of 4, then a last buffer of 2 that the run's end applies
    k = np.where(np.arange(150) < 148, 4, 2)
    np.testing.assert_allclose(h.column("alpha"), 2.0 / (k * np.sqrt(1 + h.column("staleness"))))
    assert h.num_applied == 150 and h.evals[-1]["version"] == 38
    assert h.final_accuracy > 0.3


def test_fedbuff_step_is_the_mean_of_scaled_deltas():
    cfg = AsyncConfig(buffer_size=2, server_lr=1.5, concurrency=2, num_updates=2, max_staleness=None)
    setup = build(cfg)
    from fedasync_lib.algorithms import FedBuff
    from fedasync_lib.core.policy import ServerModel
    from fedasync_lib.core.update import Update
    policy, server = FedBuff(cfg), ServerModel(setup.model.state())
    x0 = server.state
    jobs = [LocalJob(i, i, 0, x0) for i in range(2)]
    outs = DenseTrainer(setup.model, setup.data.clients, cfg).train(jobs)
    assert policy.receive(server, Update(outs[0][0], 0, 0, 200, base_state=x0), 0, 0.0, 0) == {}
    assert server.version == 0 and server.state is x0
    weights = policy.receive(server, Update(outs[1][0], 1, 0, 200, base_state=x0), 3, 0.0, 1)
    assert server.version == 1 and weights == pytest.approx({0: 1.5 / 2, 1: 1.5 / 4})
    for k in x0:
        expected = x0[k] + 1.5 * ((outs[0][0][k] - x0[k]) + (outs[1][0][k] - x0[k]) / 2.0) / 2
        np.testing.assert_allclose(server.state[k], expected, rtol=1.3e-6, atol=1e-5)


# --- FedAvg -------------------------------------------------------------------------------
def test_fedavg_rounds_wait_for_the_slowest_and_have_no_staleness():
    cfg = HET.replace(num_updates=95, eval_every=10)
    h = run_fedavg(cfg)
    assert h.algorithm == "fedavg" and np.all(h.column("staleness") == 0)
    assert len(h.updates) == 95 and h.column("version").max() == 10  # 9 rounds of 10, one of 5
    starts = sorted(set(h.column("start_time")))
    assert len(starts) == 10
    for v, start in enumerate(starts, 1):
        rnd = [u for u in h.updates if u["start_time"] == start]
        assert len(rnd) == (10 if v < 10 else 5)
        assert all(u["base_version"] == v - 1 for u in rnd)
        assert rnd[-1]["version"] == v  # the round is averaged when its slowest job lands
        assert rnd[-1]["arrival_time"] == max(r["arrival_time"] for r in rnd)
        assert sum(u["alpha"] for u in rnd) == pytest.approx(1.0)
        if v < 10:  # the next round starts when this one is averaged
            assert starts[v] == rnd[-1]["arrival_time"]
    assert [e["update"] for e in h.evals] == list(range(0, 91, 10)) + [95]


def test_fedavg_with_one_client_per_round_equals_fedasync_replacing_the_model():
    cfg = AsyncConfig(concurrency=1, num_updates=30, staleness="constant", mixing_alpha=1.0)
    sync, fedasync = run_fedavg(cfg), run_fedasync(cfg)
    assert [u["client_id"] for u in sync.updates] == [u["client_id"] for u in fedasync.updates]
    np.testing.assert_allclose(sync.column("arrival_time"), fedasync.column("arrival_time"))
    np.testing.assert_allclose(sync.column("accuracy", "evals"), fedasync.column("accuracy", "evals"),
                               atol=1e-6)


def test_fedavg_is_much_slower_than_async_under_heterogeneity():
    cfg = AsyncConfig(dataset="digits", learning_rate=0.1, heterogeneity=2.0, concurrency=10,
                      staleness="polynomial", max_staleness=None)
    assert run_fedavg(cfg).virtual_time > 10 * run_fedasync(cfg).virtual_time


def test_work_counts_finished_jobs_and_the_running_ones_up_to_now():
    for run in (run_fedasync, run_fedavg, run_fedbuff):
        h = run(HET.replace(num_updates=40, eval_every=10))
        assert h.evals[0]["work"] == 0.0
        for e in h.evals[1:]:
            now = e["time"]
            finished = sum(u["arrival_time"] - u["start_time"] for u in h.updates[:e["update"]])
            assert e["work"] >= finished - 1e-9  # never less than the finished jobs
            # never more than every slot busy since the start
            assert e["work"] <= HET.concurrency * now + 1e-9
        assert math.isfinite(h.final_accuracy)
    # async runs keep every slot busy: work is exactly concurrency x time (no waiting, no idle slot)
    h = run_fedasync(HET.replace(num_updates=40, eval_every=10))
    for e in h.evals:
        assert e["work"] == pytest.approx(HET.concurrency * e["time"])


def test_an_empty_custom_scheduler_is_used_not_replaced():
    calls = []

    class Counting(Scheduler):
        def pick_client(self, idle, latency, delivered, gen):
            calls.append(len(idle))
            return super().pick_client(idle, latency, delivered, gen)

    run_fedasync(HET.replace(num_updates=20), scheduler=Counting())
    assert len(calls) >= 20
