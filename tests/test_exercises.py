"""The four exercise checkers judge properties, not one formula: the reference and other
correct designs pass; a design that is safe but wasteful, or fits a few examples only,
fails with a message naming the property and a concrete case; a stub is "not written yet";
each function of an exercise is judged on its own."""

import heapq
import math
import re

import pytest
import numpy as np

from fedasync_lib import adaptive, bounded
from fedasync_lib.algorithms.fedbuff import fedbuff_step
from fedasync_lib.core.scheduling import Scheduler
from fedasync_lib.teaching.exercises import (check_bias_correction, check_exercise_1, check_exercise_2,
                                             check_exercise_3, check_exercise_4, exercise_3_reference, pick,
                                             worst_staleness)


def stub(*args, **kwargs):
    raise NotImplementedError


def run(check, *args, capsys, **kwargs):
    ok = check(*args, **kwargs)
    return ok, capsys.readouterr().out


PASSED = re.compile(r"all \d+ checks passed")


# --- Exercise 1 --------------------------------------------------------------------
def may_start_by_counting(version, bases, bound):
    """Another correct design: count, for the oldest job, the landings that could come first."""
    if bound is None or len(bases) == 0:
        return True
    could_land_first = len(bases) - 1 + 1  # the other jobs in flight, and the new one
    return (version - min(bases)) + could_land_first <= bound


def fits_the_examples(version, bases, bound):
    """Right on the first version's handful of cases, wrong elsewhere (ignores the count)."""
    return bound is None or not bases or version - min(bases) + 2 <= bound


@pytest.mark.parametrize("accept,may_start", [
    (bounded.accept, bounded.may_start),
    (lambda s, m: not (m is not None and s > m), may_start_by_counting),
])
def test_ex1_correct_designs_pass(accept, may_start, capsys):
    ok, out = run(check_exercise_1, accept, may_start, capsys=capsys)
    assert ok and PASSED.search(out), out


@pytest.mark.parametrize("accept,may_start,phrase", [
    # safe but wasteful: never two jobs at once honours every bound and idles the clients
    (bounded.accept, lambda v, b, m: m is None or not b, "the client sits idle for nothing"),
    (lambda s, m: m is None or s < m, bounded.may_start, "throws a client's work away for nothing"),
    (lambda s, m: True, bounded.may_start, "staler than the bound allows"),
    (lambda s, m: s <= m, bounded.may_start, "max_staleness may be None"),
    # unsafe: looks only at the newest job, or forgets that jobs land first
    (bounded.accept, lambda v, b, m: m is None or not b or v - max(b) + len(b) <= m,
     "more than the bound of"),
    (bounded.accept, lambda v, b, m: m is None or not b or v - min(b) <= m, "worst order"),
    (bounded.accept, fits_the_examples, "may_start("),
    (bounded.accept, lambda v, b, m: m is None or v - min(b) + len(b) <= m, "may be empty"),
])
def test_ex1_wrong_designs_are_named(accept, may_start, phrase, capsys):
    ok, out = run(check_exercise_1, accept, may_start, capsys=capsys)
    assert not ok and phrase in out, out


def test_ex1_worst_order_is_found_by_trying_every_order():
    assert worst_staleness(13, [11, 12]) == 4  # the job from 11 lands after the two others
    assert worst_staleness(14, [13, 10]) == 6
    assert worst_staleness(5, [5]) == 1
    assert worst_staleness(9, []) == 0


def test_ex1_each_function_is_judged_on_its_own(capsys):
    verdict, out = run(check_exercise_1, bounded.accept, stub, capsys=capsys)
    assert not verdict and verdict["accept"] and not verdict["may_start"]
    assert re.search(r"accept: all \d+ checks passed", out) and "may_start is not written yet" in out
    verdict, out = run(check_exercise_1, stub, stub, capsys=capsys)
    assert not verdict and "not written yet" in out


# --- Exercise 2 --------------------------------------------------------------------
class FewestFirst(Scheduler):
    def pick_client(self, idle, latency, delivered, gen):
        return min(idle, key=lambda c: (delivered[c], latency[c], c))


class LeastRecentlyAsked(Scheduler):
    """Another fair design: the idle client asked longest ago."""

    def __init__(self, update_order="arrival", client_order="random"):
        super().__init__(update_order, client_order)
        self.asked, self.clock = {}, 0

    def pick_client(self, idle, latency, delivered, gen):
        self.clock += 1
        choice = min(idle, key=lambda c: (self.asked.get(c, -1), c))
        self.asked[choice] = self.clock
        return choice


