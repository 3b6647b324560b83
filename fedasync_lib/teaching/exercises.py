"""Automatic feedback for the four exercises, judged by properties rather than by one formula.

Each exercise asks the learner to *design* something, and gives the goal and the
invariant instead of the answer. Its checker therefore judges what the design
must do, not how it is written: another correct design passes, and a design that
is safe but wasteful, or fits a few examples only, fails with a sentence that
names the property and one concrete case.

=====  ===================================  ==========================================
E1     ``accept``, ``may_start``            no applied update staler than the bound, and
                                            no client kept idle when no order of
                                            arrivals could break it (checked against
                                            every landing order of the jobs in flight)
E2     ``pick_client`` (and the queue)      only idle clients, reproducible, fair to slow
                                            clients in the experiment, at a bounded cost
                                            in time
E3     a mixing rule                        a rate in [0, alpha], never larger for a
                                            staler update, reacting to a second signal
                                            (in the direction the learner declares), and
                                            learning in the experiment
E4     FedBuff's server step                the paper's update on random states of any
                                            keys, shapes and buffer sizes, dtypes kept
=====  ===================================  ==========================================

Each checker ends with a short real run of the learner's code, the way the
notebook's experiment will use it (:meth:`~.feedback.Feedback.promise`). Nothing the
learner's code does makes a checker raise (:mod:`.feedback`). :func:`pick` then
chooses what the experiments use.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..algorithms import adaptive, bounded
from ..algorithms.aggregator import MixingContext
from ..algorithms.hook_results import Untouched
from ..core.config import AsyncConfig
from ..core.model import frozen
from ..core.update import Update
from . import experiments
from .feedback import Feedback, Rejected, Verdict, pick, state_problem  # noqa: F401 (public)

# Kept for code that imported them from here.
_Feedback, _Rejected = Feedback, Rejected


def _short(config: AsyncConfig, updates: int) -> AsyncConfig:
    """``config`` cut to ``updates`` updates: the promise runs of the checkers."""
    return config.replace(num_updates=updates, eval_every=updates)


# --- Exercise 1: bounded staleness ----------------------------------------------------------
def worst_staleness(version: int, in_flight_base_versions: Sequence[int]) -> int:
    """The stalest any update could arrive if one more job started now at ``version``:
    the largest staleness over every order in which the jobs in flight and the new one
    could land (each landing applies one update). Found by trying the orders (up to 6 jobs)."""
    bases = [*in_flight_base_versions, version]
    worst = 0
    for order in itertools.permutations(range(len(bases))):
        for position, job in enumerate(order):  # the job landing at `position` finds version + position
            worst = max(worst, version + position - bases[job])
    return worst


def _states(seed: int = 0, count: int = 300):
    """Random states (version, bases of the jobs in flight, bound) for the may_start checks."""
    gen = np.random.default_rng(seed)
    for _ in range(count):
        version = int(gen.integers(0, 40))
        k = int(gen.integers(0, 5))
        bases = sorted(int(b) for b in gen.integers(max(0, version - 12), version + 1, size=k))
        gen.shuffle(bases)
        yield version, bases, int(gen.integers(0, 12))


def check_exercise_1(accept: Callable, may_start: Callable) -> Verdict:
    """Judges ``accept(staleness, max_staleness)`` (drop) and ``may_start(version,
    in_flight_base_versions, max_staleness)`` (wait), each on its own.

    Both must keep every applied update within the bound (``None``: no bound) without
    wasting anything the bound allows: ``accept`` must keep every update within it, and
    ``may_start`` must let a client start whenever no landing order of the jobs in flight
    and the new one could make any update staler than the bound.
    """
    fb = Feedback("Exercise E1")

    def check_accept() -> None:
        for bound in (0, 1, 3, 10, None):
            for staleness in range(0, 25):
                keep = bound is None or staleness <= bound
                got = fb.call(accept, staleness, bound, returns="bool",
                              what=f"accept({staleness}, max_staleness={bound})",
                              hint="max_staleness may be None, which means there is no bound.")
                if bool(got) and not keep:
                    fb.fail(f"accept({staleness}, max_staleness={bound}) keeps an update "
                            f"{staleness} versions old, staler than the bound allows.")
                if keep and not bool(got):
                    why = ("None means there is no bound at all" if bound is None else
                           f"{staleness} is within the bound of {bound}, so it is allowed")
                    fb.fail(f"accept({staleness}, max_staleness={bound}) drops the update, "
                            f"but {why}: that throws a client's work away for nothing.")
        fb.expect(True, "")
        bound = 3
        fb.promise("accept", lambda: _bounded_run("drop", bound, accept=accept),
                   lambda h: _within_bound(fb, h, bound, "accept"))

    def check_may_start() -> None:
        for version, bases, bound in [*_states(), (7, [], 0), (50, [0, 3], None)]:
            got = fb.call(may_start, version, list(bases), bound, returns="bool",
                          what=f"may_start({version}, {bases}, {bound})",
                          hint="in_flight_base_versions may be empty (nobody is training), and "
                               "max_staleness may be None (no bound).")
            worst = worst_staleness(version, bases) if bases else 0
            if bound is None or not bases:
                if not bool(got):
                    why = ("None means there is no bound" if bound is None else
                           "with no job in flight there is nobody to wait for, and a client "
                           "that never starts stalls the run")
                    fb.fail(f"may_start({version}, {bases}, {bound}) refuses, but {why}.")
                continue
            if bool(got) and worst > bound:
                fb.fail(f"may_start({version}, {bases}, {bound}) lets a client start, but if the "
                        f"jobs in flight and the new one land in the worst order, an update "
                        f"arrives {worst} versions old, more than the bound of {bound}.")
            if not bool(got) and worst <= bound:
                fb.fail(f"may_start({version}, {bases}, {bound}) keeps the client waiting, but "
                        f"whatever order the jobs land in, no update could be more than {worst} "
                        f"versions old, within the bound of {bound}: the client sits idle for "
                        "nothing.")
        fb.expect(True, "")
        bound = 3
        fb.promise("may_start", lambda: _bounded_run("wait", bound, may_start=may_start),
                   lambda h: _within_bound(fb, h, bound, "may_start"))

    fb.part("accept", check_accept)
    fb.part("may_start", check_may_start)
    return fb.report()


def _bounded_run(policy: str, bound: int, **hook: Callable):
    """A short run of the lesson's experiment under ``policy`` with the learner's hook."""
    from ..runner import run
    from .lesson import LESSON, federated_data

    cfg = _short(LESSON.replace(staleness_policy=policy, max_staleness=bound), 60)
    return run(cfg, "fedasync", federated_data(cfg), **hook)


def _within_bound(fb: Feedback, h: Any, bound: int, name: str) -> None:
    """In the run ``h``, no applied update is staler than ``bound``."""
    staleness, alpha = h.column("staleness"), h.column("alpha")
    too_stale = int(((staleness > bound) & (alpha > 0)).sum())
    fb.expect(too_stale == 0, f"in a short run with your {name} and max_staleness={bound}, "
                              f"{too_stale} applied updates were staler than the bound.")


# --- Exercise 2: priority scheduling ----------------------------------------------------------
#: What a fair scheduler must achieve in Exercise 2's experiment (over its seeds): Jain's index
#: of the updates delivered, the slowest fifth's share against an equal share, and the most
#: virtual time it may take, against random choice (which falls short of both; the checker's
#: messages print what it reaches).
FAIRNESS, SLOW_SHARE, TIME_COST = 0.95, 0.8, 1.5
FAIRNESS_SEEDS = (42, 1, 2, 3)


def check_exercise_2(scheduler_class: Callable[..., Any]) -> Verdict:
    """Judges a scheduler class, built as ``scheduler_class(update_order, client_order)``.

    The queue (``push_update``, ``pop_update``, ``len``) must hand out waiting updates by
    priority: the earliest arrival first (``update_order="arrival"``) or the one computed
    from the newest version first (``"freshest"``), equal priorities in arrival order.
    ``pick_client(idle, latency, delivered, gen)`` is the learner's design: it must return
    one of the idle clients, draw any randomness from ``gen`` (so that a run repeats), and
    in Exercise 2's experiment be fair to the slow clients (Jain's index at least
    ``FAIRNESS``, the slowest fifth heard at least ``SLOW_SHARE`` of an equal share) without
    costing more than ``TIME_COST`` times random choice's virtual time.
    """
    fb = Feedback("Exercise E2")
    name = getattr(scheduler_class, "__name__", "scheduler_class")

    def make(update_order: str = "arrival", client_order: str = "random") -> Any:
        return fb.call(scheduler_class, update_order, client_order, returns="value",
                       what=f"{name}({update_order!r}, {client_order!r})",
                       hint=f"The server creates it as {name}(update_order, client_order): its "
                            "__init__ must take those two arguments.")

    def compared_jobs(err: BaseException) -> Optional[str]:
        if isinstance(err, TypeError) and "not supported between instances" in str(err):
            return ("your queue compared two jobs, and the server's jobs cannot be compared: "
                    "when two updates have the same priority, a heap of (priority, job) falls "
                    "back on comparing the jobs and the run crashes; break ties by the order in "
                    "which the updates were pushed.")
        return None

    def check_queue() -> None:
        gen = np.random.default_rng(7)
        for trial in range(6):
            n = int(gen.integers(3, 9))
            jobs = [_Job(f"job{i}") for i in range(n)]
            # times as the server passes them (numpy floats, from few distinct values: ties
            # happen), and base versions as Python and numpy integers
            times = [np.float64(t) for t in np.sort(gen.integers(0, 4, n)).astype(float)]
            bases = [int(b) if trial % 2 else np.int64(b) for b in gen.integers(0, 4, n)]
            for order in ("arrival", "freshest"):
                sched = make(order)
                for job, t, b in zip(jobs, times, bases):
                    fb.call(lambda: sched.push_update(job, t, b),
                            what=f"push_update({job!r}, {t}, {b})", explain=compared_jobs)
                length = fb.call(lambda: len(sched), what="len(scheduler)")
                if length != n:
                    fb.fail(f"after {n} push_update calls len(scheduler) should be {n}, got {length}.")
                got = [fb.call(lambda: sched.pop_update(), what="pop_update()", returns="value",
                               explain=compared_jobs)
                       for _ in range(n)]
                key = (lambda i: (times[i], i)) if order == "arrival" else (lambda i: (-bases[i], i))
                right = [jobs[i] for i in sorted(range(n), key=key)]
                if got != right:
                    pushed = ", ".join(f"{j} (arrived {t}, version {b})"
                                       for j, t, b in zip(jobs, times, bases))
                    rule = ("earliest arrival first, equal times in the order they were pushed"
                            if order == "arrival" else
                            "newest base version first, equal versions in the order they were pushed")
                    fb.fail(f"with update_order={order!r} ({rule}), after pushing {pushed}, the "
                            f"queue should pop {right}; yours popped {got}.")
        fb.expect(True, "")

    def check_pick() -> None:
        gen = np.random.default_rng(3)
        sched = make()
        for _ in range(200):
            n = int(gen.integers(2, 12))
            idle = sorted(gen.choice(n, size=int(gen.integers(1, n + 1)), replace=False).tolist())
            latency = gen.lognormal(0, 1, n).tolist()
            delivered = gen.integers(0, 20, n).tolist()
            got = fb.call(lambda: sched.pick_client(list(idle), latency, delivered,
                                                    np.random.default_rng(1)),
                          what=f"pick_client({idle}, ...)", returns="int")
            if int(got) not in idle:
                fb.fail(f"pick_client returned {got}, which is not one of the idle clients "
                        f"{idle}: only an idle client can be handed the model.")
        fb.expect(True, "")

    def check_runs() -> None:
        from ..runner import server_for
        from .experiments import SCHEDULING, speed_skewed_digits

        def run_with(cls: Any, seed: int, updates: Optional[int] = None):
            cfg = SCHEDULING.replace(seed=seed)
            cfg = cfg if updates is None else _short(cfg, updates)
            data = speed_skewed_digits(cfg)
            return server_for(cfg, "fedasync", data, scheduler=cls("arrival", "random")).train(), data

        first, second = {}, {}
        fb.promise("scheduler", lambda: first.setdefault("h", run_with(scheduler_class, 42, 80)[0]))
        fb.promise("scheduler", lambda: second.setdefault("h", run_with(scheduler_class, 42, 80)[0]))
        if not fb.expect(first["h"].updates == second["h"].updates,
                         "two runs with the same seed and your scheduler chose different "
                         "clients: draw random numbers only from the generator `gen` that "
                         "pick_client is given, so that a run repeats."):
            raise Rejected
        runs: List[Any] = []
        fb.promise("scheduler", lambda: runs.extend(run_with(scheduler_class, s)
                                                    for s in FAIRNESS_SEEDS))
        jain, slow, times = experiments.fairness(runs)
        base_jain, base_slow, base_times = _random_choice()
        base_time = np.mean(base_times)
        if slow > 1 / SLOW_SHARE and jain < FAIRNESS:
            problem = (f"your scheduler favours the slow clients so much that the fast ones are "
                       f"barely heard: the slowest fifth deliver {slow:.1f} times an equal share, "
                       f"and Jain's index of the updates delivered is {jain:.2f} (at least "
                       f"{FAIRNESS} is asked).")
        else:
            problem = (f"your scheduler is not fair enough in the experiment: Jain's index of the "
                       f"updates delivered is {jain:.2f} (at least {FAIRNESS} is asked), and the "
                       f"slowest fifth of the clients are heard at {slow:.0%} of an equal share "
                       f"(at least {SLOW_SHARE:.0%}); random choice gives {base_jain:.2f} and "
                       f"{base_slow:.0%}.")
        if fb.expect(jain >= FAIRNESS and slow >= SLOW_SHARE, problem):  # one verdict: fair first
            fb.expect(np.mean(times) <= TIME_COST * base_time,
                      f"your scheduler is fair, but costly: its 300 updates take "
                      f"{np.mean(times) / base_time:.1f} times the virtual time of random choice "
                      f"(at most {TIME_COST} is asked), because it keeps the fast clients waiting.")

    fb.part("the update queue (push_update, pop_update, len)", check_queue)
    fb.part("pick_client", check_pick)
    if all(fb.results.values()):  # the experiment uses the scheduler only when both parts pass
        fb.part("the scheduler in the experiment", check_runs)
    return fb.report()


class _Job:
    """A stand-in for the server's jobs in the queue checks: like them, two jobs cannot be
    ordered (``<`` raises TypeError), so a queue must never fall back on comparing them."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


