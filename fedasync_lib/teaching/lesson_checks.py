"""Automatic feedback for the small exercises inside lesson notebooks 1, 3 and 4.

Same rules as the four exercise notebooks' checkers (:mod:`.exercises`): each
``check_*`` runs the learner's function on cases with known answers, says in one
plain sentence what is wrong (a missing ``return``, a tensor, a wrong type, a
known mistake by name), and returns a :class:`~.exercises.Verdict` that is true
only when every check passed. :func:`~.exercises.pick` then chooses the
learner's function or the reference.

=========================  ==========================================  ===========================
exercise                   the learner writes                          reference
=========================  ==========================================  ===========================
1.1 (notebook 1)           ``recount(updates, i)``: staleness from      :func:`recount_staleness`
                           the records of a run
3.1 (notebook 3)           ``hinge_weight(t, a, b)``: the paper's        :func:`~fedasync_lib.algorithms.staleness.hinge`
                           hinge function
4.1 (notebook 4)           ``mix(server, client, alpha_t)``: FedAsync's  :func:`~fedasync_lib.algorithms.aggregator.mix`
                           mixing step
=========================  ==========================================  ===========================
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np

from ..algorithms import staleness as staleness_functions
from ..core.model import frozen
from .feedback import Feedback as _Feedback
from .feedback import Rejected as _Rejected
from .feedback import Verdict, state_problem

Record = Dict[str, float]


def recount_staleness(updates: Sequence[Record], i: int) -> int:
    """Staleness of update ``i`` from a FedAsync run's records alone.

    The updates the server *applied* (``alpha > 0``) after update ``i``'s client was
    handed the model (``arrival_time > start_time``) and before update ``i`` was
    handled (they come earlier in the list, which is in handling order).
    """
    me = updates[i]
    return sum(1 for other in updates[:i]
               if other["alpha"] > 0 and other["arrival_time"] > me["start_time"])


def _counted_at_start(updates: Sequence[Record], i: int) -> int:
    """The boundary slip of Exercise 1.1: also counting updates that landed exactly at
    update ``i``'s start (``>=`` for ``>``)."""
    me = updates[i]
    return sum(1 for other in updates[:i]
               if other["alpha"] > 0 and other["arrival_time"] >= me["start_time"])


# --- Exercise 1.1: recount the staleness -----------------------------------------------------
def _records(rows: List[tuple]) -> List[Record]:
    return [{"start_time": s, "arrival_time": a, "alpha": alpha} for s, a, alpha in rows]


