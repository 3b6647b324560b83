"""Automatic feedback for the four exercises.

``check_exercise_N(...)`` runs the learner's code on small cases whose right
answers are known, then in a short real run, prints what is wrong in plain
words (or that all checks passed), and returns a :class:`~.feedback.Verdict`
that is true only when everything passed. A function that still raises
``NotImplementedError`` is reported as not written yet. Nothing the learner's
code does (an exception, a wrong type, an endless loop) makes a checker raise:
see :mod:`.feedback`.

:func:`pick` then chooses what the experiments use: the learner's code once
it passes, the library's reference implementation until then.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from ..algorithms.aggregator import MixingContext
from ..algorithms.hook_results import Untouched
from ..core.config import AsyncConfig
from ..core.update import Update
from .feedback import Feedback, Rejected, Verdict, pick, state_problem  # noqa: F401 (pick, Verdict: public)

# Kept for code that imported them from here.
_Feedback, _Rejected = Feedback, Rejected


def _short(config: AsyncConfig, updates: int) -> AsyncConfig:
    """``config`` cut to ``updates`` updates: the promise runs of the checkers."""
    return config.replace(num_updates=updates, eval_every=updates)


# --- Exercise 1: bounded staleness ----------------------------------------------------------
def check_exercise_1(accept: Callable, may_start: Callable) -> Verdict:
    """Checks ``accept(staleness, max_staleness)`` and
    ``may_start(version, in_flight_base_versions, max_staleness)``, each on its own:
    ``verdict["accept"]`` and ``verdict["may_start"]`` say which one passed."""
    fb = _Feedback("Exercise E1")

    def check_accept() -> None:
        cases = [
            ((3, 3), True, "accept(3, max_staleness=3) should be True: an update exactly at the "
                           "bound is kept (the bound is inclusive, staleness <= max_staleness)."),
            ((4, 3), False, "accept(4, max_staleness=3) should be False: 4 versions is more than "
                            "the bound allows, so the update is dropped."),
            ((0, 0), True, "accept(0, max_staleness=0) should be True: a fresh update is always kept."),
            ((10**6, None), True, "accept(1000000, max_staleness=None) should be True: None means "
                                  "there is no bound at all."),
        ]
        for args, right, message in cases:
            got = fb.call(accept, *args, what=f"accept{args}", returns="bool", hint=message)
            fb.expect(bool(got) == right, message)
        bound = 3
        fb.promise("accept", lambda: _bounded_run("drop", bound, accept=accept),
                   lambda h: _within_bound(fb, h, bound, "accept", dropped=True))

    def check_may_start() -> None:
        cases = [
            ((13, [11, 12], 4), True,
             "may_start(13, [11, 12], 4) should be True: the oldest job in flight is 13 - 11 = 2 "
             "versions behind, and the 2 jobs in flight (counting the new one, 2 others) could "
             "land first: 2 + 2 = 4 is within the bound (inclusive)."),
            ((14, [13, 10], 5), False,
             "may_start(14, [13, 10], 5) should be False: look at the OLDEST job in flight (the "
             "smallest base version, 10), not the newest or the first in the list: "
             "14 - 10 + 2 = 6 > 5."),
            ((13, [12, 12, 12], 3), False,
             "may_start(13, [12, 12, 12], 3) should be False: count the jobs in flight too. Each "
             "one could land before the oldest and make it staler: 13 - 12 + 3 = 4 > 3."),
            ((14, [], 0), True,
             "may_start(14, [], 0) should be True: with no job in flight there is nobody to wait for."),
            ((50, [0], None), True,
             "may_start(50, [0], None) should be True: None means there is no bound."),
            ((5, [5], 1), True,
             "may_start(5, [5], 1) should be True: 5 - 5 + 1 = 1 is within the bound (inclusive)."),
            ((5, [5], 0), False,
             "may_start(5, [5], 0) should be False: with a bound of 0 only one job may be in "
             "flight, or it could land 1 version stale."),
        ]
        for args, right, message in cases:
            got = fb.call(may_start, *args, what=f"may_start{args}", returns="bool", hint=message)
            fb.expect(bool(got) == right, message)
        bound = 3
        fb.promise("may_start", lambda: _bounded_run("wait", bound, may_start=may_start),
                   lambda h: _within_bound(fb, h, bound, "may_start", dropped=False))

    fb.part("accept", check_accept)
    fb.part("may_start", check_may_start)
    return fb.report()


def _bounded_run(policy: str, bound: int, **hook: Callable):
    """A short run of the lesson's experiment under ``policy`` with the learner's hook."""
    from ..runner import run
    from .lesson import LESSON, federated_data

    cfg = _short(LESSON.replace(staleness_policy=policy, max_staleness=bound), 60)
    return run(cfg, "fedasync", federated_data(cfg), **hook)


def _within_bound(fb: Feedback, h: Any, bound: int, name: str, dropped: bool) -> None:
    """In the run ``h``, no applied update is staler than ``bound`` (and, when dropping,
    every rejected one is)."""
    staleness, alpha = h.column("staleness"), h.column("alpha")
    too_stale = int(((staleness > bound) & (alpha > 0)).sum())
    fb.expect(too_stale == 0, f"in a short run with your {name} and max_staleness={bound}, "
                              f"{too_stale} applied updates were staler than the bound.")
    if dropped:
        wasted = int(((staleness <= bound) & (alpha == 0)).sum())
        fb.expect(wasted == 0, f"in a short run with your accept and max_staleness={bound}, "
                               f"{wasted} updates within the bound were dropped.")


# --- Exercise 2: priority scheduling ----------------------------------------------------------
def check_exercise_2(scheduler_class: Callable[..., Any]) -> Verdict:
    """Checks a scheduler class built as ``scheduler_class(update_order, client_order)`` with
    ``push_update(job, arrival_time, base_version)``, ``pop_update()``, ``len()`` and
    ``pick_client(idle, latency, delivered, gen)``: the update queue and the client
    choice each on their own."""
    fb = _Feedback("Exercise E2")
    arrivals = [("a", 1.0, 5), ("z", 2.0, 9), ("c", 3.0, 7), ("b", 3.5, 9)]
    name = getattr(scheduler_class, "__name__", "scheduler_class")

    def make(update_order: str, client_order: str) -> Any:
        return fb.call(scheduler_class, update_order, client_order, returns="value",
                       what=f"{name}({update_order!r}, {client_order!r})",
                       hint=f"The server creates it as {name}(update_order, client_order): its "
                            "__init__ must take those two arguments.")

    def check_queue() -> None:
        for order, right, wrong_hint in [
            ("arrival", ["a", "z", "c", "b"], "first come, first served: by arrival time"),
            ("freshest", ["z", "b", "c", "a"], "the update computed from the newest version first "
                                              "(highest base_version), ties in arrival order"),
        ]:
            sched = make(order, "random")
            for job, t, base in arrivals:
                fb.call(lambda: sched.push_update(job, t, base),
                        what=f"push_update({job!r}, {t}, {base})")
            length = fb.call(lambda: len(sched), what="len(scheduler)")
            fb.expect(length == 4, f"after 4 push_update calls len(scheduler) should be 4, got {length}.")
            got = [fb.call(lambda: sched.pop_update(), what="pop_update()", returns="value")
                   for _ in range(4)]
            if got != right:
                if order == "freshest" and got == ["a", "z", "c", "b"]:
                    problem = ("with update_order='freshest' your queue still pops in arrival order: "
                               "the priority must be the base version (newest first), not the time.")
                elif order == "freshest" and got[0] == "a":
                    problem = ("with update_order='freshest' you applied the stalest update first "
                               "(base version 5): the freshest has the HIGHEST base version, so "
                               "use -base_version as the priority in a min-heap.")
                elif order == "freshest" and got[:2] == ["b", "z"]:
                    problem = ("two updates from the same version (9) must leave in arrival order: "
                               "'z' arrived before 'b'. Add a tie-breaker, such as an arrival "
                               "counter, between the priority and the job.")
                else:
                    problem = f"with update_order={order!r} the order should be {right} ({wrong_hint}), got {got}."
                fb.expect(False, problem)
            else:
                fb.expect(True, "")

    def check_clients() -> None:
        latency, delivered = [3.0, 1.0, 2.0, 0.5], [4, 0, 1, 9]
        gen = np.random.default_rng(0)
        for order, idle, right, message in [
            ("fastest", [0, 1, 2], 1, "client_order='fastest' should pick client 1: the smallest "
                                      "typical job time among the IDLE clients [0, 1, 2] (client 3 "
                                      "is faster but busy)."),
            ("fewest", [0, 2, 3], 2, "client_order='fewest' should pick client 2: it delivered the "
                                     "fewest updates (1) among the idle clients [0, 2, 3]."),
        ]:
            sched = make("arrival", order)
            got = fb.call(lambda: sched.pick_client(list(idle), latency, delivered, gen),
                          what=f"pick_client with client_order={order!r}", returns="int")
            fb.expect(got == right, message + f" Yours picked {got}.")
        sched = make("arrival", "random")
        picks = [int(fb.call(lambda: sched.pick_client([0, 2, 3], latency, delivered, gen),
                             what="pick_client with client_order='random'", returns="int"))
                 for _ in range(300)]
        counts = {c: picks.count(c) for c in (0, 2, 3)}
        fb.expect(set(picks) <= {0, 2, 3}, "client_order='random' picked a client that is not idle.")
        fb.expect(min(counts.values()) >= 60,
                  f"client_order='random' should pick each idle client about equally often "
                  f"using the generator `gen`; over 300 picks from [0, 2, 3] yours gave {counts}.")

    def check_runs() -> None:
        from ..runner import server_for
        from .experiments import SCHEDULING, speed_skewed_digits

        cfg = _short(SCHEDULING, 80)

        def clients_chosen(update_order: str, client_order: str):
            server = server_for(cfg, "fedasync", speed_skewed_digits(SCHEDULING),
                                scheduler=scheduler_class(update_order, client_order))
            return [u["client_id"] for u in server.train().updates]

        for update_order, client_order in (("freshest", "fewest"), ("arrival", "random")):
            box = {}
            fb.promise(f"scheduler ({update_order!r}, {client_order!r})",
                       lambda: box.setdefault("first", clients_chosen(update_order, client_order)))
            fb.promise(f"scheduler ({update_order!r}, {client_order!r})",
                       lambda: box.setdefault("second", clients_chosen(update_order, client_order)))
            fb.expect(box["first"] == box["second"],
                      f"two runs with the same seed and your scheduler ({update_order!r}, "
                      f"{client_order!r}) chose different clients: draw random numbers only "
                      "from the generator `gen` that pick_client is given, so that a run "
                      "repeats.")

    fb.part("the update queue (push_update, pop_update, len)", check_queue)
    fb.part("pick_client", check_clients)
    if all(fb.results.values()):  # the experiment uses the scheduler only when both parts pass
        fb.part("the scheduler in a run", check_runs)
    return fb.report()


# --- Exercise 3: adaptive mixing ---------------------------------------------------------------
def example_context(staleness: int, distance: float, alpha: float) -> MixingContext:
    """A mixing context whose client model lies at relative ``distance`` from the server's."""
    server = {"w": torch.ones(8), "b": torch.zeros(2)}
    norm = math.sqrt(8.0)
    direction = torch.tensor([1.0, -1.0] * 4) / math.sqrt(8.0)
    client = {"w": server["w"] + distance * norm * direction, "b": server["b"].clone()}
    update = Update(client, client_id=0, base_version=20 - staleness, num_samples=50,
                    base_state=server)
    cfg = AsyncConfig(mixing_alpha=alpha, max_staleness=None)
    return MixingContext(update, staleness, server, version=20, time=10.0, config=cfg)