@functools.lru_cache(maxsize=1)
def _random_choice() -> tuple:
    """:func:`fairness` of random client choice in Exercise 2's experiment: the baseline."""
    from ..core.scheduling import Scheduler
    from ..runner import server_for
    from .experiments import SCHEDULING, speed_skewed_digits

    runs = []
    for seed in FAIRNESS_SEEDS:
        cfg = SCHEDULING.replace(seed=seed)
        data = speed_skewed_digits(cfg)
        runs.append((server_for(cfg, "fedasync", data,
                                scheduler=Scheduler("arrival", "random")).train(), data))
    return experiments.fairness(runs)


# --- Exercise 3: adaptive mixing ---------------------------------------------------------------
def example_context(staleness: int, distance: float, alpha: float, num_samples: int = 50,
                    client_id: int = 0, version: int = 40) -> MixingContext:
    """A mixing context whose client model lies at relative ``distance`` from the server's."""
    server = frozen({"w": np.ones(8, np.float32), "b": np.zeros(2, np.float32)})
    norm = math.sqrt(8.0)
    direction = np.array([1.0, -1.0] * 4, np.float32) / np.float32(math.sqrt(8.0))
    client = frozen({"w": server["w"] + np.float32(distance * norm) * direction,
                     "b": server["b"].copy()})
    update = Update(client, client_id=client_id, base_version=version - staleness,
                    num_samples=num_samples, base_state=server)
    cfg = AsyncConfig(mixing_alpha=alpha, max_staleness=None)
    return MixingContext(update, staleness, server, version=version, time=10.0, config=cfg)


