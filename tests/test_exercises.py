"""Each checker passes the reference implementation, reports a stub as not written,
and rejects plausible wrong answers with a message that names the mistake."""

import heapq
import math
import re

import pytest

from fedasync_lib import adaptive, bounded
from fedasync_lib.teaching.exercises import (check_exercise_1, check_exercise_2, check_exercise_3,
                                    check_exercise_4, pick)
from fedasync_lib.algorithms.fedbuff import fedbuff_step
from fedasync_lib.core.scheduling import Scheduler


def stub(*args, **kwargs):
    raise NotImplementedError


def run(check, *args, capsys):
    ok = check(*args)
    return ok, capsys.readouterr().out


# --- Exercise 1 --------------------------------------------------------------------
def test_ex1_reference_passes(capsys):
    ok, out = run(check_exercise_1, bounded.accept, bounded.may_start, capsys=capsys)
    assert ok and re.search(r"all \d+ checks passed", out)


def test_ex1_stub_is_not_written(capsys):
    ok, out = run(check_exercise_1, stub, stub, capsys=capsys)
    assert not ok and "not written yet" in out


@pytest.mark.parametrize("accept,may_start,phrase", [
    (lambda s, m: m is None or s < m, bounded.may_start, "bound is inclusive"),
    (lambda s, m: s <= m, bounded.may_start, "None means there is no bound"),
    (lambda s, m: True, bounded.may_start, "is dropped"),
    (bounded.accept, lambda v, b, m: m is None or not b or v - max(b) + len(b) <= m, "OLDEST job"),
    (bounded.accept, lambda v, b, m: m is None or not b or v - b[0] + len(b) <= m, "OLDEST job"),
    (bounded.accept, lambda v, b, m: m is None or v - min(b) + len(b) <= m, "nobody to wait for"),
    (bounded.accept, lambda v, b, m: m is None or not b or v - min(b) + len(b) < m, "inclusive"),
    # the rule of the first version of this lesson: bounds the start, not the arrival
    (bounded.accept, lambda v, b, m: m is None or not b or v - min(b) <= m, "count the jobs"),
])
def test_ex1_wrong_answers_are_explained(accept, may_start, phrase, capsys):
    ok, out = run(check_exercise_1, accept, may_start, capsys=capsys)
    assert not ok and phrase in out


# --- Exercise 2 --------------------------------------------------------------------
class FifoAlways(Scheduler):
    """Ignores the priority: always first come, first served."""

    def push_update(self, job, arrival_time, base_version):
        super().push_update(job, arrival_time, base_version) if self.update_order == "arrival" \
            else heapq.heappush(self._heap, (arrival_time, next(self._arrivals), job))


class StalestFirst(Scheduler):
    def push_update(self, job, arrival_time, base_version):
        key = arrival_time if self.update_order == "arrival" else base_version
        heapq.heappush(self._heap, (key, next(self._arrivals), job))


class NoTieBreak(Scheduler):
    def push_update(self, job, arrival_time, base_version):
        key = arrival_time if self.update_order == "arrival" else -base_version
        heapq.heappush(self._heap, (key, job, job))


class SlowestFirst(Scheduler):
    def pick_client(self, idle, latency, delivered, gen):
        if self.client_order == "fastest":
            return max(idle, key=lambda c: latency[c])
        return super().pick_client(idle, latency, delivered, gen)


class FastestOverall(Scheduler):
    """Picks the fastest client even when it is busy."""

    def pick_client(self, idle, latency, delivered, gen):
        if self.client_order == "fastest":
            return min(range(len(latency)), key=lambda c: latency[c])
        return super().pick_client(idle, latency, delivered, gen)


class AlwaysFirstIdle(Scheduler):
    def pick_client(self, idle, latency, delivered, gen):
        return idle[0] if self.client_order == "random" else super().pick_client(idle, latency, delivered, gen)


class FewestIgnoresCounts(Scheduler):
    def pick_client(self, idle, latency, delivered, gen):
        return idle[0] if self.client_order == "fewest" else super().pick_client(idle, latency, delivered, gen)


def test_ex2_reference_passes(capsys):
    ok, out = run(check_exercise_2, Scheduler, capsys=capsys)
    assert ok and "checks passed" in out


def test_ex2_stub_is_not_written(capsys):
    class Stub:
        def __init__(self, update_order, client_order):
            pass
        push_update = pop_update = pick_client = __len__ = stub
    ok, out = run(check_exercise_2, Stub, capsys=capsys)
    assert not ok and "not written yet" in out