def check_exercise_3(rule: Callable[[MixingContext], float]) -> Verdict:
    """Checks an adaptive mixing rule ``rule(ctx) -> alpha_t``: a rate in [0, alpha] that
    shrinks with staleness and with the distance between the client's and the server's model."""
    fb = _Feedback("Exercise E3")
    alpha = 0.8
    stalenesses = [0, 1, 2, 5, 10, 40]
    distances = [0.001, 0.05, 0.2, 1.0, 10.0]

    def check_rule() -> None:
        grid = {}
        for t in stalenesses:
            for d in distances:
                ctx = example_context(t, d, alpha)
                untouched = Untouched("your rule", {"ctx.server_state": ctx.server_state,
                                                    "ctx.update.state_dict": ctx.update.state_dict})
                got = fb.call(rule, ctx, returns="number",
                              what=f"your rule at staleness {t}, distance {d}")
                try:
                    untouched.check()
                except ValueError as err:
                    fb.fail(f"{err}.")
                ok = 0.0 <= got <= alpha + 1e-12
                if not fb.expect(ok, f"alpha_t must be a number between 0 and mixing_alpha "
                                     f"({alpha}); at staleness {t} and distance {d} yours "
                                     f"returned {got!r}."):
                    raise _Rejected  # one example is enough
                grid[t, d] = float(got)
        fresh = grid[0, 0.001]
        fb.expect(abs(fresh - alpha) < 1e-6,
                  f"a fresh update (staleness 0) that lands close to the server model should get "
                  f"the full rate mixing_alpha = {alpha}; yours gave {fresh:.4g}.")
        for d in distances:
            row = [grid[t, d] for t in stalenesses]
            if any(b > a + 1e-12 for a, b in zip(row, row[1:])):
                fb.expect(False, f"weights must not grow with staleness: at distance {d} your "
                                 f"alpha_t for staleness {stalenesses} is {np.round(row, 4).tolist()}.")
                break
        fb.expect(grid[40, 0.001] < grid[0, 0.001] - 1e-6,
                  "your rate does not react to staleness: an update 40 versions old gets as much "
                  "weight as a fresh one. Multiply by a staleness function s(t).")
        for t in stalenesses:
            col = [grid[t, d] for d in distances]
            if any(b > a + 1e-12 for a, b in zip(col, col[1:])):
                fb.expect(False, f"a client model farther from the server's must not get MORE weight: "
                                 f"at staleness {t}, for distances {distances} yours gives "
                                 f"{np.round(col, 4).tolist()}.")
                break
        fb.expect(grid[0, 10.0] < grid[0, 0.001] - 1e-6,
                  "your rate ignores the second signal: an update whose model lies 10x the "
                  "server model's norm away gets as much weight as one right next to it. Use "
                  "fedasync_lib.adaptive.model_distance(ctx.update.state_dict, ctx.server_state).")
        fb.promise("mixing rule", lambda: _mixing_run(rule))

    fb.part("the mixing rule", check_rule)
    return fb.report()