def _contexts(alpha: float) -> List[MixingContext]:
    """Contexts that differ in staleness, distance, sample count and client."""
    out = []
    for t, d, n, c in itertools.product((0, 1, 3, 8, 20, 60), (0.001, 0.05, 0.3, 2.0),
                                        (10, 80, 400), (0, 7)):
        out.append(example_context(t, d, alpha, num_samples=n, client_id=c))
    return out


def check_exercise_3(rule: Callable[[MixingContext], float],
                     second_signal: Optional[Callable[[MixingContext], float]] = None,
                     direction: str = "decreasing") -> Verdict:
    """Judges a mixing rule ``rule(ctx) -> alpha_t`` with a second signal of the learner's
    choice. The rule must give a rate in [0, mixing_alpha], never a larger one to a staler
    update (other things equal), and react to something besides staleness. If the learner
    names their signal (``second_signal(ctx) -> number``) and its ``direction``
    (``"decreasing"`` or ``"increasing"``), the rule must move with it that way. In a
    short run of the experiment the rule must learn: its accuracy may not fall far
    below a fixed rate's (a rule so cautious that the model crawls is wasteful)."""
    fb = Feedback("Exercise E3")
    alpha = 0.8
    if direction not in ("decreasing", "increasing"):
        print(f"Exercise E3: direction={direction!r} is not one of 'decreasing', 'increasing'.")
        return Verdict({"the mixing rule": False})

    def rate(ctx: MixingContext, what: str) -> float:
        untouched = Untouched("your rule", {"ctx.server_state": ctx.server_state,
                                            "ctx.update.state_dict": ctx.update.state_dict})
        got = fb.call(rule, ctx, returns="number", what=what)
        try:
            untouched.check()
        except ValueError as err:
            fb.fail(f"{err}.")
        if not 0.0 <= got <= alpha + 1e-12:
            fb.fail(f"alpha_t must be a number between 0 and mixing_alpha ({alpha}); for {what} "
                    f"yours returned {got!r}.")
        return float(got)

    def describe(ctx: MixingContext) -> str:
        from ..algorithms.adaptive import model_distance
        d = model_distance(ctx.update.state_dict, ctx.server_state)
        return (f"staleness {ctx.staleness}, distance {d:.3g}, {ctx.update.num_samples} samples, "
                f"client {ctx.update.client_id}")

    def check_rule() -> None:
        contexts = _contexts(alpha)
        rates = {id(ctx): rate(ctx, f"your rule at {describe(ctx)}") for ctx in contexts}
        groups: Dict[tuple, list] = {}
        for ctx in contexts:  # the same context but for its staleness
            key = (round(float(ctx.update.state_dict["w"][0]), 6), ctx.update.num_samples,
                   ctx.update.client_id)
            groups.setdefault(key, []).append(ctx)
        for ctxs in groups.values():
            ctxs.sort(key=lambda c: c.staleness)
            for fresher, staler in zip(ctxs, ctxs[1:]):
                if rates[id(staler)] > rates[id(fresher)] + 1e-12:
                    fb.fail(f"a staler update must not get a larger rate: at {describe(staler)} "
                            f"yours gives {rates[id(staler)]:.4g}, more than "
                            f"{rates[id(fresher)]:.4g} at staleness {fresher.staleness}.")
        fresh = [rates[id(c)] for c in contexts if c.staleness == 0]
        stale = [rates[id(c)] for c in contexts if c.staleness == 60]
        fb.expect(max(stale) < max(fresh) - 1e-6,
                  "your rate does not react to staleness: an update 60 versions old gets as "
                  "much weight as a fresh one.")
        same_staleness = [[rates[id(c)] for c in contexts if c.staleness == t] for t in (0, 3)]
        fb.expect(any(max(r) - min(r) > 1e-6 for r in same_staleness),
                  "your rate depends on staleness only: updates of the same staleness all get "
                  "the same rate, whatever their model, size or client. Add a second signal.")
        if second_signal is not None:
            check_declared(contexts, rates)
        fb.promise("mixing rule", lambda: _mixing_runs(rule), lambda r: check_learns(*r))

    def check_declared(contexts: List[MixingContext], rates: Dict[int, float]) -> None:
        values = {}
        for ctx in contexts:
            v = fb.call(second_signal, ctx, returns="number",
                        what=f"your second_signal at {describe(ctx)}")
            values[id(ctx)] = float(v)
        by_staleness: Dict[int, list] = {}
        for ctx in contexts:
            by_staleness.setdefault(ctx.staleness, []).append(ctx)
        sign = -1 if direction == "decreasing" else 1
        for ctxs in by_staleness.values():
            ctxs.sort(key=lambda c: values[id(c)])
            for low, high in zip(ctxs, ctxs[1:]):
                if values[id(high)] > values[id(low)] + 1e-12 and \
                        sign * (rates[id(high)] - rates[id(low)]) < -1e-12:
                    fb.fail(f"you declared the rate {direction} in your second signal, but at "
                            f"{describe(high)} (signal {values[id(high)]:.4g}) yours gives "
                            f"{rates[id(high)]:.4g}, against {rates[id(low)]:.4g} at "
                            f"{describe(low)} (signal {values[id(low)]:.4g}).")
        fb.expect(True, "")

    def check_learns(yours: float, fixed: float) -> None:
        fb.expect(yours >= fixed - 0.05,
                  f"your rule is so cautious that the model learns slowly: in a short run of "
                  f"the experiment its accuracy is {yours:.3f}, against {fixed:.3f} with a fixed "
                  f"rate; a rate that is always tiny wastes every update.")

    fb.part("the mixing rule", check_rule)
    return fb.report()