def check_recount(recount: Callable[[Sequence[Record], int], int],
                  history_updates: Sequence[Record] | None = None) -> Verdict:
    """Checks ``recount(updates, i)`` on a hand-made run and, if given, on every update of a real one."""
    fb = _Feedback("Exercise 1.1")

    def checks() -> None:
        # client A starts at 0 and lands at 10; meanwhile B, C, D land, but C was rejected.
        small = _records([(1.0, 2.0, 0.9),   # B: started after A, applied
                          (0.0, 3.0, 0.0),   # C: rejected (alpha 0)
                          (0.5, 4.0, 0.45),  # D: applied
                          (0.0, 10.0, 0.3),  # A: what is its staleness?
                          (9.0, 12.0, 0.9)])  # E: started at 9, after B and D landed
        mistakes = {3: "you counted the rejected update too: an update with alpha 0 did not "
                       "change the model, so it adds no version",
                    0: "you counted nothing: count the earlier updates that were applied after "
                       "this update's client got the model"}
        hint = ("(The hand-made records have only the keys 'start_time', 'arrival_time' and "
                "'alpha': the staleness is what you recount, so it is not given.)")
        got = fb.call(recount, small, 3, what="recount(updates, 3)", returns="int", hint=hint)
        problem = (f"in the hand-made run (updates landing at 2, 3 (rejected), 4 and 10 s; "
                   f"update 3 started at 0 s), update 3 has staleness 2; yours gave {got!r}")
        if got in mistakes:
            problem += f": {mistakes[got]}"
        fb.expect(got == 2, problem + ".")
        got = fb.call(recount, small, 4, what="recount(updates, 4)", returns="int", hint=hint)
        fb.expect(got == 1, f"update 4 started at 9 s, after updates 0 and 2 had landed, so only "
                            f"update 3 (landing at 10 s) counts: staleness 1; yours gave {got!r}. "
                            "Count only updates that arrived after its start_time.")
        got = fb.call(recount, small, 0, what="recount(updates, 0)", returns="int", hint=hint)
        fb.expect(got == 0, f"the first update has no earlier update to count: staleness 0; "
                            f"yours gave {got!r}.")
        # a tie: two updates land at the same instant; the server handles them in list order
        tie = _records([(0.0, 5.0, 0.9), (1.0, 5.0, 0.9)])
        got = fb.call(recount, tie, 1, what="recount(updates, 1) with a tie", returns="int", hint=hint)
        fb.expect(got == 1, f"two updates landed at the same instant (5 s); the server handled "
                            f"update 0 first, so it changed the model before update 1 was taken "
                            f"up: update 1 has staleness 1; yours gave {got!r}. Decide by the "
                            "order of handling (the list's order), not by comparing arrival times.")
        got = fb.call(recount, tie, 0, what="recount(updates, 0) with a tie", returns="int", hint=hint)
        fb.expect(got == 0, f"two updates landed at the same instant (5 s); update 1 was handled "
                            f"after update 0, so it cannot count towards update 0's staleness; "
                            f"yours gave {got!r}. Count only the updates handled before it.")
        if history_updates is not None:
            hint = ("(Each record has the keys " + ", ".join(repr(k) for k in history_updates[0])
                    + ": print(h.updates[0]) shows one.)")
            wrong, yours = [], []
            for i, u in enumerate(history_updates):
                got = fb.call(recount, history_updates, i, what=f"recount(h.updates, {i})",
                              returns="int", hint=hint)
                yours.append(got)
                if got != u["staleness"]:
                    wrong.append((i, got, u["staleness"]))
            if wrong:
                i, got, recorded = wrong[0]
                problem = (f"on the simulator's run, {len(wrong)} of {len(history_updates)} values "
                           f"differ from the recorded staleness, the first at update {i} ({got} "
                           f"against {recorded})")
                at_start = [_counted_at_start(history_updates, j) for j in range(len(yours))]
                if yours == at_start:
                    problem += (": you also counted the updates that arrived at the very moment "
                                "the client got the model (>= where > is due). The server takes "
                                "an arriving update up before it hands out the model, so such an "
                                "update is already in the model the client started from")
                fb.expect(False, problem + ".")
            else:
                fb.expect(True, "")

    fb.part("recount", checks)
    return fb.report()


# --- Exercise 3.1: the hinge function ------------------------------------------------------------
HINGE_VARIANTS: Dict[str, Callable[[int, float, int], float]] = {
    # Hinge formulas that public code really uses (notebook 3's pitfalls table gives file and
    # line), and one slip; all three keep weight 1 up to b. The paper's is 1 / (a (t - b) + 1).
    "FedLab: 1 / (a (t - b + 1))": lambda t, a, b: 1.0 if t <= b else 1.0 / (a * ((t - b) + 1)),
    "FLGo: 1 / (a (t - b))": lambda t, a, b: 1.0 if t <= b else 1.0 / (a * (t - b)),
    "no threshold in the slope: 1 / (a t + 1)": lambda t, a, b: 1.0 if t <= b else 1.0 / (a * t + 1),
}