class SlowestFirst(Scheduler):
    def pick_client(self, idle, latency, delivered, gen):
        return max(idle, key=lambda c: (latency[c], c))


class StalestFirst(FewestFirst):
    def push_update(self, job, arrival_time, base_version):
        key = arrival_time if self.update_order == "arrival" else base_version
        heapq.heappush(self._heap, (key, next(self._arrivals), job))


class NoTieBreak(FewestFirst):
    def push_update(self, job, arrival_time, base_version):
        key = arrival_time if self.update_order == "arrival" else -base_version
        heapq.heappush(self._heap, (key, -len(self._heap), job))  # ties: last in, first out


class HeapWithoutTieBreak(FewestFirst):
    """(priority, job): fine while priorities differ, a crash on the server's jobs when they tie."""

    def __init__(self, update_order="arrival", client_order="random"):
        super().__init__(update_order, client_order)
        self.entries = []

    def push_update(self, job, arrival_time, base_version):
        key = arrival_time if self.update_order == "arrival" else -base_version
        heapq.heappush(self.entries, (key, job))

    def pop_update(self):
        return heapq.heappop(self.entries)[1]

    def __len__(self):
        return len(self.entries)


class SortedList(FewestFirst):
    """Another correct queue: a list kept sorted by priority alone (sort is stable)."""

    def __init__(self, update_order="arrival", client_order="random"):
        super().__init__(update_order, client_order)
        self.waiting = []

    def push_update(self, job, arrival_time, base_version):
        self.waiting.append((float(arrival_time) if self.update_order == "arrival"
                             else -int(base_version), job))
        self.waiting.sort(key=lambda entry: entry[0])

    def pop_update(self):
        return self.waiting.pop(0)[1]

    def __len__(self):
        return len(self.waiting)


class RoundRobin(SortedList):
    """Another fair client choice: the idle client next after the last one asked, in a cycle."""

    def __init__(self, update_order="arrival", client_order="random"):
        super().__init__(update_order, client_order)
        self.last = -1

    def pick_client(self, idle, latency, delivered, gen):
        n = len(latency)
        choice = min(idle, key=lambda c: (c - self.last - 1) % n)
        self.last = choice
        return choice


class PicksABusyClient(FewestFirst):
    def pick_client(self, idle, latency, delivered, gen):
        return max(range(len(latency)), key=lambda c: delivered[c])


@pytest.mark.parametrize("cls", [FewestFirst, LeastRecentlyAsked, SortedList, RoundRobin])
def test_ex2_fair_designs_pass(cls, capsys):
    ok, out = run(check_exercise_2, cls, capsys=capsys)
    assert ok and PASSED.search(out), out


@pytest.mark.parametrize("cls,phrase", [
    (Scheduler, "not fair enough"),  # random choice: valid, reproducible, unfair to slow clients
    (SlowestFirst, "fast ones are barely heard"),
    (StalestFirst, "newest base version first"),
    (NoTieBreak, "in the order they were pushed"),
    (PicksABusyClient, "not one of the idle clients"),
])
def test_ex2_wrong_designs_are_named(cls, phrase, capsys):
    ok, out = run(check_exercise_2, cls, capsys=capsys)
    assert not ok and phrase in out, out


def test_ex2_a_heap_without_a_tie_breaker_fails_and_would_crash_the_server(capsys):
    ok, out = run(check_exercise_2, HeapWithoutTieBreak, capsys=capsys)
    assert not ok and "the server's jobs cannot be compared" in out, out
    # and the checker is right: the server's own jobs crash it under freshest-first with queuing
    from fedasync_lib.teaching import experiments
    with pytest.raises(TypeError, match="not supported between instances"):  # seed 1 of four
        experiments.scheduling_run("freshest", "fewest", experiments.SCHEDULING.replace(seed=1),
                                   scheduler_class=HeapWithoutTieBreak)


@pytest.mark.parametrize("cls", [Scheduler, SlowestFirst, HeapWithoutTieBreak, NoTieBreak])
def test_ex2_gives_one_verdict(cls, capsys):
    """One problem, one sentence: never "not fair" and "fair, but costly" in one output."""
    ok, out = run(check_exercise_2, cls, capsys=capsys)
    assert not ok and len([line for line in out.splitlines() if line.startswith("  - ")]) == 1, out