def exercise_3_reference() -> Callable[[MixingContext], float]:
    """The worked solution's rule for Exercise E3, which the experiments use until the
    learner's passes: FedAsync's staleness weighting times a trust region on the relative
    distance, ``adaptive.staleness_and_distance(scale=0.05)``, its scale near the median
    distance of the staleness-weighted runs it takes part in (``experiments.update_distances``).
    The learner's copy calls it by this name, so that the signal and the scale stay theirs
    to choose."""
    return adaptive.staleness_and_distance(scale=0.05)


def _mixing_runs(rule: Callable) -> tuple:
    """Tail accuracy of a short run with the learner's rule, and with a fixed rate."""
    from ..runner import run
    from .lesson import LESSON, federated_data, simulate

    cfg = _short(LESSON, 100).replace(eval_every=10)
    return (run(cfg, "fedasync", federated_data(cfg), mixing_rule=rule).tail_accuracy(),
            simulate(cfg.replace(staleness="constant")).tail_accuracy())


# --- Exercise 4: the FedBuff server step ---------------------------------------------------------
def check_exercise_4(buffer_step: Callable) -> Verdict:
    """Judges ``buffer_step(server_state, buffered, server_lr)`` against FedBuff's update,
    x + server_lr * (1/K) * sum_i delta_i / sqrt(1 + staleness_i), on random states of
    several keys and shapes and buffers of 1 to 5 updates; the result must be a new state
    of the same keys, shapes and dtypes, and the inputs must be left unchanged."""
    fb = Feedback("Exercise E4")

    def expected(state, buffer, lr):
        return {k: state[k] + lr * sum(d[k] / math.sqrt(1.0 + s) for d, s in buffer) / len(buffer)
                for k in state}

    def check_step() -> None:
        gen = np.random.default_rng(4)

        def randn(shape):  # float32 arrays, read-only: what the server's states are
            return gen.standard_normal(shape, dtype=np.float32)
        shapes = [{"w": (2,)}, {"layer.weight": (3, 2), "layer.bias": (3,)},
                  {"conv": (2, 1, 3, 3), "fc.weight": (4, 8), "fc.bias": (4,)}]
        cases = 0
        for shape in shapes:
            for k, lr in ((1, 1.0), (2, 0.5), (3, 3.0), (5, 1.5)):
                state = frozen({key: randn(s) for key, s in shape.items()})
                stalenesses = [int(x) for x in gen.integers(0, 20, k)]
                buffer = [(frozen({key: randn(s) for key, s in shape.items()}), st)
                          for st in stalenesses]
                before = {key: v.copy() for key, v in state.items()}
                before_deltas = [{key: v.copy() for key, v in d.items()} for d, _ in buffer]
                what = f"buffer_step with {k} buffered update{'s' if k > 1 else ''} of keys {sorted(shape)}"
                out = fb.call(buffer_step, state, buffer, lr, what=what, returns="state",
                              hint=f"The state may have any keys (here {sorted(state)}) and the "
                                   "buffer any length.")
                problem = state_problem(out, state, what)
                if problem:
                    fb.fail(problem)
                if not (all(np.array_equal(before[key], state[key]) for key in state)
                        and all(np.array_equal(b[key], d[key]) for b, (d, _) in zip(before_deltas, buffer)
                                for key in d)):
                    fb.fail("buffer_step changed its inputs in place: build and return a new "
                            "state instead (the server and the buffer still hold them).")
                want = expected(state, buffer, lr)
                wrong = [key for key in state
                         if not np.allclose(np.asarray(out[key]), want[key], atol=1e-5)]
                if wrong:
                    key = wrong[0]
                    case = f"{what} (server_lr {lr}, stalenesses {stalenesses})"
                    # Which usual mistake? Probe with a case that tells them all apart.
                    def w(*values):
                        return frozen({"w": np.array(values, np.float32)})
                    probe_state = w(1.0, -2.0)
                    probe = [(w(1.0, 0.5), 0), (w(-2.0, 3.0), 3), (w(0.5, 1.0), 8)]
                    got = fb.call(buffer_step, probe_state, probe, 2.0, returns="state",
                                  what="buffer_step with 3 buffered updates of key ['w']")
                    for variant, reason in _step_mistakes():
                        guess = variant(probe_state, probe, 2.0)
                        if np.allclose(np.asarray(got["w"], np.float64),
                                       np.asarray(guess["w"], np.float64), atol=1e-5):
                            fb.fail(f"{case}: your step {reason}")
                    fb.fail(f"{case}: {key!r} differs from FedBuff's step by up to "
                            f"{float(np.abs(np.asarray(out[key]) - want[key]).max()):.3g}, and not in one of the "
                            "usual ways. Compute the example above by hand and compare.")
                cases += 1
        fb.expect(cases == 12, "")
        fb.promise("buffer_step", lambda: _fedbuff_run(buffer_step))

    fb.part("buffer_step", check_step)
    return fb.report()