def check_hinge(hinge_weight: Callable[[int, float, int], float]) -> Verdict:
    """Checks ``hinge_weight(t, a, b)`` against the paper's hinge, and names the known variants."""
    fb = _Feedback("Exercise 3.1", fallback=False)

    def checks() -> None:
        a, b = 10.0, 4
        for t in range(0, 12):
            right = float(staleness_functions.hinge(a, b)(t))
            got = fb.call(hinge_weight, t, a, b, what=f"hinge_weight({t}, a=10, b=4)",
                          returns="number")
            problem = f"hinge_weight({t}, a=10, b=4) should be {right:.4f}; yours gave {got:.4f}"
            for name, formula in HINGE_VARIANTS.items():
                if t > b and abs(got - formula(t, a, b)) <= 1e-9:
                    problem += f": that is {name.split(': ')[1]}, not the paper's 1 / (a (t - b) + 1)"
                    break
            if not fb.expect(abs(got - right) <= 1e-9, problem + "."):
                raise _Rejected
        for a2, b2 in ((0.0, 0), (2.5, 0), (20.0, 30)):
            for t in (0, 1, 5, 31, 60):
                right = float(staleness_functions.hinge(a2, b2)(t))
                got = fb.call(hinge_weight, t, a2, b2, what=f"hinge_weight({t}, a={a2:g}, b={b2})",
                              returns="number")
                if not fb.expect(abs(got - right) <= 1e-9,
                                 f"hinge_weight({t}, a={a2:g}, b={b2}) should be {right:.4f}; "
                                 f"yours gave {got:.4f}. Use the parameters a and b, not the "
                                 "lesson's 10 and 4."):
                    raise _Rejected

    fb.part("hinge_weight", checks)
    return fb.report()


# --- Exercise 4.1: FedAsync's mixing step ----------------------------------------------------------
def check_mix(mix: Callable[[Dict[str, np.ndarray], Dict[str, np.ndarray], float],
                            Dict[str, np.ndarray]]) -> Verdict:
    """Checks ``mix(server, client, alpha_t)`` = (1 - alpha_t) server + alpha_t client, key by key."""
    fb = _Feedback("Exercise 4.1", fallback=False)

    def checks() -> None:
        # float32 arrays, read-only: what the server's states are.
        server = frozen({"w": np.array([0.0, 10.0], np.float32), "b": np.array([1.0], np.float32)})
        client = frozen({"w": np.array([10.0, 0.0], np.float32), "b": np.array([3.0], np.float32)})
        before = {k: v.copy() for k, v in {**server, **{"c" + k: v for k, v in client.items()}}.items()}
        out = fb.call(mix, server, client, 0.2, what="mix(server, client, 0.2)", returns="state")
        problem = state_problem(out, server, "mix")
        if problem:
            fb.fail(problem)
        right = {"w": [2.0, 8.0], "b": [1.4]}
        got = {k: [round(float(x), 6) for x in out[k].tolist()] for k in out}
        problem = (f"with alpha_t = 0.2, server w = [0, 10] and client w = [10, 0], the mixed w is "
                   f"[2, 8]; yours gave {got['w']}")
        if got["w"] == [8.0, 2.0]:
            problem += (": you swapped the two models. alpha_t is the client's share: "
                        "(1 - alpha_t) * server + alpha_t * client")
        elif got["w"] == [2.0, 10.0] or got["w"] == [10.0, 10.0]:
            problem += ": the result is not a weighted average of the two"
        fb.expect(got == right, problem + ".")
        unchanged = all(np.array_equal(before[k], server[k]) for k in server) and all(
            np.array_equal(before["c" + k], client[k]) for k in client)
        fb.expect(unchanged, "mix changed its inputs in place: build and return a new dict, "
                             "because the server keeps the old model for the updates in flight.")
        for alpha, which, name in ((0.0, server, "the server's model"),
                                   (1.0, client, "the client's model")):
            out = fb.call(mix, server, client, alpha, what=f"mix(server, client, {alpha})",
                          returns="state")
            problem = state_problem(out, server, f"mix(server, client, {alpha})")
            if problem:
                fb.fail(problem)
            fb.expect(all(np.allclose(out[k], which[k]) for k in server),
                      f"with alpha_t = {alpha:g} the result must be {name} unchanged.")

    fb.part("mix", checks)
    return fb.report()
