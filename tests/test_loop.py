"""The one event loop: every algorithm is a policy of it, and what a run does
not read fails loudly instead of being ignored."""

import math

import numpy as np
import pytest
import torch

from fedasync_lib import AsyncClient, AsyncConfig, build, lesson, run
from fedasync_lib.algorithms import ALGORITHMS, FedBuff, ignored_fields
from fedasync_lib.algorithms.adaptive import model_distance
from fedasync_lib.core.policy import ALGORITHM_FIELDS, ServerModel

CFG = AsyncConfig(concurrency=6, heterogeneity=1.0, num_updates=60, eval_every=10)

#: A different valid value for every algorithm-specific field.
OTHER = {"max_staleness": 3, "staleness_policy": "wait", "staleness": "hinge",
         "staleness_weight_decay": 0.3, "poly_a": 1.5, "hinge_a": 2.0, "hinge_b": 1,
         "mixing": "sample_damping", "mixing_alpha": 0.3, "damping_constant": 7.0,
         "buffer_size": 4, "server_lr": 2.5, "server_optimizer": "adam", "server_momentum": 0.5,
         "server_beta2": 0.9, "server_epsilon": 0.1, "buffer_window": 1.5,
         "oversample": 1.5, "round_deadline": 2.0}


def fingerprint(h):
    return ([(u["client_id"], u["staleness"], u["alpha"], u["train_loss"]) for u in h.updates],
            [(e["update"], e["accuracy"]) for e in h.evals])


@pytest.mark.parametrize("algorithm,optimizer", [(a, "sgd") for a in sorted(ALGORITHMS)]
                         + [("fedbuff", "momentum"), ("fedbuff", "adam"), ("fedbuff", "window")])
def test_fields_an_algorithm_ignores_do_not_change_its_run_and_the_others_do(algorithm, optimizer):
    assert set(OTHER) == ALGORITHM_FIELDS
    # a tight bound, so that it acts; FedBuff's optimiser decides which of its settings count
    # ("window": FedBuff on a time window, which does not read buffer_size)
    window = 0.8 if optimizer == "window" else None
    optimizer = "sgd" if optimizer == "window" else optimizer
    cfg = CFG.replace(max_staleness=1, buffer_size=2, server_optimizer=optimizer, buffer_window=window)
    other = {**OTHER, "server_optimizer": "momentum" if optimizer == "adam" else "adam"}
    base = run(cfg, algorithm)
    ignored = ignored_fields(algorithm, cfg)
    for field in sorted(ALGORITHM_FIELDS):
        changed = run(cfg.replace(**{field: other[field]}), algorithm)
        if field in ignored:
            assert fingerprint(changed) == fingerprint(base), f"{algorithm} reads {field}"
        else:
            assert fingerprint(changed) != fingerprint(base), f"{algorithm} ignores {field}"


@pytest.mark.parametrize("algorithm,hook", [
    ("fedbuff", "mixing_rule"), ("fedavg", "accept"), ("fedavg", "may_start"),
    ("fedavg", "buffer_step"), ("fedasync", "buffer_step"), ("fedasync", "typo_hook"),
])
def test_a_hook_the_algorithm_does_not_read_raises_naming_both(algorithm, hook):
    with pytest.raises(ValueError, match=f"{hook}= is not read by {algorithm}"):
        run(CFG, algorithm, **{hook: lambda *a: 0.5})


@pytest.mark.parametrize("algorithm", ["fedasync", "fedbuff"])
def test_the_bound_hook_of_the_other_staleness_policy_raises(algorithm):
    with pytest.raises(ValueError, match="may_start= is not read .* staleness_policy='drop'"):
        run(CFG, algorithm, may_start=lambda v, b, m: True)
    with pytest.raises(ValueError, match="accept= is not read .* staleness_policy='wait'"):
        run(CFG.replace(staleness_policy="wait"), algorithm, accept=lambda s, m: True)


