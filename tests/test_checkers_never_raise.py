"""A checker gives a verdict on any code a learner can write: wrong dtypes and shapes,
numpy scalars, wrong signatures, exceptions of any kind, printing, endless loops and
in-place changes each end in one plain sentence, never in a traceback. And a pass is a
promise: what passes also works in the run that uses it."""

import math
import random
import sys
import time

import numpy as np
import pytest

from fedasync_lib import adaptive, bounded
from fedasync_lib.algorithms.fedbuff import fedbuff_step
from fedasync_lib.core.scheduling import Scheduler
from fedasync_lib.teaching import feedback, learner_code
from fedasync_lib.teaching.exercises import (check_exercise_1, check_exercise_2, check_exercise_3,
                                             check_exercise_4, pick)
from fedasync_lib.teaching.lesson_checks import check_hinge, check_mix, check_recount


def verdict(capsys, check, *args):
    result = check(*args)
    return result, capsys.readouterr().out


def float64_step(x, buf, lr):
    return {k: v.astype(np.float64) for k, v in fedbuff_step(x, buf, lr).items()}


def int_step(x, buf, lr):
    return {k: v.astype(np.int64) for k, v in fedbuff_step(x, buf, lr).items()}


def np_sqrt_step(x, buf, lr):
    """Right, written with numpy's sqrt: numpy 2 makes float32 / np.float64 a float64 array."""
    return {k: x[k] + lr * sum(d[k] / np.sqrt(1 + s) for d, s in buf) / len(buf) for k in x}


def scalar_step(x, buf, lr):
    return {k: float(v.sum()) for k, v in fedbuff_step(x, buf, lr).items()}


def extra_dim_step(x, buf, lr):
    return {k: v[None] for k, v in fedbuff_step(x, buf, lr).items()}


@pytest.mark.parametrize("step,phrase", [
    (int_step, "as int64, but the state is float32: keep its dtype"),
    (scalar_step, "not a state dict like its input"),
    (extra_dim_step, "with shape (1, 2), but the state's 'w' has shape (2,)"),
    (lambda x, buf, lr: {k: v.tolist() for k, v in x.items()}, "not a state dict like its input"),
    (lambda x, buf, lr: {**fedbuff_step(x, buf, lr), "extra": np.zeros(1, np.float32)}, "one entry per key"),
])
def test_exercise_4_judges_dtypes_and_shapes(step, phrase, capsys):
    ok, out = verdict(capsys, check_exercise_4, step)
    assert not ok and phrase in out and "Traceback" not in out


@pytest.mark.parametrize("step", [float64_step, np_sqrt_step])
def test_exercise_4_passes_a_right_step_in_another_float_precision(step, capsys):
    ok, out = verdict(capsys, check_exercise_4, step)
    assert ok and "all" in out and "passed" in out, out


def test_check_mix_passes_a_numpy_scalar_alpha_that_promotes_to_float64(capsys):
    ok, out = verdict(capsys, check_mix,
                      lambda s, c, a: {k: (1 - np.float64(a)) * s[k] + np.float64(a) * c[k] for k in s})
    assert ok, out


def test_check_mix_judges_integer_arrays(capsys):
    ok, out = verdict(capsys, check_mix,
                      lambda s, c, a: {k: ((1 - a) * s[k] + a * c[k]).astype(np.int64) for k in s})
    assert not ok and "as int64, but the state is float32" in out


def test_check_mix_judges_tensors_where_arrays_are_expected(capsys):
    torch = pytest.importorskip("torch")
    ok, out = verdict(capsys, check_mix,
                      lambda s, c, a: {k: torch.as_tensor((1 - a) * s[k] + a * c[k]) for k in s})
    assert not ok and "as a tensor, but the state holds numpy arrays" in out and "Traceback" not in out


def test_a_scheduler_with_the_wrong_signature_is_told_what_the_server_calls(capsys):
    class OneArgument(Scheduler):
        def __init__(self, update_order):
            super().__init__(update_order, "random")

    ok, out = verdict(capsys, check_exercise_2, OneArgument)
    assert not ok and "OneArgument('arrival', 'random') raised TypeError" in out
    assert "its __init__ must take those two arguments" in out


def test_a_scheduler_whose_choices_do_not_repeat_fails(capsys):
    class OwnRandomness(Scheduler):
        def pick_client(self, idle, latency, delivered, gen):
            if self.client_order == "random":
                return random.choice(idle)  # Python's global generator, not `gen`
            return super().pick_client(idle, latency, delivered, gen)

    ok, out = verdict(capsys, check_exercise_2, OwnRandomness)
    assert not ok and "chose different clients" in out and "`gen`" in out


def test_an_endless_loop_is_stopped_and_named(capsys, monkeypatch):
    monkeypatch.setattr(learner_code, "TIME_LIMIT", 0.5)

    def loops(ctx):
        while True:
            pass

    start = time.monotonic()
    ok, out = verdict(capsys, check_exercise_3, loops)
    assert time.monotonic() - start < 5
    assert not ok and "did not return within 0.5 s: is there a loop that never ends?" in out