@pytest.mark.parametrize("cls,phrase", [
    (FifoAlways, "still pops in arrival order"),
    (StalestFirst, "stalest update first"),
    (NoTieBreak, "tie-breaker"),
    (SlowestFirst, "smallest typical job time"),
    (FastestOverall, "is faster but busy"),
    (AlwaysFirstIdle, "about equally often"),
    (FewestIgnoresCounts, "fewest updates"),
])
def test_ex2_wrong_answers_are_explained(cls, phrase, capsys):
    ok, out = run(check_exercise_2, cls, capsys=capsys)
    assert not ok and phrase in out


# --- Exercise 3 --------------------------------------------------------------------
def test_ex3_reference_passes(capsys):
    ok, out = run(check_exercise_3, adaptive.staleness_and_distance(), capsys=capsys)
    assert ok and "checks passed" in out


def test_ex3_stub_is_not_written(capsys):
    ok, out = run(check_exercise_3, stub, capsys=capsys)
    assert not ok and "not written yet" in out


def grows_with_staleness(ctx):
    return min(ctx.config.mixing_alpha, 0.1 * (1 + ctx.staleness))


def trusts_far_models_more(ctx):
    d = adaptive.model_distance(ctx.update.state_dict, ctx.server_state)
    return ctx.config.mixing_alpha * (1 + ctx.staleness) ** -0.5 * min(1.0, 0.1 + d) / 1.1


def above_alpha(ctx):
    d = adaptive.model_distance(ctx.update.state_dict, ctx.server_state)
    return (1 + ctx.staleness) ** -0.5 * min(1.0, 0.1 / max(d, 1e-9))


@pytest.mark.parametrize("rule,phrase", [
    (grows_with_staleness, "must not grow with staleness"),
    (adaptive.staleness_only(), "ignores the second signal"),
    (trusts_far_models_more, "must not get MORE weight"),
    (above_alpha, "between 0 and mixing_alpha"),
    (lambda ctx: ctx.config.mixing_alpha, "does not react to staleness"),
    (lambda ctx: math.nan, "return a finite number"),
])
def test_ex3_wrong_answers_are_explained(rule, phrase, capsys):
    ok, out = run(check_exercise_3, rule, capsys=capsys)
    assert not ok and phrase in out


# --- Exercise 4 --------------------------------------------------------------------
def test_ex4_reference_passes(capsys):
    ok, out = run(check_exercise_4, fedbuff_step, capsys=capsys)
    assert ok and re.search(r"all \d+ checks passed", out)


def test_ex4_stub_is_not_written(capsys):
    ok, out = run(check_exercise_4, stub, capsys=capsys)
    assert not ok and "not written yet" in out


def no_scaling(x, buf, lr):
    return {k: x[k] + lr * sum(d[k] for d, _ in buf) / len(buf) for k in x}


def summed(x, buf, lr):
    return {k: x[k] + lr * sum(d[k] / math.sqrt(1 + s) for d, s in buf) for k in x}


def linear_scaling(x, buf, lr):
    return {k: x[k] + lr * sum(d[k] / (1 + s) for d, s in buf) / len(buf) for k in x}


def no_server_lr(x, buf, lr):
    return {k: x[k] + sum(d[k] / math.sqrt(1 + s) for d, s in buf) / len(buf) for k in x}


def in_place(x, buf, lr):
    for k in x:
        x[k] += lr * sum(d[k] / math.sqrt(1 + s) for d, s in buf) / len(buf)
    return x


@pytest.mark.parametrize("step,phrase", [
    (no_scaling, "no staleness scaling"),
    (summed, "a sum instead of a mean"),
    (linear_scaling, "1 / (1 + staleness)"),
    (no_server_lr, "no server learning rate"),
    (in_place, "changed its inputs in place"),
    (lambda x, buf, lr: [1, 2], "not a state dict like its input"),
])
def test_ex4_wrong_answers_are_explained(step, phrase, capsys):
    ok, out = run(check_exercise_4, step, capsys=capsys)
    assert not ok and phrase in out


def test_pick_prefers_learner_only_when_passed(capsys):
    assert pick("mine", "ref", True) == "mine"
    assert pick("mine", "ref", False) == "ref"
    assert "reference" in capsys.readouterr().out


# --- functions that return nothing, the wrong type, or are half written ---------------------
def no_return(*args):
    args[0]  # computes something, forgets to return it


