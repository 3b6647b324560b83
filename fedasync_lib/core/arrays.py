"""What a state's entries may be: numpy arrays (the built-in models) or torch tensors (a
``torch.nn.Module``), told apart without importing torch.

The formulas of the server (a mixing step, FedBuff's buffered step, a distance) are written
once with ``+``, ``-``, ``*`` and ``.sum()``, which numpy arrays and tensors share; only the
checks of what a learner's hook returned need to know which kind an entry is.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np


def is_tensor(value: Any) -> bool:
    """True for a torch tensor (checked by its type's module: torch need not be imported)."""
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "shape")


def is_array(value: Any) -> bool:
    """True for a numpy array or a torch tensor."""
    return isinstance(value, np.ndarray) or is_tensor(value)


def kind(value: Any) -> str:
    """How an entry is named in a message: "numpy array" or "tensor"."""
    return "tensor" if is_tensor(value) else "numpy array"


def same_kind(value: Any, like: Any) -> bool:
    """True when ``value`` is the kind of array ``like`` is (numpy array, or tensor)."""
    return is_tensor(value) if is_tensor(like) else isinstance(value, np.ndarray)


def is_floating(value: Any) -> bool:
    """True for a numpy array or tensor of a floating dtype (float16, float32, float64, ...)."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f"
    return bool(getattr(value.dtype, "is_floating_point", False))


def cast_like(value: Any, like: Any) -> Any:
    """``value`` in ``like``'s dtype (a new array only when the dtypes differ).

    Used where a learner's floating result has another precision than the state: numpy 2
    promotes ``float32_array / np.sqrt(2.0)`` to float64 (a numpy scalar keeps its type, NEP 50),
    which is a correct answer in the wrong precision, not a wrong answer.
    """
    if value.dtype == like.dtype:
        return value
    if isinstance(value, np.ndarray):
        return value.astype(like.dtype)
    return value.to(like.dtype)


def fingerprint(value: Any) -> int:
    """A number that changes when ``value`` is changed in place: a tensor's version counter,
    a numpy array's CRC-32 of its bytes."""
    if isinstance(value, np.ndarray):
        return zlib.crc32(np.ascontiguousarray(value).view(np.uint8).reshape(-1))
    return int(getattr(value, "_version", 0))