def test_an_unknown_algorithm_is_named():
    with pytest.raises(ValueError, match="algorithm='fedprox' is invalid"):
        run(CFG, "fedprox")


@pytest.mark.parametrize("num_updates", [57, 60, 1, 3])
def test_fedbuff_flushes_its_last_buffer_so_every_accepted_update_moves_the_model(num_updates):
    cfg = CFG.replace(num_updates=num_updates, buffer_size=4, max_staleness=None)
    h = run(cfg, "fedbuff")
    assert h.num_applied == num_updates and np.all(h.column("alpha") > 0)
    assert h.evals[-1]["version"] == math.ceil(num_updates / 4)  # one step per (partial) buffer
    # the contributions count exactly the updates that moved the model
    assert h.contributions().sum() == num_updates


def test_the_flush_changes_the_final_model():
    cfg = CFG.replace(num_updates=58, buffer_size=4, max_staleness=None)
    setup = build(cfg)
    policy = FedBuff(cfg)
    from fedasync_lib import AsyncServer
    server = AsyncServer(setup.model, setup.clients, setup.data.test, cfg, policy)
    history = server.train()
    assert server.version == 15 and history.evals[-1]["version"] == 15
    assert policy.buffer == []  # nothing left behind


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_algorithm_applies_what_it_records_and_stops_at_num_updates(algorithm):
    h = run(CFG.replace(max_staleness=2), algorithm)
    assert len(h.updates) == CFG.num_updates
    assert [e["update"] for e in h.evals] == list(range(0, 61, 10))
    # each applied update's step moved the version; rejected ones did not
    assert h.evals[-1]["version"] <= h.num_applied
    assert set(h.summary()) >= {"final_accuracy", "updates_applied", "virtual_time"}


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_one_divergence_rule_for_every_algorithm(algorithm):
    h = run(CFG.replace(learning_rate=10.0, mixing_alpha=1.0, server_lr=50.0, num_updates=200,
                        max_staleness=None), algorithm)
    assert h.diverged and math.isnan(h.final_accuracy) and math.isnan(h.tail_accuracy())
    assert len(h.updates) < 200  # it stopped early
    assert h.evals[-1]["update"] == len(h.updates)  # and evaluated where it stopped


def test_a_may_start_that_blocks_everyone_is_a_clear_error():
    with pytest.raises(RuntimeError, match="may_start refused every idle client"):
        run(CFG.replace(staleness_policy="wait"), "fedasync", may_start=lambda v, b, m: False)


def test_an_update_from_AsyncClient_train_works_with_fedbuff():
    cfg = CFG.replace(buffer_size=1, max_staleness=None)
    setup = build(cfg)
    state = setup.model.state()
    update = AsyncClient(0, setup.data.clients[0], cfg).train(state, version=0)
    server = ServerModel(state)
    weights = FedBuff(cfg).receive(server, update, staleness=0, time=0.0, index=0)
    assert weights == {0: pytest.approx(cfg.server_lr)} and server.version == 1
    for k in state:
        np.testing.assert_allclose(server.state[k], state[k] + cfg.server_lr *
                                   (update.state_dict[k] - state[k]), rtol=1.3e-6, atol=1e-5)


def test_model_distance_of_a_zero_reference_is_the_plain_norm():
    a = {"w": torch.tensor([3.0, 4.0])}
    zero = {"w": torch.zeros(2)}
    assert model_distance(a, zero) == pytest.approx(5.0)
    assert model_distance(a, a) == 0.0


def test_cached_histories_cannot_be_corrupted_by_a_caller():
    cfg = CFG.replace(dataset="digits", seed=7)
    first = lesson.simulate(cfg)
    first.updates.clear()
    first.evals[0]["accuracy"] = -1.0
    again = lesson.simulate(cfg)
    assert len(again.updates) == cfg.num_updates and again.evals[0]["accuracy"] >= 0
