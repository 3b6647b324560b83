"""Clients that come and go: the daily cycle, traces, dropout with a timeout, and what
History records of them (idle slots, dropped jobs)."""

import math

import numpy as np
import pytest

from fedasync_lib import AsyncConfig, run
from fedasync_lib.core.availability import (HOURS_PER_DAY, DailyCycle, Trace, availability_model,
                                            available_share)

BASE = AsyncConfig(dataset="digits", learning_rate=0.1, num_updates=150, eval_every=50,
                   heterogeneity=1.0, max_staleness=None)


@pytest.mark.parametrize("share,amplitude", [(0.5, 1.0), (0.3, 0.5), (0.8, 1.0), (0.6, 0.0)])
def test_a_daily_cycle_gives_each_client_the_share_its_parameters_imply(share, amplitude):
    cfg = AsyncConfig(availability="daily", availability_share=share,
                      availability_amplitude=amplitude, day_length=24.0, seed=3)
    model = availability_model(cfg)
    days = 300
    for client in range(0, cfg.num_clients, 4):
        p = model.probabilities(client)
        seen = np.array([model.is_available(client, h + 0.5) for h in range(days * HOURS_PER_DAY)])
        # hours are independent coins with the probabilities p: the share's standard error
        se = math.sqrt(days * float((p * (1 - p)).sum())) / (days * HOURS_PER_DAY)
        implied = model.implied_share(client)
        assert abs(seen.mean() - implied) <= 4 * se + 1e-12, (client, seen.mean(), implied, se)
        if amplitude == 0 or share <= 0.5:  # no clipping: the share is the parameter itself
            assert implied == pytest.approx(share, abs=1e-12)
        # each hour of the day on its own, over the days: its own probability
        by_hour = seen.reshape(days, HOURS_PER_DAY).mean(axis=0)
        assert np.all(np.abs(by_hour - p) <= 4 * np.sqrt(p * (1 - p) / days) + 1e-12)


def test_the_daily_cycle_puts_clients_in_different_time_zones():
    model = DailyCycle(AsyncConfig(availability="daily", availability_share=0.5, day_length=24.0))
    peaks = {int(np.argmax(model.probabilities(c))) for c in range(20)}
    assert len(peaks) >= 8  # each client's own phase: the peaks spread over the day


def test_a_run_hands_the_model_only_to_available_clients_and_slots_wait_for_them():
    cfg = BASE.replace(availability="daily", availability_share=0.3, day_length=20.0)
    h = run(cfg, "fedasync")
    model = availability_model(cfg)
    assert all(model.is_available(u["client_id"], u["start_time"]) for u in h.updates)
    always = run(BASE, "fedasync")
    assert h.idle_slot_time > 0 and always.idle_slot_time == 0


def test_next_available_agrees_with_is_available():
    model = DailyCycle(AsyncConfig(availability="daily", availability_share=0.2, day_length=7.3))
    for client in range(5):
        for t in np.linspace(0, 50, 97):
            nxt = model.next_available(client, float(t))
            assert nxt >= t and model.is_available(client, nxt)
            # nothing available in between (checked on a grid finer than an hour)
            between = np.arange(t, nxt - 1e-9, 7.3 / HOURS_PER_DAY / 3)
            assert not any(model.is_available(client, float(s)) for s in between)


TRACE = [[(0.0, 1000.0)]] + [[(5.0, 7.5), (20.0, 30.0)]] + [[]] * 4


def test_a_trace_is_followed_to_the_second():
    cfg = BASE.replace(num_clients=6, concurrency=6, availability="trace", availability_trace=TRACE,
                       num_updates=120, heterogeneity=0.0, jitter=0.0, mean_latency=0.7)
    h = run(cfg, "fedasync")
    starts = {c: sorted(u["start_time"] for u in h.updates if u["client_id"] == c) for c in range(6)}
    assert set(c for c in starts if starts[c]) == {0, 1}  # clients 2-5 never available
    # client 1 starts the moment each of its intervals opens, and only inside them
    assert starts[1][0] == 5.0
    assert min(s for s in starts[1] if s >= 7.5) == 20.0
    assert all(5.0 <= s < 7.5 or 20.0 <= s < 30.0 for s in starts[1])
    # a job started inside an interval runs to its end (availability gates starting only)
    assert any(u["arrival_time"] > 7.5 for u in h.updates
               if u["client_id"] == 1 and u["start_time"] < 7.5)
    model = Trace(cfg.availability_trace)
    assert available_share(model, 1, 40.0, 0.5) == pytest.approx(12.5 / 40.0)


def test_a_trace_that_ends_with_nothing_in_flight_is_a_clear_error():
    trace = [[(0.0, 2.0)], [(0.0, 3.0)]]
    cfg = BASE.replace(num_clients=2, concurrency=2, availability="trace", availability_trace=trace,
                       heterogeneity=0.0, jitter=0.0, num_updates=50)
    with pytest.raises(RuntimeError, match="no client will ever be available again"):
        run(cfg, "fedasync")


