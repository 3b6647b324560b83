"""How a checker judges a learner's code and tells them: the machinery every checker shares.

A checker (:mod:`.exercises`, :mod:`.lesson_checks`) calls the learner's
functions on cases whose right answers it knows, then runs them the way the
notebook's experiment will. Whatever the learner's code does, the checker
ends with a verdict, never with a traceback:

* every call goes through :func:`~.learner_code.call`: an exception, a value
  of the wrong type (``None``, a tensor, a string; a numpy scalar counts as the
  number it holds), an endless loop (10 s) or printed output each become one
  plain sentence;
* if the checker itself cannot read what came back (a list where a tensor was
  due, a shape it did not expect), that too is a sentence, not a crash;
* a function that still raises ``NotImplementedError`` is "not written yet";
* :meth:`Feedback.promise` runs the learner's code inside a short real run, so
  that what passes the checks also works in the experiment that uses it.

:func:`pick` then chooses what the experiments use: the learner's code once it
passed, the library's reference until then.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ..core.arrays import is_array, is_floating, kind, same_kind
from . import learner_code

#: Seconds a short run with the learner's code may take in :meth:`Feedback.promise`.
RUN_LIMIT = 60.0


class Rejected(Exception):
    """The learner's function gave something the checks cannot use (already reported)."""


class Verdict:
    """What a checker found. True only when every function passed;
    ``verdict["accept"]`` is one function's result (None: not written yet)."""

    def __init__(self, results: Dict[str, Optional[bool]]):
        self.results = results

    def __bool__(self) -> bool:
        return all(r is True for r in self.results.values())

    def __getitem__(self, name: str) -> bool:
        return self.results.get(name) is True

    def __repr__(self) -> str:
        return f"Verdict({self.results})"


