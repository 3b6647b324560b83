"""The lesson notebooks' checkers (Exercises 1.1, 3.1 and 4.1) cannot be fooled: a missing
return, a tensor, a wrong type, a half-written function or a known wrong formula fails,
with one plain message; the reference passes."""

import torch

from fedasync_lib import lesson
from fedasync_lib.algorithms import staleness
from fedasync_lib.algorithms.aggregator import mix as reference_mix
from fedasync_lib.teaching.lesson_checks import (check_hinge, check_mix, check_recount,
                                                 recount_staleness)


def verdict_and_text(capsys, check, *args):
    verdict = check(*args)
    return verdict, capsys.readouterr().out


# --- Exercise 1.1: recount -------------------------------------------------------------------
def test_reference_recount_matches_every_recorded_staleness(capsys):
    h = lesson.simulate(lesson.LESSON.replace(max_staleness=5))
    assert any(u["alpha"] == 0 for u in h.updates)  # the run has rejected updates to skip
    verdict, out = verdict_and_text(capsys, check_recount, recount_staleness, h.updates)
    assert verdict and "all" in out and "passed" in out


def test_recount_without_return_is_told_to_return(capsys):
    def recount(updates, i):
        sum(1 for u in updates[:i])
    verdict, out = verdict_and_text(capsys, check_recount, recount)
    assert not verdict and "did you forget `return`?" in out
    assert out.count("\n  - ") == 1  # one message, not one per case


def test_recount_returning_a_tensor_or_a_float(capsys):
    verdict, out = verdict_and_text(capsys, check_recount,
                                    lambda u, i: torch.tensor(recount_staleness(u, i)))
    assert not verdict and "tensor" in out and "int(...)" in out
    verdict, out = verdict_and_text(capsys, check_recount,
                                    lambda u, i: float(recount_staleness(u, i)))
    assert not verdict and "return a whole number (an int)" in out and "float" in out


def test_recount_that_counts_rejected_updates_is_named(capsys):
    def recount(updates, i):
        me = updates[i]
        return sum(1 for o in updates[:i] if o["arrival_time"] > me["start_time"])
    h = lesson.simulate(lesson.LESSON.replace(max_staleness=5))
    verdict, out = verdict_and_text(capsys, check_recount, recount, h.updates)
    assert not verdict and "rejected update too" in out
    assert "values differ from the recorded staleness" in out


def test_recount_that_ignores_start_times_fails(capsys):
    verdict, out = verdict_and_text(capsys, check_recount,
                                    lambda u, i: sum(1 for o in u[:i] if o["alpha"] > 0))
    assert not verdict and "start_time" in out


def test_recount_stub_is_not_written_yet(capsys):
    def recount(updates, i):
        raise NotImplementedError
    verdict, out = verdict_and_text(capsys, check_recount, recount)
    assert not verdict and verdict["recount"] is False and "not written yet" in out


# --- Exercise 3.1: hinge ---------------------------------------------------------------------
def paper_hinge(t, a, b):
    return float(staleness.hinge(a, b)(t))


def test_reference_hinge_passes(capsys):
    verdict, out = verdict_and_text(capsys, check_hinge, paper_hinge)
    assert verdict and "passed" in out


def test_fedlab_and_flgo_hinges_are_named(capsys):
    fedlab = lambda t, a, b: 1.0 if t <= b else 1.0 / (a * ((t - b) + 1))  # noqa: E731
    verdict, out = verdict_and_text(capsys, check_hinge, fedlab)
    assert not verdict and "1 / (a (t - b + 1))" in out
    flgo = lambda t, a, b: 1.0 if t <= b else 1.0 / (a * (t - b))  # noqa: E731
    verdict, out = verdict_and_text(capsys, check_hinge, flgo)
    assert not verdict and "1 / (a (t - b))" in out


def test_hinge_hard_coded_to_the_lesson_parameters_fails(capsys):
    verdict, out = verdict_and_text(capsys, check_hinge,
                                    lambda t, a, b: paper_hinge(t, 10.0, 4))
    assert not verdict and "Use the parameters a and b" in out


def test_hinge_without_return_tensor_or_string(capsys):
    def no_return(t, a, b):
        1.0 if t <= b else 1.0 / (a * (t - b) + 1)
    for fn, words in ((no_return, "did you forget `return`?"),
                      (lambda t, a, b: torch.tensor(paper_hinge(t, a, b)), "tensor"),
                      (lambda t, a, b: str(paper_hinge(t, a, b)), "return a number")):
        verdict, out = verdict_and_text(capsys, check_hinge, fn)
        assert not verdict and words in out and out.count("\n  - ") == 1


def test_hinge_without_the_threshold_fails(capsys):
    verdict, out = verdict_and_text(capsys, check_hinge, lambda t, a, b: 1.0 / (a * t + 1))
    assert not verdict and "should be 1.0000" in out


# --- Exercise 4.1: mix -------------------------------------------------------------------------
def test_reference_mix_passes(capsys):
    verdict, out = verdict_and_text(capsys, check_mix, reference_mix)
    assert verdict and "passed" in out


def test_swapped_mix_is_named(capsys):
    verdict, out = verdict_and_text(
        capsys, check_mix, lambda s, c, a: {k: (1 - a) * c[k] + a * s[k] for k in s})
    assert not verdict and "swapped the two models" in out


def test_in_place_mix_fails(capsys):
    def mix(server, client, alpha):
        for k in server:
            server[k] *= 1 - alpha
            server[k] += alpha * client[k]
        return server
    verdict, out = verdict_and_text(capsys, check_mix, mix)
    assert not verdict and "in place" in out


def test_half_written_mix_none_and_tensor(capsys):
    first_key_only = lambda s, c, a: {"w": (1 - a) * s["w"] + a * c["w"]}  # noqa: E731
    verdict, out = verdict_and_text(capsys, check_mix, first_key_only)
    assert not verdict and "one entry per key" in out
    verdict, out = verdict_and_text(capsys, check_mix, lambda s, c, a: None)
    assert not verdict and "did you forget `return`?" in out
    verdict, out = verdict_and_text(capsys, check_mix, lambda s, c, a: (1 - a) * s["w"] + a * c["w"])
    assert not verdict and "not a state dict" in out


def test_mix_that_ignores_alpha_fails(capsys):
    verdict, out = verdict_and_text(capsys, check_mix,
                                    lambda s, c, a: {k: 0.5 * s[k] + 0.5 * c[k] for k in s})
    assert not verdict and "[2, 8]" in out


def test_stubs_of_lesson_exercises_say_to_run_again(capsys):
    def stub(*args):
        raise NotImplementedError
    for check in (check_hinge, check_mix):
        verdict, out = verdict_and_text(capsys, check, stub)
        assert not verdict and "not written yet" in out and "run this cell again" in out


def test_recount_by_arrival_times_fails_on_a_tie(capsys):
    """Scanning the whole list by times (start < arrival < my arrival) miscounts two updates
    that land at the same instant: the order of handling decides."""
    def by_times(updates, i):
        me = updates[i]
        return sum(1 for u in updates if u["alpha"] > 0
                   and me["start_time"] < u["arrival_time"] < me["arrival_time"])
    verdict, out = verdict_and_text(capsys, check_recount, by_times)
    assert not verdict and "same instant" in out and "order of handling" in out, out


def test_recount_that_reads_the_recorded_staleness_is_told_it_is_hidden(capsys):
    verdict, out = verdict_and_text(capsys, check_recount, lambda u, i: u[i]["staleness"])
    assert not verdict and "KeyError" in out and "the staleness is what you recount" in out, out
    assert "'staleness'," not in out