@pytest.mark.parametrize("algorithm", ["fedasync", "fedbuff", "fedavg"])
def test_a_dropped_job_frees_its_slot_after_the_timeout_and_is_never_applied(algorithm):
    cfg = BASE.replace(dropout=0.3, job_timeout=3.0, concurrency=8, buffer_size=4)
    h = run(cfg, algorithm)
    assert len(h.updates) == cfg.num_updates
    dropped = [d for d in h.dropped if d["reason"] == "dropped"]
    assert len(dropped) > 10
    for d in h.dropped:
        assert d["freed_time"] == pytest.approx(d["start_time"] + cfg.job_timeout, abs=1e-9)
    gone = {(d["client_id"], d["start_time"]) for d in h.dropped}
    assert not gone & {(u["client_id"], u["start_time"]) for u in h.updates}
    # a freed slot: the client may start again at its freeing, never before
    for d in dropped:
        later = [u["start_time"] for u in h.updates if u["client_id"] == d["client_id"]
                 and u["start_time"] > d["start_time"]]
        assert all(s >= d["freed_time"] for s in later)
    # never more than the slots in flight: updates, dropped and unfinished jobs together
    jobs = ([(u["start_time"], u["arrival_time"]) for u in h.updates]
            + [(d["start_time"], d["freed_time"]) for d in h.dropped]
            + [(j["start_time"], h.virtual_time) for j in h.unfinished])
    for t in np.linspace(0, h.virtual_time, 400):
        assert sum(s <= t < e for s, e in jobs) <= cfg.concurrency
    # the whole run: more dropout, more of the time lost to it
    assert h.virtual_time > run(BASE.replace(concurrency=8, buffer_size=4), algorithm).virtual_time


def test_a_job_that_outlasts_the_timeout_is_given_up_and_its_result_never_applied():
    cfg = BASE.replace(job_timeout=1.5, heterogeneity=1.5)  # slow clients take longer
    h = run(cfg, "fedasync")
    late = [d for d in h.dropped if d["reason"] == "late"]
    assert late and not [d for d in h.dropped if d["reason"] == "dropped"]
    assert h.column("arrival_time").max() > 0
    assert np.all(h.column("arrival_time") - h.column("start_time") <= cfg.job_timeout + 1e-9)
    slow = {d["client_id"] for d in late}
    fast = set(np.argsort(h.client_latency)[:5])
    assert not slow & fast


def test_synchronous_rounds_close_without_a_client_that_dropped_out():
    cfg = BASE.replace(dropout=0.2, job_timeout=4.0, num_updates=100)
    h = run(cfg, "fedavg")
    rounds = np.unique(h.column("version"))
    assert len(h.updates) == 100 and len(rounds) > 10
    # a round whose client dropped out averages the others' models at the timeout
    sizes = np.bincount(h.column("version").astype(int))
    assert (sizes[1:-1] < cfg.concurrency).any()


def test_defaults_leave_a_run_as_it_was():
    a = run(BASE, "fedasync")
    b = run(BASE.replace(availability="daily", availability_share=1.0, availability_amplitude=0.0),
            "fedasync")
    # available every hour (p = 1): the same run, draw for draw
    np.testing.assert_array_equal(a.column("client_id"), b.column("client_id"))
    assert a.final_accuracy == b.final_accuracy and b.dropped == []
    c = run(BASE.replace(job_timeout=1e6), "fedasync")  # a timeout never reached
    np.testing.assert_array_equal(a.column("arrival_time"), c.column("arrival_time"))
    assert a.final_accuracy == c.final_accuracy


@pytest.mark.parametrize("changes,phrase", [
    ({"dropout": 0.1}, "dropout=0.1 needs job_timeout"),
    ({"availability": "trace"}, "availability='trace' needs availability_trace"),
    ({"availability_trace": [[(0, 1)]] * 20}, "availability_trace is not read"),
    ({"availability": "trace", "availability_trace": [[(0, 1)]] * 3},
     "availability_trace has 3 clients: expected num_clients=20"),
    ({"availability": "trace", "availability_trace": [[(0, 1)]] * 19 + [[(2, 1)]]},
     "client 19 has the interval \\(2, 1\\)"),
    ({"availability": "trace", "availability_trace": [[(0, 2), (1, 3)]] * 20},
     "previous one ended at 2"),
    ({"availability": "trace", "availability_trace": [["ab"]] * 20},
     "per client, a sequence of \\(start, end\\) pairs"),
])
def test_availability_settings_that_do_not_fit_are_one_line_errors(changes, phrase):
    with pytest.raises(ValueError, match=phrase) as err:
        AsyncConfig(**changes)
    assert "\n" not in str(err.value)


def test_a_trace_given_as_lists_or_arrays_is_stored_as_tuples():
    cfg = AsyncConfig(num_clients=2, concurrency=2, availability="trace",
                      availability_trace=[np.array([[0, 1.5]]), [[2, 3]]])
    assert cfg.availability_trace == (((0.0, 1.5),), ((2.0, 3.0),))
    hash(cfg)