def test_ex2_parts_are_judged_on_their_own(capsys):
    class QueueOnly(Scheduler):
        def pick_client(self, idle, latency, delivered, gen):
            raise NotImplementedError

    verdict, out = run(check_exercise_2, QueueOnly, capsys=capsys)
    assert not verdict and verdict["the update queue (push_update, pop_update, len)"]
    assert "pick_client is not written yet" in out


# --- Exercise 2.2: a correction of the fast-client bias, given as a factory -------------------
def counting_factory():
    """The reference design: a fresh rule with its own counts for each run."""
    heard = {}

    def correction(ctx):
        heard[ctx.update.client_id] = heard.get(ctx.update.client_id, 0) + 1
        share = heard[ctx.update.client_id] / sum(heard.values())
        return ctx.config.mixing_alpha * min(1.0, 1 / (ctx.config.num_clients * share)) * (1 + ctx.staleness) ** -0.5
    return correction


SHARED = {}


def shared_state_factory():
    """Counts kept at module level: one run's counts carry into the next."""
    def correction(ctx):
        SHARED[ctx.update.client_id] = SHARED.get(ctx.update.client_id, 0) + 1
        share = SHARED[ctx.update.client_id] / sum(SHARED.values())
        return ctx.config.mixing_alpha * min(1.0, 1 / (ctx.config.num_clients * share)) * (1 + ctx.staleness) ** -0.5
    return correction


def test_ex22_a_factory_with_its_own_state_passes(capsys):
    ok, out = run(check_bias_correction, counting_factory, capsys=capsys)
    assert ok and PASSED.search(out), out
    ok, out = run(check_bias_correction, adaptive.participation_weighted, capsys=capsys)
    assert ok and PASSED.search(out), out


@pytest.mark.parametrize("factory,phrase", [
    (shared_state_factory, "keep the rule's state (its counts) inside shared_state_factory"),
    (lambda: (lambda ctx: ctx.config.mixing_alpha * (1 + ctx.staleness) ** -0.5), "does not even out"),
    (lambda: 0.5, "not a function"),
    (lambda ctx: ctx, "takes no arguments"),
])
def test_ex22_wrong_designs_get_one_sentence(factory, phrase, capsys):
    ok, out = run(check_bias_correction, factory, capsys=capsys)
    assert not ok and phrase in out and out.count("  - ") == 1, out


def test_ex22_an_unwritten_stub_is_not_written_yet(capsys):
    ok, out = run(check_bias_correction, stub, capsys=capsys)
    assert not ok and "not written yet" in out and "small cases" not in out, out


# --- Exercise 3 --------------------------------------------------------------------
def by_size(ctx):
    """Another second signal: trust clients with more data more."""
    return ctx.config.mixing_alpha * (1 + ctx.staleness) ** -0.5 * min(1.0, ctx.update.num_samples / 100)


@pytest.mark.parametrize("rule,signal,direction", [
    (adaptive.staleness_and_distance(scale=0.1), None, "decreasing"),
    (adaptive.staleness_and_distance(scale=0.1),
     lambda ctx: adaptive.model_distance(ctx.update.state_dict, ctx.server_state), "decreasing"),
    (by_size, lambda ctx: ctx.update.num_samples, "increasing"),
    (exercise_3_reference(), None, "decreasing"),  # the rule the experiments fall back on
])
def test_ex3_designs_with_a_second_signal_pass(rule, signal, direction, capsys):
    ok, out = run(check_exercise_3, rule, signal, direction, capsys=capsys)
    assert ok and PASSED.search(out), out


def grows_with_staleness(ctx):
    return min(ctx.config.mixing_alpha, 0.1 * (1 + ctx.staleness))


@pytest.mark.parametrize("rule,phrase", [
    (grows_with_staleness, "a staler update must not get a larger rate"),
    (adaptive.staleness_only(), "depends on staleness only"),
    (lambda ctx: ctx.config.mixing_alpha, "does not react to staleness"),
    (lambda ctx: 1.5, "between 0 and mixing_alpha"),
    # safe (in bounds, monotone, two signals) but wasteful: the model crawls
    (lambda ctx: 0.001 * adaptive.staleness_and_distance()(ctx), "so cautious that the model learns slowly"),
])
def test_ex3_wrong_designs_are_named(rule, phrase, capsys):
    ok, out = run(check_exercise_3, rule, capsys=capsys)
    assert not ok and phrase in out, out