def _step_mistakes() -> List[tuple]:
    """Usual ways to get FedBuff's step wrong, each as (the wrong step, one sentence why)."""
    def step(weight: Callable[[int], float], divide: Callable[[list], float], sign: float = 1.0,
             use_lr: bool = True) -> Callable:
        def wrong(state, buffer, lr):
            scale = (lr if use_lr else 1.0) * sign / divide(buffer)
            return {n: state[n] + scale * sum(d[n] * weight(s) for d, s in buffer) for n in state}
        return wrong

    sqrt_w = lambda s: 1.0 / math.sqrt(1.0 + s)  # noqa: E731
    count = lambda buffer: len(buffer)  # noqa: E731
    mistakes = [
        (step(sqrt_w, lambda b: sum(sqrt_w(s) for _, s in b)),
         "divides by the sum of the weights (a normalised weighted mean). That is a defensible "
         "design, but not FedBuff's: it cancels the discount whenever the buffered changes are "
         "equally stale (with one change, entirely). FedBuff divides by the number of changes."),
        (step(lambda s: 1.0, count), "does not weight the changes by their staleness: multiply "
         "each change by 1/sqrt(1 + staleness) before averaging."),
        (step(lambda s: 1.0 / (1.0 + s), count), "weights each change by 1/(1 + staleness); "
         "FedBuff's factor is its square root, 1/sqrt(1 + staleness)."),
        (step(sqrt_w, count, sign=-1.0), "moves the model against the changes. A change is the "
         "trained model minus the one it started from: the server adds it."),
        (step(sqrt_w, count, use_lr=False), "leaves server_lr out: the step is server_lr times "
         "the average."),
        (step(sqrt_w, lambda b: 1.0), "sums the weighted changes without averaging them: divide "
         "by the number of buffered changes."),
        (step(sqrt_w, lambda b: 5.0), "divides by a fixed 5 (the experiment's K): divide by "
         "the number of changes in the buffer, which at the end of a run may be fewer."),
    ]
    return mistakes