@pytest.mark.parametrize("check,args", [
    (check_exercise_1, (no_return, bounded.may_start)),
    (check_exercise_1, (bounded.accept, no_return)),
    (check_exercise_3, (no_return,)),
    (check_exercise_4, (no_return,)),
])
def test_a_function_without_return_fails_and_is_told_why(check, args, capsys):
    ok, out = run(check, *args, capsys=capsys)
    assert not ok and "returned None: did you forget `return`?" in out
    assert "all" not in out.splitlines()[0]  # never "all N checks passed"


def test_a_scheduler_without_return_in_pop_or_pick_fails(capsys):
    class NoPop(Scheduler):
        def pop_update(self):
            super().pop_update()

    class NoPick(Scheduler):
        def pick_client(self, idle, latency, delivered, gen):
            super().pick_client(idle, latency, delivered, gen)

    for cls, part in ((NoPop, "pop_update()"), (NoPick, "pick_client")):
        ok, out = run(check_exercise_2, cls, capsys=capsys)
        assert not ok and f"{part}" in out and "did you forget `return`?" in out


def test_a_tensor_instead_of_a_number_gets_one_clear_message(capsys):
    import torch

    rule = adaptive.staleness_and_distance()
    ok, out = run(check_exercise_3, lambda ctx: torch.tensor(rule(ctx)), capsys=capsys)
    assert not ok and "returned a tensor" in out and "float(...) or .item()" in out
    assert out.count("returned a tensor") == 1 and "1 of 1 checks failed" in out
    ok, out = run(check_exercise_1, lambda s, m: torch.tensor(s <= m if m is not None else True),
                  bounded.may_start, capsys=capsys)
    assert not ok and out.count("returned a tensor") == 1 and "bool(...)" in out


def test_an_out_of_range_rule_is_reported_once(capsys):
    ok, out = run(check_exercise_3, lambda ctx: 1.5, capsys=capsys)
    assert not ok and out.count("must be a number between 0 and mixing_alpha") == 1


def test_each_function_of_exercise_1_is_judged_on_its_own(capsys):
    verdict, out = run(check_exercise_1, bounded.accept, stub, capsys=capsys)
    assert not verdict and verdict["accept"] and not verdict["may_start"]
    assert re.search(r"accept: all \d+ checks passed", out) and "may_start is not written yet" in out
    verdict, out = run(check_exercise_1, stub, bounded.may_start, capsys=capsys)
    assert not verdict["accept"] and verdict["may_start"] and "accept is not written yet" in out
    verdict, out = run(check_exercise_1, lambda s, m: True, stub, capsys=capsys)
    assert not verdict["accept"] and "is dropped" in out and "may_start is not written yet" in out


def test_each_part_of_the_scheduler_is_judged_on_its_own(capsys):
    class QueueOnly(Scheduler):
        def pick_client(self, idle, latency, delivered, gen):
            raise NotImplementedError

    verdict, out = run(check_exercise_2, QueueOnly, capsys=capsys)
    assert not verdict and verdict["the update queue (push_update, pop_update, len)"]
    assert "pick_client is not written yet" in out


def only_first_key(x, buffered, server_lr):
    """Half written: handles the key of the worked example only."""
    return {"w": x["w"] + server_lr * sum(d["w"] / math.sqrt(1 + s) for d, s in buffered)
            / len(buffered)}


def fixed_pair(x, buffered, server_lr):
    """Half written: assumes a buffer of exactly two updates."""
    (d1, s1), (d2, s2) = buffered[:2]
    return {k: x[k] + server_lr * (d1[k] / math.sqrt(1 + s1) + d2[k] / math.sqrt(1 + s2)) / 2
            for k in x}


def divides_by_two(x, buffered, server_lr):
    """Half written: a mean over a hard-coded buffer size of 2."""
    return {k: x[k] + server_lr * sum(d[k] / math.sqrt(1 + s) for d, s in buffered) / 2
            for k in x}


@pytest.mark.parametrize("step,phrase", [
    (only_first_key, "The state may have any keys"),
    (fixed_pair, "buffer_step with 1 buffered update raised ValueError"),
    (divides_by_two, "with K the number of buffered updates"),
])
def test_ex4_half_written_steps_fail_on_other_keys_and_buffer_sizes(step, phrase, capsys):
    ok, out = run(check_exercise_4, step, capsys=capsys)
    assert not ok and phrase in out
