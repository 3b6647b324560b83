"""What a learner's hook returned, checked where the run uses it.

A hook (``accept``, ``may_start``, ``mixing_rule``, ``buffer_step``) is the
learner's code inside the loop. Whatever it returns is checked before the run
uses it, and anything else raises a ``ValueError`` that names the hook, what it
returned and what was expected, so that a wrong answer never turns silently
into a wrong run (``None`` read as "reject", ``"no"`` read as "accept"). A
numpy scalar counts as the Python value it holds. A hook must also leave the
models it is shown as it found them: :class:`Untouched` notices an in-place
change.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from ..core.arrays import cast_like, fingerprint, is_array, is_floating, kind, same_kind


def as_bool(value: Any, hook: str) -> bool:
    """``value`` as a bool, if it is one (numpy's included); else ``ValueError``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{hook} returned {value!r} ({type(value).__name__}): expected True or False")


def as_rate(value: Any, hook: str) -> float:
    """``value`` as a float in [0, 1] (numpy scalars included); else ``ValueError``."""
    if is_array(value):
        raise ValueError(f"{hook} returned a {kind(value)} ({value!r}): expected a plain number "
                         "in [0, 1]; convert it with float(...)")
    if (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value) and 0 <= value <= 1):
        return float(value)
    raise ValueError(f"{hook} returned {value!r} ({type(value).__name__}): expected a number "
                     "in [0, 1]")


def check_state(result: Any, like: Mapping[str, Any], hook: str) -> Dict[str, Any]:
    """``result`` as a state like ``like`` (same keys, kinds and shapes); else ``ValueError``.

    An entry of another floating precision (float64 where the state is float32, as numpy 2
    gives for ``d / np.sqrt(2.0)``) is cast to the state's dtype; any other dtype (an integer
    array, say) is refused.
    """
    if not isinstance(result, Mapping):
        raise ValueError(f"{hook} returned {type(result).__name__}: expected a state dict like "
                         f"the server's, with the keys {sorted(like)}")
    if set(result) != set(like):
        missing, extra = sorted(set(like) - set(result)), sorted(set(result) - set(like))
        raise ValueError(f"{hook} returned a state with the wrong keys (missing {missing}, "
                         f"extra {extra}): expected the server state's keys {sorted(like)}")
    state = {}
    for key, ref in like.items():
        got = result[key]
        if not same_kind(got, ref):
            raise ValueError(f"{hook} returned {type(got).__name__} for {key!r}: expected a "
                             f"{kind(ref)} of shape {tuple(ref.shape)}, like the server state")
        if tuple(got.shape) != tuple(ref.shape) or (
                got.dtype != ref.dtype and not (is_floating(got) and is_floating(ref))):
            raise ValueError(f"{hook} returned {key!r} as a {got.dtype} {kind(got)} of shape "
                             f"{tuple(got.shape)}: expected {ref.dtype} of shape {tuple(ref.shape)}, "
                             "like the server state")
        state[key] = cast_like(got, ref)
    return state


class Untouched:
    """Notices when a hook changes, in place, a state it was shown.

    ``Untouched(hook, named_states)`` remembers each entry and a fingerprint of its values
    (:func:`~fedasync_lib.core.arrays.fingerprint`); ``check()`` raises ``ValueError`` naming
    the hook and the state if an entry was replaced, removed or added, or changed in place.
    :meth:`call` runs the hook and checks; it also reports a write into the server's
    read-only arrays in those words.
    """

    def __init__(self, hook: str, states: Mapping[str, Mapping[str, Any]]):
        self.hook = hook
        self.states = states
        self.before: Dict[str, List[Tuple[str, int, int]]] = {
            name: self._snapshot(state) for name, state in states.items()}

    @staticmethod
    def _snapshot(state: Mapping[str, Any]) -> List[Tuple[str, int, int]]:
        return [(k, id(v), fingerprint(v)) for k, v in state.items()]

    def _error(self, name: str) -> ValueError:
        return ValueError(f"{self.hook} changed {name} in place: a hook must leave the "
                          "models it is shown as it found them (the server and the "
                          "updates in flight still need them); build new arrays instead")

    def call(self, fn, *args: Any) -> Any:
        """``fn(*args)``, then :meth:`check`."""
        try:
            result = fn(*args)
        except ValueError as err:
            if "read-only" in str(err):  # numpy refused to write into a frozen state
                raise self._error(next(iter(self.states), "a state")) from None
            raise
        self.check()
        return result

    def check(self) -> None:
        for name, state in self.states.items():
            if self._snapshot(state) != self.before[name]:
                raise self._error(name)