def _fedbuff_run(step: Callable):
    """A short FedBuff run of Exercise 4's experiment with the learner's server step."""
    from ..runner import run
    from .experiments import SYNC_VS_ASYNC
    from .lesson import federated_data

    cfg = _short(SYNC_VS_ASYNC.replace(heterogeneity=1.5), 60)
    return run(cfg, "fedbuff", federated_data(cfg), buffer_step=step)


# The lesson's wait rule, kept importable under the name the notebooks use.
reference_may_start = bounded.may_start


# --- Exercise E2.2: a correction of the fast-client bias ------------------------------------------
def check_bias_correction(make_correction: Callable[[], Callable[[MixingContext], float]]) -> Verdict:
    """Judges a correction of the fast-client bias, given as a factory: ``make_correction()``
    returns a fresh FedAsync mixing rule, with its own state, for one run (as the library's
    :func:`~fedasync_lib.algorithms.adaptive.participation_weighted` does). On Exercise 2's
    speed-skewed experiment over four seeds (``experiments.bias_correction``'s setting), one
    fresh rule per run, it must even out the clients' pull on the model (Jain's index of
    applied alpha higher than plain FedAsync's on every seed), and must not cost accuracy,
    overall or on the slow clients' digits, beyond the noise. Two fresh rules on the same
    seed must give the same run: a rule that keeps its state outside the factory carries
    one run's counts into the next."""
    fb = Feedback("Exercise E2.2")
    name = getattr(make_correction, "__name__", "make_correction")

    def fresh() -> Callable:
        rule = fb.call(make_correction, what=f"{name}()", returns="value",
                       hint=f"{name}() takes no arguments and returns the mixing rule for one run.")
        if not callable(rule):
            fb.fail(f"{name}() returned {type(rule).__name__}, not a function: it must return "
                    "the mixing rule (a function of ctx) for one run.")
        return rule

    def check_rule() -> None:
        from ..analysis import compare
        from .experiments import SCHEDULING, bias_correction, speed_skewed_digits

        results: List[Any] = []
        fb.promise("correction", lambda: results.extend(
            bias_correction(seed, rule=fresh()) for seed in FAIRNESS_SEEDS))
        again: List[Any] = []
        fb.promise("correction", lambda: again.append(bias_correction(FAIRNESS_SEEDS[0], rule=fresh())))
        if not fb.expect(again[0].jain == results[0].jain,
                         f"two fresh rules from {name}() gave different runs on the same seed: "
                         f"keep the rule's state (its counts) inside {name}, so that each run "
                         "starts from nothing."):
            raise Rejected
        jain = [(r.jain["plain"], r.jain["weighted"]) for r in results]
        worse = [f"{b:.2f} against {a:.2f}" for a, b in jain if b <= a]
        if not fb.expect(not worse, f"your rule does not even out the clients' pull on the model: "
                                    f"Jain's index of applied alpha is {worse[0] if worse else ''} "
                                    "for plain FedAsync on one of the seeds."):
            raise Rejected  # one verdict: the accuracy is judged only for a rule that evens out

        class Run:  # what compare reads
            def __init__(self, value: float):
                self.value = value

            def tail_accuracy(self) -> float:
                return self.value

        test_size = len(speed_skewed_digits(SCHEDULING).test)
        for what, key in (("overall", "accuracy"), ("on the slow clients' digits", "slow_digit_accuracy")):
            yours = [Run(getattr(r, key)["weighted"]) for r in results]
            plain = [Run(getattr(r, key)["plain"]) for r in results]
            verdict = compare(yours, plain, names=("yours", "plain"), test_size=test_size)
            if not fb.expect(verdict.verdict != "plain",
                             f"your rule evens out the influence but costs accuracy {what}: "
                             f"{verdict.a.mean:.3f} against {verdict.b.mean:.3f} for plain "
                             "FedAsync, more than the noise of four seeds."):
                raise Rejected

    fb.part("the correction", check_rule)
    return fb.report()


