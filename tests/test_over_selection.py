"""Synchronous FedAvg as production runs it: over-selection (``oversample``) and a round
deadline (``round_deadline``); late results discarded and counted."""

import math

import pytest

from fedasync_lib import AsyncConfig, run

CFG = AsyncConfig(concurrency=4, num_clients=12, heterogeneity=1.5, num_updates=120, eval_every=20)


def rounds(h):
    """The applied updates grouped by round: a round's clients all start from the model of
    its start, so by base version (steps happen only when a round closes)."""
    groups = {}
    for u in h.updates:
        if u["alpha"] > 0:
            groups.setdefault(u["base_version"], []).append(u)
    return [groups[v] for v in sorted(groups)]


def test_by_default_every_client_asked_is_waited_for():
    h = run(CFG, "fedavg")
    assert h.discarded == [] and all(u["staleness"] == 0 and u["alpha"] > 0 for u in h.updates)
    assert all(len(r) == CFG.concurrency for r in rounds(h)[:-1])


@pytest.mark.parametrize("oversample", [1.25, 1.5, 2.0])
def test_over_selection_closes_each_round_at_k_reports_and_discards_the_rest(oversample):
    h = run(CFG.replace(oversample=oversample), "fedavg")
    k = CFG.concurrency
    groups = rounds(h)
    assert len(groups) > 5
    assert all(len(r) == k for r in groups[:-1])  # the last may be cut short by num_updates
    late = set(h.discarded)
    assert late, "some asked clients reported after their round closed"
    for i, u in enumerate(h.updates):
        assert (u["alpha"] == 0) == (i in late)
    # a discarded result came from a round that had closed: the model had moved on
    assert all(h.updates[i]["staleness"] >= 1 for i in late)
    # the K reports of a round are its K fastest: none of its discarded ones came earlier
    for r in groups[:-1]:
        closed = max(u["applied_time"] for u in r)
        base = r[0]["base_version"]
        assert all(h.updates[i]["applied_time"] >= closed for i in late
                   if h.updates[i]["base_version"] == base)


@pytest.mark.parametrize("deadline", [0.4, 1.0, 3.0])
def test_a_deadline_closes_a_round_with_what_has_reported_whichever_comes_first(deadline):
    cfg = CFG.replace(oversample=1.5, round_deadline=deadline)
    h = run(cfg, "fedavg")
    groups = rounds(h)
    starts = sorted({u["start_time"] for u in h.updates})
    assert len(groups) > 3
    for r in groups[:-1]:
        opened = min(u["start_time"] for u in r)
        assert len(r) <= cfg.concurrency
        assert all(u["applied_time"] <= opened + deadline + 1e-9 for u in r)
        if len(r) < cfg.concurrency:  # closed by the deadline: the next round starts then
            assert any(abs(t - (opened + deadline)) < 1e-9 for t in starts)
    short = [r for r in groups[:-1] if len(r) < cfg.concurrency]
    if deadline <= 1.0:
        assert short, "a short deadline cut some rounds short"


def test_a_round_that_nobody_reports_to_in_time_makes_no_step():
    h = run(CFG.replace(round_deadline=0.01, num_updates=20), "fedavg")
    assert all(u["alpha"] == 0 for u in h.updates)  # every result came too late
    assert len(h.discarded) == 20
    assert all(e["version"] == 0 for e in h.evals)