def test_ex3_the_declared_direction_is_checked(capsys):
    ok, out = run(check_exercise_3, by_size, lambda ctx: ctx.update.num_samples, "decreasing",
                  capsys=capsys)
    assert not ok and "you declared the rate decreasing in your second signal" in out


def test_ex3_stub_is_not_written(capsys):
    ok, out = run(check_exercise_3, stub, capsys=capsys)
    assert not ok and "not written yet" in out


# --- Exercise 4 --------------------------------------------------------------------
def stacked_step(x, buffered, server_lr):
    """Another correct implementation: stack the changes and weight them in one product."""
    w = np.array([1 / math.sqrt(1 + s) for _, s in buffered], np.float32)
    return {k: x[k] + server_lr * np.einsum("b,b...->...", w, np.stack([d[k] for d, _ in buffered]))
            / len(buffered) for k in x}


@pytest.mark.parametrize("step", [fedbuff_step, stacked_step])
def test_ex4_correct_steps_pass(step, capsys):
    ok, out = run(check_exercise_4, step, capsys=capsys)
    assert ok and PASSED.search(out), out


def in_place(x, buf, lr):
    for k in x:
        x[k] += lr * sum(d[k] / math.sqrt(1 + s) for d, s in buf) / len(buf)
    return x


def divides_by_two(x, buffered, lr):
    """Fits the worked example (two updates) only."""
    return {k: x[k] + lr * sum(d[k] / math.sqrt(1 + s) for d, s in buffered) / 2 for k in x}


@pytest.mark.parametrize("step,phrase", [
    (divides_by_two, "with 1 buffered update"),
    (lambda x, buf, lr: dict(list(fedbuff_step(x, buf, lr).items())[:1]), "one entry per key of the state"),
    (in_place, "changed one of its inputs in place"),
    (lambda x, buffered, server_lr: [1, 2], "not a state dict like its input"),
])
def test_ex4_wrong_steps_are_named(step, phrase, capsys):
    ok, out = run(check_exercise_4, step, capsys=capsys)
    assert not ok and phrase in out, out


def test_pick_prefers_the_learner_only_when_passed(capsys):
    assert pick("mine", "ref", True) == "mine"
    assert pick("mine", "ref", False) == "ref"
    assert "reference" in capsys.readouterr().out


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


# --- Exercise 4: each usual mistake gets its own sentence ---------------------------------------
def step_with(weight, divide, sign=1.0, lr_in=True):
    def step(state, buffered, server_lr):
        scale = (server_lr if lr_in else 1.0) * sign / divide(buffered)
        return {k: v + scale * sum(d[k] * weight(s) for d, s in buffered) for k, v in state.items()}
    return step


SQRT = lambda s: 1 / math.sqrt(1 + s)  # noqa: E731


@pytest.mark.parametrize("step,phrase", [
    (step_with(SQRT, lambda b: sum(SQRT(s) for _, s in b)), "divides by the sum of the weights"),
    (step_with(lambda s: 1.0, len), "does not weight the changes"),
    (step_with(lambda s: 1 / (1 + s), len), "its square root"),
    (step_with(SQRT, len, sign=-1.0), "against the changes"),
    (step_with(SQRT, len, lr_in=False), "leaves server_lr out"),
    (step_with(SQRT, lambda b: 1.0), "without averaging"),
    (step_with(SQRT, lambda b: 5.0), "divides by a fixed 5"),
    (step_with(lambda s: 1 / math.sqrt(2 + s), len), "not in one of the usual ways"),
])
def test_ex4_each_mistake_is_named(step, phrase, capsys):
    ok, out = run(check_exercise_4, step, capsys=capsys)
    assert not ok and phrase in out and out.count("  - ") == 1, out


def test_ex4_the_reference_and_another_correct_form_pass(capsys):
    ok, out = run(check_exercise_4, fedbuff_step, capsys=capsys)
    assert ok and PASSED.search(out), out
    ok, out = run(check_exercise_4, step_with(SQRT, len), capsys=capsys)
    assert ok and PASSED.search(out), out