# --- Exercise 5.1: the largest stable step at delays 0 and 1 (notebook 5) -----------------------------
#: How close to the true supremum a bound must be: the iteration is checked at this relative
#: distance below and above the learner's bound.
BOUND_TOLERANCE = 0.01


def check_delay_bound(largest_step: Callable[[int], float]) -> Verdict:
    """Judges ``largest_step(delay) -> eta * L``, the learner's supremum of the steps for which
    ``x_{t+1} = x_t - eta * L * x_{t-delay}`` converges, at delays 0 and 1 (notebook 5).

    By properties, not by the formula: just below the learner's bound (1 % below) the
    iteration must converge, and just above it (1 % above) it must not. Whether it
    converges is read off the recursion's characteristic roots
    (:func:`~fedasync_lib.analysis.delayed_step.spectral_radius`, numerical), so any correct
    expression, or a numerical search, passes."""
    from ..analysis.delayed_step import spectral_radius

    fb = Feedback("Exercise 5.1", fallback=False)

    def check() -> None:
        for delay in (0, 1):
            got = float(fb.call(largest_step, delay, returns="number",
                                what=f"largest_step({delay})"))
            if not math.isfinite(got) or got <= 0:
                fb.fail(f"largest_step({delay}) is {got!r}: a step bound must be a finite number "
                        "above 0 (eta * L).")
            below, above = got * (1 - BOUND_TOLERANCE), got * (1 + BOUND_TOLERANCE)
            if spectral_radius(below, delay) >= 1.0:
                fb.expect(False, f"largest_step({delay}) is {got:.4g}, too large: at eta * L = "
                                 f"{below:.4g}, just below it, the iteration with delay {delay} "
                                 "does not converge.")
            elif spectral_radius(above, delay) < 1.0:
                fb.expect(False, f"largest_step({delay}) is {got:.4g}, too cautious: at eta * L = "
                                 f"{above:.4g}, just above it, the iteration with delay {delay} "
                                 "still converges.")
            else:
                fb.expect(True, "")

    fb.part("largest_step", check)
    return fb.report()


# --- Exercise 5.2: a delay-adaptive weight (notebook 5) ---------------------------------------------
#: How much less a stable weight may learn than FedBuff's own before it counts as wasteful.
WASTE = 0.05


