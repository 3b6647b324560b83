"""An optional cache of finished runs on disk, shared by every process that points at it.

A run is a pure function of its config, its algorithm and the library's code, so a
finished :class:`~fedasync_lib.core.history.History` can be kept and handed out again.
:func:`fedasync_lib.lesson.simulate` keeps runs in memory for one process; with the
environment variable ``FEDASYNC_RUN_CACHE`` set to a folder, it also keeps them there, so
that another process (another notebook kernel, the browser test's kernel) that asks for
the same run gets it at once. The key of a run is a hash of its config, its algorithm and
the source of every module of ``fedasync_lib``: change the code, and no old run is used.

One process computes a run, the others wait for it: while a process computes a run it
holds a lock on that run's key (``flock`` on ``<key>.lock``), and a process that asks for
the same run meanwhile waits for the lock and then reads the result. So twenty learners
of the classroom app who move a slider to the same value at the same moment cost one
simulation, not twenty (docs/classroom.md measures it). Where ``fcntl`` does not exist
(Windows), there is no lock, and two processes may both compute the same run.

Two places set the variable. The test command sets it to a fresh folder for each session
(``test-artifacts/run-cache``): each run is computed, and so checked against the stored
outputs, the first time a session asks for it. ``scripts/classroom.sh`` sets it, unless it
is set already, to ``.cache/classroom-runs`` for all the learners' kernels of one server,
and first removes what it kept for other versions of the code (:func:`prune`).
``scripts/check_outputs.sh`` leaves it unset, so that every notebook there computes
everything itself.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Set, TypeVar

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no lock (see the module's docstring)
    fcntl = None  # type: ignore[assignment]

from ..core.config import AsyncConfig
from ..core.data import FederatedData

VARIABLE = "FEDASYNC_RUN_CACHE"
T = TypeVar("T")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the source of every module of the library."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def data_digest(data: FederatedData) -> str:
    """A hash of the clients' and the test set's arrays (dtype, shape and bytes) and the
    latencies: the key of a run on data that a user brought (:meth:`FederatedData.from_clients`),
    so that two processes that build the same data share the run."""
    digest = hashlib.sha256()
    for part in [*data.clients, data.test]:
        for array in (np.ascontiguousarray(part.x), np.ascontiguousarray(part.y)):
            digest.update(f"{array.dtype} {array.shape}".encode())
            digest.update(array.tobytes())
    digest.update(repr(None if data.latencies is None else np.asarray(data.latencies).tolist()).encode())
    return digest.hexdigest()[:32]


def folder() -> Optional[Path]:
    value = os.environ.get(VARIABLE)
    return Path(value) if value else None


def cached(config: AsyncConfig, algorithm: str, compute: Callable[[], T]) -> T:
    """``compute()``, or the result kept on disk for the same config, algorithm and code
    (a :class:`~fedasync_lib.core.history.History`, or an experiment's result built from runs)."""
    root = folder()
    if root is None:
        return compute()
    where = root / code_version()  # one folder per version of the code: see prune()
    key = hashlib.sha256(f"{code_version()} {algorithm} {config!r}".encode()).hexdigest()[:32]
    path = where / f"{key}.pickle"
    kept = _read(path)
    if kept is not _MISSING:
        return kept
    with _only_one_computes(where, key):
        kept = _read(path)  # computed by another process while this one waited
        if kept is not _MISSING:
            return kept
        history = compute()
        where.mkdir(parents=True, exist_ok=True)  # again: prune() may have run meanwhile
        with tempfile.NamedTemporaryFile(dir=where, delete=False) as f:  # whole, or not at all
            pickle.dump(history, f)
        os.replace(f.name, path)
    return history


def prune(root: Optional[Path] = None) -> int:
    """Remove what ``root`` (by default the folder of ``FEDASYNC_RUN_CACHE``) keeps for other
    versions of the code, which no run of this version can use; return how many files went.

    Entries live in one folder per version (``<root>/<code_version()>/<key>.pickle``), so
    this removes the entries of every other version's folder (and the folder, once empty),
    and any entry of the older, flat layout; nothing else in ``root`` is touched.
    ``scripts/classroom.sh`` calls it before it serves, so that a classroom's cache holds the
    runs of one version only (about 30 KB a run). A process of another version still using
    ``root`` loses its entries and computes them again; it does not fail.
    """
    root = folder() if root is None else Path(root)
    if root is None or not root.is_dir():
        return 0
    removed = 0
    for path in root.iterdir():  # only what this module writes: the folder may hold more
        if path.is_dir() and _VERSION.fullmatch(path.name) and path.name != code_version():
            entries = [p for p in path.iterdir() if _ENTRY.fullmatch(p.name)]
            for entry in entries:
                entry.unlink(missing_ok=True)
            removed += len(entries)
            with contextlib.suppress(OSError):  # not empty: something else is in it
                path.rmdir()
        elif path.is_file() and _ENTRY.fullmatch(path.name):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


#: The names this module gives a version's folder, and an entry (a result or its lock; a
#: result being written is a temporary file, left alone).
_VERSION = re.compile(r"[0-9a-f]{16}")
_ENTRY = re.compile(r"[0-9a-f]{32}\.(pickle|lock)")


#: What :func:`_read` returns for no entry, or a broken one (a kept result may be ``None``).
_MISSING = object()


def _read(path: Path):
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError):
        return _MISSING


#: Keys this process holds the lock of: a run computed inside another run's computation
#: with the same key must not wait for itself.
_held: Set[str] = set()


@contextmanager
def _only_one_computes(where: Path, key: str) -> Iterator[None]:
    """Hold the lock on ``key`` across processes while the body runs."""
    where.mkdir(parents=True, exist_ok=True)
    if fcntl is None or key in _held:
        yield
        return
    with open(where / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
            fcntl.flock(lock, fcntl.LOCK_UN)