def _mixing_run(rule: Callable):
    """A short run of the lesson's experiment with the learner's mixing rule."""
    from ..runner import run
    from .lesson import LESSON, federated_data

    cfg = _short(LESSON, 60)
    return run(cfg, "fedasync", federated_data(cfg), mixing_rule=rule)


# --- Exercise 4: the FedBuff server step ---------------------------------------------------------
def check_exercise_4(buffer_step: Callable) -> Verdict:
    """Checks ``buffer_step(server_state, buffered, server_lr)``: buffered is a list of
    ``(delta, staleness)``; the result is x + server_lr * mean_i(delta_i / sqrt(1 + staleness_i)),
    for every key of the state and any number of buffered updates."""
    fb = _Feedback("Exercise E4")

    def check_step() -> None:
        server = {"w": torch.tensor([1.0, 2.0])}
        buffered = [({"w": torch.tensor([1.0, 0.0])}, 0), ({"w": torch.tensor([0.0, 3.0])}, 3)]
        before = [server["w"].clone()] + [d["w"].clone() for d, _ in buffered]
        right = [2.0, 3.5]
        mistakes = [  # (what the mistake gives, the mistake, the fix)
            ([2.0, 5.0], "no staleness scaling", "divide each delta by sqrt(1 + staleness)"),
            ([3.0, 5.0], "a sum instead of a mean", "divide the sum by the buffer size K"),
            ([2.0, 2.75], "1 / (1 + staleness) instead of 1 / sqrt(1 + staleness)",
             "take the square root"),
            ([1.5, 2.75], "no server learning rate", "multiply the mean by server_lr"),
        ]
        out = fb.call(buffer_step, server, buffered, 2.0, what="buffer_step(...)", returns="state")
        problem = state_problem(out, server, "buffer_step")
        if problem:
            fb.fail(problem)
        got = [round(float(v), 6) for v in out["w"].tolist()]
        problem = (f"for x = [1, 2], deltas [1, 0] (staleness 0) and [0, 3] (staleness 3) "
                   f"and server_lr 2, the new state is {right}; yours gave {got}")
        for result, mistake, fix in mistakes:
            if got == result:
                problem += f": that is what {mistake} gives. Fix: {fix}"
        fb.expect(got == right, problem + ".")
        after = [server["w"]] + [d["w"] for d, _ in buffered]
        fb.expect(all(torch.equal(x, y) for x, y in zip(before, after)),
                  "buffer_step changed its inputs in place: build and return a new state instead.")

        # Any state (several keys, several shapes) and any buffer, from 1 update to 5.
        gen = torch.Generator().manual_seed(4)
        state = {"layer.weight": torch.randn(3, 2, generator=gen),
                 "layer.bias": torch.randn(3, generator=gen)}
        for k, lr in ((1, 1.0), (2, 0.5), (3, 3.0), (5, 1.5)):
            buffer = [({key: torch.randn(v.shape, generator=gen) for key, v in state.items()}, s)
                      for s in (8, 0, 3, 1, 15)[:k]]
            expected = {key: state[key] + lr * sum(d[key] / math.sqrt(1.0 + s)
                                                   for d, s in buffer) / k for key in state}
            what = f"buffer_step with {k} buffered update{'s' if k > 1 else ''}"
            out = fb.call(buffer_step, state, buffer, lr, what=what, returns="state",
                          hint=f"The state may have any keys (here {sorted(state)}) and the "
                               "buffer any length: loop over both.")
            problem = state_problem(out, state, what)
            if problem:
                fb.fail(problem)
            wrong = [key for key in state if not torch.allclose(out[key], expected[key], atol=1e-5)]
            fb.expect(not wrong, f"{what} (server_lr {lr}, stalenesses "
                                 f"{[s for _, s in buffer]}): wrong values for {wrong}. "
                                 "The step is x + server_lr * (1/K) * sum_i delta_i / "
                                 "sqrt(1 + staleness_i), for every key, with K the number of "
                                 "buffered updates.")
        fb.promise("buffer_step", lambda: _fedbuff_run(buffer_step))

    fb.part("buffer_step", check_step)
    return fb.report()


def _fedbuff_run(step: Callable):
    """A short FedBuff run of Exercise 4's experiment with the learner's server step."""
    from ..runner import run
    from .experiments import SYNC_VS_ASYNC
    from .lesson import federated_data

    cfg = _short(SYNC_VS_ASYNC.replace(heterogeneity=1.5), 60)
    return run(cfg, "fedbuff", federated_data(cfg), buffer_step=step)