def test_an_endless_loop_inside_a_run_is_stopped(capsys, monkeypatch):
    monkeypatch.setattr(feedback, "RUN_LIMIT", 1.0)
    def slow_in_runs(ctx):  # right on the checker's small cases (at time 10), endless in a run
        while ctx.time != 10.0:
            pass
        return adaptive.staleness_and_distance()(ctx)

    start = time.monotonic()
    ok, out = verdict(capsys, check_exercise_3, slow_in_runs)
    assert time.monotonic() - start < 10
    assert not ok and "a short run with your mixing rule did not finish within 1 s" in out


@pytest.mark.parametrize("error", [SystemExit(3), KeyError("time"), RecursionError("deep"),
                                   MemoryError(), AssertionError("mine")])
def test_any_exception_is_reported(error, capsys):
    def fails(*args):
        raise error

    for check, args in ((check_exercise_1, (fails, fails)), (check_exercise_3, (fails,)),
                        (check_exercise_4, (fails,)), (check_hinge, (fails,)), (check_mix, (fails,)),
                        (check_recount, (fails,))):
        ok, out = verdict(capsys, check, *args)
        assert not ok and f"raised {type(error).__name__}" in out


def test_printing_is_kept_out_of_the_verdict(capsys):
    def chatty(ctx):
        print("debug: staleness", ctx.staleness)
        return adaptive.staleness_and_distance()(ctx)

    ok, out = verdict(capsys, check_exercise_3, chatty)
    assert ok and "debug" not in out and "printed while it was checked" in out


def test_numpy_scalars_pass_and_then_work_in_the_run(capsys):
    rule = adaptive.staleness_and_distance()
    ok, out = verdict(capsys, check_exercise_3, lambda ctx: np.float32(rule(ctx)))
    assert ok, out
    ok, out = verdict(capsys, check_exercise_1, lambda s, m: np.bool_(bounded.accept(s, m)),
                      lambda v, b, m: np.bool_(bounded.may_start(v, b, m)))
    assert ok, out

    def as_numpy(updates, i):
        me = updates[i]
        return np.int64(sum(1 for o in updates[:i] if o["alpha"] > 0
                            and o["arrival_time"] > me["start_time"]))
    ok, out = verdict(capsys, check_recount, as_numpy)
    assert ok, out


def test_a_rule_that_changes_the_server_model_in_place_fails(capsys):
    rule = adaptive.staleness_and_distance()

    def zeroes(ctx):
        for v in ctx.server_state.values():
            v[...] = 0
        return rule(ctx)

    ok, out = verdict(capsys, check_exercise_3, zeroes)
    assert not ok and "changed one of its inputs in place" in out


def test_a_keyerror_in_recount_names_the_real_keys(capsys):
    ok, out = verdict(capsys, check_recount, lambda updates, i: updates[i]["time"])
    assert not ok and "raised KeyError: 'time'" in out and "'arrival_time'" in out


def test_the_boundary_slip_in_recount_is_named(capsys):
    from fedasync_lib import lesson

    def at_or_after(updates, i):
        me = updates[i]
        return sum(1 for o in updates[:i] if o["alpha"] > 0 and o["arrival_time"] >= me["start_time"])

    h = lesson.simulate(lesson.LESSON.replace(max_staleness=5))
    ok, out = verdict(capsys, check_recount, at_or_after, h.updates)
    assert not ok and "(>= where > is due)" in out


def test_pick_never_raises(capsys):
    class Unreadable:
        def __bool__(self):
            raise RuntimeError("no")
    assert pick("mine", "ref", Unreadable()) == "ref"
    assert pick("mine", "ref", np.bool_(True)) == "mine"


def test_in_the_browser_a_loop_that_never_ends_is_stopped_by_a_trace(monkeypatch):
    """Pyodide has neither timer signals nor threads: the time limit looks at the clock on each
    line of the learner's own code (here a function compiled as a notebook cell's is), and
    leaves library code untraced."""
    monkeypatch.setattr(learner_code.sys, "platform", "emscripten")
    monkeypatch.delattr(learner_code.signal, "setitimer")
    cell = {}
    exec(compile("def forever():\n    while True:\n        pass\n", "<ipython-input-1>", "exec"), cell)
    assert learner_code._time_limit(1.0).how == "trace"
    start = time.monotonic()
    outcome = learner_code.call(cell["forever"], seconds=0.3)
    assert outcome.timed_out and time.monotonic() - start < 2.0
    assert learner_code.call(lambda x: x + 1, 1, seconds=0.3).value == 2
    assert sys.gettrace() is None  # the trace is taken off again
    assert not learner_code._learners(learner_code.__file__)
    assert not learner_code._learners(np.__file__)