def check_delay_weight(weight: Callable[[int, int], float]) -> Verdict:
    """Judges ``weight(staleness, concurrency) -> factor``, the weight of a stale change in a
    FedBuff-style server step (notebook 5's stability experiment: a buffer of one update).
    The factor must lie in [0, 1], be 1 for a fresh change (so that fresh updates learn at
    full speed), and never grow with staleness. In the experiment, at 16 clients in flight
    and a server step of 4, where unweighted changes diverge on every seed, the weighted runs
    must be stable on every seed (:attr:`History.stable
    <fedasync_lib.core.history.History.stable>`: the training loss ends below its start and
    never passes twice its start), and must then learn about as well as FedBuff's own weight
    1 / sqrt(1 + staleness) (at most ``WASTE`` less accuracy beyond the noise): a weight that
    throws most changes away is safe but wasteful. An unstable weight is told so, with the
    setting and the seeds, never that it is wasteful."""
    fb = Feedback("Exercise 5.2")

    def check() -> None:
        seen: Dict[Tuple[int, int], float] = {}  # (staleness, concurrency) -> the weight
        for c in (1, 2, 4, 10, 16):
            previous = None
            for t in range(0, 4 * c + 8):
                got = seen[t, c] = float(fb.call(weight, t, c, returns="number",
                                                 what=f"weight({t}, {c})"))
                if not 0.0 <= got <= 1.0:
                    fb.fail(f"weight({t}, {c}) is {got!r}: a weight must lie between 0 and 1.")
                if t == 0 and got < 1.0 - 1e-12:
                    fb.fail(f"weight(0, {c}) is {got:.4g}: a fresh change should take the full "
                            "step (1); discounting it only slows learning.")
                if previous is not None and got > previous + 1e-12:
                    fb.fail(f"weight({t}, {c}) is {got:.4g}, more than weight({t - 1}, {c}) = "
                            f"{previous:.4g}: a staler change must not weigh more.")
                previous = got
        fb.expect(True, "")
        from .convergence import STEP, sqrt_weight, weighted_run, weighted_step
        from .lesson import SEEDS, federated_data
        from ..analysis import compare
        from ..runner import run

        config = STEP.replace(concurrency=16, server_lr=4.0)

        def runs(w: Callable) -> List[Any]:
            out = []
            for seed in SEEDS:
                cfg = config.replace(seed=seed)
                if w is sqrt_weight:  # the reference's runs come from the run cache
                    out.append(weighted_run(cfg, w))
                else:
                    out.append(run(cfg, "fedbuff", federated_data(cfg),
                                   buffer_step=weighted_step(w, 16)))
            return out

        yours: List[Any] = []
        fb.promise("weight", lambda: yours.extend(runs(weight)))
        unstable = [seed for seed, h in zip(SEEDS, yours) if not h.stable]
        if unstable:
            drops_all = all(seen[t, 16] == 0.0 for t in range(1, 4 * 16 + 8))
            fb.fail(f"your weight is unstable at 16 clients in flight and a server step of 4: on "
                    f"{len(unstable)} of {len(yours)} seeds (seed {', '.join(map(str, unstable))}) "
                    "the training loss passed twice its start or ended above it; "
                    + ("it throws every stale change away, so the few fresh ones barely move the "
                       "model: keep the stale changes, discounted." if drops_all
                       else "stale changes still weigh too much."))
        verdict = compare(yours, runs(sqrt_weight), names=("yours", "FedBuff's"),
                          test_size=len(federated_data(STEP).test), resolution=WASTE)
        fb.expect(verdict.verdict != "FedBuff's",
                  f"your weight is stable but wastes the stale changes: tail accuracy "
                  f"{verdict.a.mean:.3f} against {verdict.b.mean:.3f} with 1 / sqrt(1 + staleness), "
                  f"more than {WASTE:.0%} less; it throws away more than stability needs.")

    fb.part("the weight", check)
    return fb.report()


# --- Exercise E4.2: how many clients a round must ask --------------------------------------------
def _round_cases() -> List[tuple]:
    """(k, q, confidence) cases, some as numpy numbers: what the notebook's experiment passes."""
    cases = [(k, q, c) for k in (1, 5, 10, 40) for q in (0.3, 0.55, 0.8, 0.97, 1.0)
             for c in (0.5, 0.9, 0.99)]
    return [(np.int64(k) if i % 3 == 1 else k, np.float64(q) if i % 2 else q, c)
            for i, (k, q, c) in enumerate(cases)]


def check_round_size(clients_to_ask: Callable[[int, float, float], int]) -> Verdict:
    """Judges ``clients_to_ask(k, q, confidence) -> n``: how many clients a synchronous round
    asks so that, when each reports in time with probability ``q`` independently, at least
    ``k`` report with probability at least ``confidence``, and no more than that needs.

    By properties, not by the formula: ``n`` must be enough (``P(Binomial(n, q) >= k) >=
    confidence``, computed exactly by :func:`~fedasync_lib.analysis.rounds.prob_at_least`)
    and the fewest that is (``n - 1`` would not be): any correct method passes (a formula, a
    search, a loop), and a safe but wasteful one (ask twice as many) fails."""
    from ..analysis.rounds import prob_at_least

    fb = Feedback("Exercise E4.2")

    def check() -> None:
        for k, q, confidence in _round_cases():
            what = f"clients_to_ask({int(k)}, {float(q):g}, {confidence:g})"
            n = fb.call(clients_to_ask, k, q, confidence, what=what, returns="int")
            n = int(n)
            if prob_at_least(int(k), n, float(q)) < confidence - 1e-12:
                fb.fail(f"{what} is {n}, too few: with each client reporting with probability "
                        f"{float(q):g}, {int(k)} of {n} report only with probability "
                        f"{prob_at_least(int(k), n, float(q)):.3f}, below {confidence:g}.")
            if n > int(k) and prob_at_least(int(k), n - 1, float(q)) >= confidence - 1e-12:
                fb.fail(f"{what} is {n}, more than needed: {n - 1} clients already give "
                        f"{int(k)} report{'s' if int(k) > 1 else ''} with probability "
                        f"{prob_at_least(int(k), n - 1, float(q)):.3f}, at least {confidence:g}.")
            fb.expect(True, "")

    fb.part("clients_to_ask", check)
    return fb.report()
