"""Calling a learner's function safely: a time limit, and nothing it prints in the way.

A checker calls code that a learner has just written. That code may raise
anything, print, or never return (``while True``). :func:`call` turns each of
these into an :class:`Outcome` the checker can judge:

* an exception is caught and kept (``outcome.error``);
* what the function prints is kept (``outcome.printed``) instead of flooding
  the checker's verdict;
* after ``seconds`` (10 by default) the call is interrupted and
  ``outcome.timed_out`` is set.

How a call is interrupted: in the main thread on a system with ``SIGALRM``
(Linux, macOS; Jupyter runs cells in the main thread), a timer signal raises
inside the function, which also ends a ``time.sleep``; elsewhere (Windows, a
thread) a watchdog thread raises :class:`TookTooLong` in the caller's thread
with ``PyThreadState_SetAsyncExc``, which ends any loop of Python code. In the
browser (Pyodide) there are neither timer signals nor threads: a trace function
(``sys.settrace``) looks at the clock on each line of the learner's own code
(code outside the installed packages and the standard library), and raises there.
:class:`TookTooLong` derives from ``BaseException``, so a learner's ``except
Exception`` cannot swallow it.
"""

from __future__ import annotations

import ctypes
import io
import os
import signal
import sys
import sysconfig
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any, Callable, Optional

#: Seconds a learner's function may take before the checker gives up on it.
TIME_LIMIT = 10.0


class TookTooLong(BaseException):
    """Raised inside a learner's function that ran past its time limit."""


@dataclass
class Outcome:
    value: Any = None
    error: Optional[BaseException] = None
    timed_out: bool = False
    printed: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out


def call(fn: Callable[..., Any], *args: Any, seconds: Optional[float] = None,
         **kwargs: Any) -> Outcome:
    """``fn(*args, **kwargs)`` under a time limit (``seconds``, by default
    :data:`TIME_LIMIT`), with its printing captured."""
    seconds = TIME_LIMIT if seconds is None else seconds
    out = io.StringIO()
    outcome = Outcome()
    try:
        with _time_limit(seconds), redirect_stdout(out), redirect_stderr(out):
            outcome.value = fn(*args, **kwargs)
    except TookTooLong:
        outcome.timed_out = True
    except KeyboardInterrupt:
        raise  # the learner pressed stop: stop
    except BaseException as err:  # the learner's code may fail in any way, SystemExit included
        outcome.error = err
    outcome.printed = out.getvalue()
    return outcome


class _time_limit:
    """Raise :class:`TookTooLong` in this thread after ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        main = threading.current_thread() is threading.main_thread()
        if hasattr(signal, "SIGALRM") and hasattr(signal, "setitimer") and main:
            self.how = "signal"
        elif sys.platform == "emscripten":  # Pyodide: no timer signals, no threads
            self.how = "trace"
        else:
            self.how = "watchdog"

    def __enter__(self) -> "_time_limit":
        self.started = time.monotonic()
        if self.how == "signal":
            self.previous = signal.signal(signal.SIGALRM, self._on_alarm)
            self.outer = signal.setitimer(signal.ITIMER_REAL, self.seconds)
        elif self.how == "trace":
            self.deadline = self.started + self.seconds
            self.previous_trace = sys.gettrace()
            sys.settrace(self._on_call)
        else:
            self.target = threading.get_ident()
            self.done = threading.Event()
            self.watchdog = threading.Thread(target=self._watch, daemon=True)
            self.watchdog.start()
        return self

    @staticmethod
    def _on_alarm(signum: int, frame: Any) -> None:
        raise TookTooLong()

    def _on_call(self, frame: Any, event: str, arg: Any):
        """The trace's "call" event: follow the lines of a learner's frame only."""
        return self._on_line if _learners(frame.f_code.co_filename) else None

    def _on_line(self, frame: Any, event: str, arg: Any):
        if time.monotonic() > self.deadline:
            raise TookTooLong()
        return self._on_line

    def _watch(self) -> None:
        if not self.done.wait(self.seconds):
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.target),
                                                       ctypes.py_object(TookTooLong))

    def __exit__(self, *exc: Any) -> None:
        if self.how == "signal":
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
            if self.outer[0] > 0:  # an enclosing limit: give it back what is left of it
                left = self.outer[0] - (time.monotonic() - self.started)
                signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
        elif self.how == "trace":
            sys.settrace(self.previous_trace)
        else:
            self.done.set()
            self.watchdog.join()


#: Where the installed packages, the standard library and this package live: code there is
#: not the learner's.
_LIBRARY = tuple({os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                  *(p for p in (sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib",
                                                                        "purelib", "platlib")) if p)})


def _learners(filename: str) -> bool:
    """True for code a learner wrote (a notebook cell), false for library code."""
    return not (filename.startswith(_LIBRARY) or filename.startswith("<frozen"))