def is_number(value: Any) -> bool:
    """A real number (Python's or numpy's), not a bool and not a tensor."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_whole_number(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def type_problem(result: Any, returns: str) -> Optional[str]:
    """Why ``result`` is not a ``returns`` ("bool", "number", "int", "state", "value"),
    or None if it is one."""
    if result is None:
        return "returned None: did you forget `return`?"
    if returns in ("bool", "number", "int") and is_array(result):
        convert = {"bool": "bool(...)", "int": "int(...)"}.get(returns, "float(...)")
        return (f"returned a {kind(result)} ({result!r}), not a plain Python value: convert it "
                f"with {convert}.")
    if returns == "bool" and not isinstance(result, (bool, np.bool_)):
        return f"returned {result!r} ({type(result).__name__}): return True or False."
    if returns == "number":
        if not is_number(result):
            return f"returned {result!r} ({type(result).__name__}): return a number."
        if not math.isfinite(result):
            return f"returned {result!r}: return a finite number."
    if returns == "int" and not is_whole_number(result):
        return f"returned {result!r} ({type(result).__name__}): return a whole number (an int)."
    if returns == "state" and not (isinstance(result, dict)
                                   and all(is_array(v) for v in result.values())):
        return (f"returned {type(result).__name__}, not a state dict like its input "
                "(a dict of arrays).")
    return None


def state_problem(result: Dict[str, Any], like: Dict[str, Any], what: str) -> Optional[str]:
    """Why ``result`` (a dict of arrays) is not a state like ``like``: keys, shapes, dtypes.

    Another floating precision is no problem: the run casts it to the state's dtype."""
    if set(result) != set(like):
        return (f"{what} must return one entry per key of the state, {sorted(like)}; yours has "
                f"{sorted(result)}.")
    for key, ref in like.items():
        got = result[key]
        if tuple(got.shape) != tuple(ref.shape):
            return (f"{what} returned {key!r} with shape {tuple(got.shape)}, but the state's "
                    f"{key!r} has shape {tuple(ref.shape)}: keep each parameter's shape.")
        if not same_kind(got, ref):
            return (f"{what} returned {key!r} as a {kind(got)}, but the state holds "
                    f"{kind(ref)}s: return the same kind of array as the state's.")
        if got.dtype != ref.dtype and not (is_floating(got) and is_floating(ref)):
            # Another floating precision is cast by the run (hook_results.check_state).
            return (f"{what} returned {key!r} as {got.dtype}, but the state is {ref.dtype}: keep "
                    "its dtype (build the result from the state's own arrays, or convert with "
                    f".astype(np.{ref.dtype})).")
    return None


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class Feedback:
    """Collects the problems found by one checker, function by function, and prints them."""

    def __init__(self, label: str, fallback: bool = True):
        self.label = label  # how the learner's notebook names the exercise, e.g. "Exercise E1"
        self.fallback = fallback  # do experiments below fall back on a reference implementation?
        self.problems: List[str] = []
        self.checks = 0
        self.results: Dict[str, Optional[bool]] = {}
        self.printed = False

    def expect(self, ok: bool, problem: str) -> bool:
        self.checks += 1
        if not ok:
            self.problems.append(problem)
        return bool(ok)

    def fail(self, problem: str) -> None:
        """Report ``problem`` and end the checks of this function."""
        self.expect(False, problem)
        raise Rejected

    def call(self, fn: Callable, *args: Any, what: str, returns: Optional[str] = None,
             hint: str = "", explain: Optional[Callable[[BaseException], Optional[str]]] = None) -> Any:
        """Call the learner's code. An exception, an endless loop, a None or a value of the
        wrong type is reported once and ends the checks of that function. ``explain`` may
        turn an exception it recognises into the one sentence that says why it happened."""
        outcome = learner_code.call(fn, *args)
        self.printed |= bool(outcome.printed)
        if outcome.timed_out:
            self.fail(f"{what} did not return within {learner_code.TIME_LIMIT:g} s: is there a "
                      "loop that never ends?")
        if isinstance(outcome.error, NotImplementedError):
            raise NotImplementedError
        if outcome.error is not None and "read-only" in str(outcome.error):
            self.fail(f"{what} changed one of its inputs in place (the server keeps them "
                      "read-only, as it still needs them): build and return new arrays instead.")
        if outcome.error is not None and explain is not None:
            reason = explain(outcome.error)
            if reason:
                self.fail(reason)
        if outcome.error is not None:
            self.fail(f"{what} raised {one_line(outcome.error)}." + (f" {hint}" if hint else ""))
        problem = type_problem(outcome.value, returns) if returns else None
        if problem:
            self.fail(f"{what} {problem}")
        return outcome.value

    def promise(self, what: str, thunk: Callable[[], Any],
                then: Optional[Callable[[Any], None]] = None) -> None:
        """Run ``thunk`` (a short real run with the learner's code, as the experiment will do
        it); if it fails or hangs, that is one problem. ``then`` checks what it returned."""
        outcome = learner_code.call(thunk, seconds=RUN_LIMIT)
        self.printed |= bool(outcome.printed)
        if outcome.timed_out:
            self.fail(f"a short run with your {what} did not finish within {RUN_LIMIT:g} s: "
                      "the experiments would hang.")
        if isinstance(outcome.error, NotImplementedError):
            raise NotImplementedError  # a stub the checks before did not call: not written yet
        if isinstance(outcome.error, Rejected):
            raise outcome.error  # a check inside the run has already said what went wrong
        if outcome.error is not None:
            self.fail(f"your {what} passes the small cases, but a short run with it stopped: "
                      f"{one_line(outcome.error)}")
        self.expect(True, "")
        if then is not None:
            then(outcome.value)

    def part(self, name: str, checks: Callable[[], None]) -> None:
        """Run the checks of one function on their own: a stub, or a failure, in one
        function does not hide the verdict on another."""
        before = len(self.problems)
        try:
            checks()
        except NotImplementedError:
            self.results[name] = None
            return
        except Rejected:
            pass
        except Exception as err:  # what the learner's code gave could not even be read
            self.expect(False, f"the checks of {name} could not read what your code returned "
                               f"({one_line(err)}); compare its types and shapes with the "
                               "exercise's description.")
        self.results[name] = len(self.problems) == before

    def report(self) -> Verdict:
        verdict = Verdict(self.results)
        unwritten = [n for n, r in self.results.items() if r is None]
        if len(unwritten) == len(self.results):
            then = (" The experiments below use the library's reference implementation until "
                    "it passes." if self.fallback else
                    " Write your code in place of # YOUR CODE HERE, then run this cell again.")
            print(f"{self.label}: not written yet (your code raises NotImplementedError).{then}")
            return verdict
        if self.problems:
            print(f"{self.label}: {len(self.problems)} of {self.checks} checks failed.")
            for p in dict.fromkeys(self.problems):  # each message once, in order
                print(f"  - {p}")
        else:
            written = [n for n in self.results if self.results[n]]
            what = f"{', '.join(written)}: " if unwritten else ""
            print(f"{self.label}: {what}all {self.checks} checks passed.")
        for name in unwritten:
            then = (f"; the experiments use the reference {name} until it passes."
                    if self.fallback else ".")
            print(f"  - {name} is not written yet (it raises NotImplementedError){then}")
        if self.printed:
            print("  (Your code printed while it was checked; the checker does not show it.)")
        return verdict


def pick(learner: Any, reference: Any, passed: Any, name: str = "") -> Any:
    """The learner's implementation if it passed its checks, else the reference."""
    label = f" {name}" if name else ""
    try:
        use = bool(passed)
    except Exception:  # something that cannot say whether it passed did not pass
        use = False
    print(f"Using {'your' if use else 'the reference'}{label} implementation.")
    return learner if use else reference
