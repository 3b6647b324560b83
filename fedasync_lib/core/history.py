"""What a run leaves behind: one record per arriving update, one per evaluation.

Both are plain lists of dicts, so ``pandas.DataFrame(history.updates)`` works
for anyone who wants a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

#: A stable run's training loss never passes this multiple of its start (:attr:`History.stable`).
STABLE_PEAK = 2.0


@dataclass
class History:
    """The record of one run.

    updates: one dict per update the server handled, in the order it handled them:
        ``arrival_time`` (when it reached the server), ``applied_time`` (when
        the server took it up; later when it queued), ``start_time`` (when its
        client got the model), ``client_id``, ``base_version``, ``version``
        (server version right after it was handled), ``staleness``, ``alpha``
        (its weight in the step that applied it: FedAsync's mixing rate,
        FedBuff's eta / (K sqrt(1 + staleness)), FedAvg's sample share; 0 when
        it was rejected), ``train_loss`` (the client's loss on its own data).
        An update that a buffer holds back gets its weight when the buffer
        is applied, at the latest when the run ends.
    evals: one dict at the start and every ``eval_every`` updates:
        ``update`` (updates handled so far), ``time``, ``work`` (client-seconds
        of training so far, jobs still running included), ``version``,
        ``accuracy`` and ``loss`` on the held-out test set,
        ``train_loss``, the server model's mean loss over every client's
        training samples (weighted by sample, so a large client counts more),
        and, with ``AsyncConfig(track_grad_norm=True)``,
        ``grad_norm_sq``, ``||grad f(x)||^2`` for the client-uniform
        objective ``f = (1/n) sum_i f_i``, each ``f_i`` a client's mean loss:
        the quantity whose average over the run the convergence theorems of
        Koloskova, Stich and Jaggi (2022) bound. ``train_loss`` is not what
        they bound: it is a loss value, not a gradient, and of another average.
    final_accuracy: test accuracy of the final model (nan if it diverged).
    client_latency: each client's typical job time in virtual seconds.
    diverged: True when the run stopped because it diverged; ``divergence``
        says why (:func:`fedasync_lib.core.server.divergence`: a loss that is
        not finite, or more than 10^6 times the starting test loss). That is a
        reason to *stop*, not a verdict on the run: whether the run was stable
        is :attr:`stable`.
    held_back: arrival indices of updates that a buffer (FedBuff, FedAvg's
        round) still held when a diverged run stopped: never applied, and not
        rejected either (empty when the run finished: the last buffer is
        applied).
    discarded: arrival indices of updates that came too late for their round
        (synchronous FedAvg with ``oversample`` or ``round_deadline``): taken up,
        never applied (weight 0).
    unfinished: jobs still training, or waiting for the server, when the run
        ended, as dicts with ``client_id``, ``start_time`` and ``arrival_time``
        (virtual clock: when they would have arrived; wall clock: when they
        were cancelled).
    dropped: jobs the server gave up on at ``job_timeout``, as dicts with
        ``client_id``, ``start_time``, ``freed_time`` (when its slot was freed)
        and ``reason``: ``"dropped"`` (the device never came back: ``dropout``)
        or ``"late"`` (it was still training; its result is never used).
    idle_slot_time: slot-seconds in which fewer than ``concurrency`` jobs were
        in flight: the integral over the run of ``max(0, concurrency - jobs in
        flight)``. Slots sit idle when no idle client is available, and when
        the policy holds them back (a synchronous round waiting for its last
        client, a staleness bound).
    clock: ``"virtual"`` (simulated seconds) or ``"wall-clock"`` (a deployed run).
    incidents: what went wrong in a deployed run (:mod:`fedasync_lib.deploy`), as dicts
        with ``time`` and ``event``: ``"job lost"`` (``client_id``, ``worker``,
        ``error``: the job is handed out again), ``"worker lost"`` (``worker``,
        ``client_ids`` that moved, ``moved_to``: each one's new worker) and
        ``"client failed"`` (``client_id``, ``error``: the run goes on without it).
    jobs: a deployed run's jobs that reached the server, as dicts with ``job_id``,
        ``client_id``, ``worker`` (the one that trained it), ``submitted`` (when the
        task was last handed to Dask), ``started`` and ``finished`` (on the worker's
        clock), ``arrived`` (when the server had its result), all in seconds since the
        run started, ``device`` (its emulated device time, slept on the worker) and
        ``attempts`` (more than 1 when it was redone after a lost worker). Empty on
        the virtual clock.
    placement: a deployed run's home worker of each client at the start
        (``{client_id: worker address}``); moves are in ``incidents``.
    """

    algorithm: str
    updates: List[Dict[str, Any]] = field(default_factory=list)
    evals: List[Dict[str, Any]] = field(default_factory=list)
    final_accuracy: float = float("nan")
    client_latency: List[float] = field(default_factory=list)
    diverged: bool = False
    divergence: Optional[str] = None
    held_back: List[int] = field(default_factory=list)
    discarded: List[int] = field(default_factory=list)
    unfinished: List[Dict[str, Any]] = field(default_factory=list)
    dropped: List[Dict[str, Any]] = field(default_factory=list)
    idle_slot_time: float = 0.0
    incidents: List[Dict[str, Any]] = field(default_factory=list)
    clock: str = "virtual"
    jobs: List[Dict[str, Any]] = field(default_factory=list)
    placement: Dict[int, str] = field(default_factory=dict)

    def copy(self) -> "History":
        """A copy that shares nothing a caller could change: what ``copy.deepcopy`` gives,
        several times faster (the update and evaluation records hold plain numbers, so a
        copy of each dict is enough; the rare nested records are deep-copied)."""
        import copy
        import dataclasses

        return dataclasses.replace(
            self, updates=[dict(r) for r in self.updates], evals=[dict(e) for e in self.evals],
            client_latency=list(self.client_latency), held_back=list(self.held_back),
            discarded=list(self.discarded),
            unfinished=copy.deepcopy(self.unfinished), dropped=[dict(d) for d in self.dropped],
            incidents=copy.deepcopy(self.incidents),
            jobs=[dict(j) for j in self.jobs], placement=dict(self.placement))

    def to_json(self) -> str:
        """The whole record as JSON (numbers as plain floats and ints; nan as null)."""
        import dataclasses
        import json

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            if isinstance(value, (np.integer, np.floating)):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return value
        return json.dumps(plain(dataclasses.asdict(self)), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "History":
        """A History back from :meth:`to_json` (placement keys as ints again)."""
        import json

        values = json.loads(text)
        values["placement"] = {int(k): v for k, v in values.get("placement", {}).items()}
        if values.get("final_accuracy") is None:
            values["final_accuracy"] = float("nan")
        return cls(**values)

    def record_update(self, job: Any, *, applied_time: float, version: int, staleness: int,
                      alpha: float, train_loss: float) -> None:
        """Append the record of a handled update; ``job`` is its :class:`training.LocalJob`."""
        self.updates.append({
            "arrival_time": job.arrival_time, "applied_time": applied_time,
            "start_time": job.start_time, "client_id": job.client_id,
            "base_version": job.base_version, "version": version,
            "staleness": staleness, "alpha": alpha, "train_loss": train_loss,
        })

    def set_weights(self, weights: Dict[int, float]) -> None:
        """Give earlier updates (by index) their weight in a step just taken."""
        for index, alpha in weights.items():
            self.updates[index]["alpha"] = alpha

    def column(self, key: str, records: str = "updates") -> np.ndarray:
        """One field of every update (or eval) record, as an array."""
        rows = getattr(self, records)
        if key == "grad_norm_sq" and rows and key not in rows[0]:
            raise KeyError("grad_norm_sq was not recorded: run with "
                           "AsyncConfig(track_grad_norm=True) to record it at each evaluation")
        return np.array([r[key] for r in rows])

    @property
    def stable(self) -> bool:
        """The lesson's one verdict on whether a run was stable (converging), judged by what
        its training loss did, at the evaluations:

        * the run was not stopped for divergence (:attr:`diverged`), and
        * its training loss at the last evaluation is below its value at the first (at
          update 0, the initial model), and
        * it never passed ``STABLE_PEAK`` (2) times that first value on the way.

        The first two are the minimum: a run that ends worse than it began has not
        converged, however finite its numbers (a loss in the thousands is not "not
        diverged"). The third is stricter, on purpose: a run whose loss shot up a
        hundredfold and came back down went through an unstable phase and was lucky;
        the factor 2 leaves room for the small overshoot that a delayed step makes just
        inside its stability region (notebook 5; a few percent on a quadratic). Between
        two evaluations a loss can rise and fall unseen: evaluate often where the verdict
        matters (``eval_every``).
        """
        if self.diverged or len(self.evals) < 2:
            return False
        loss = self.column("train_loss", "evals").astype(float)
        if not np.all(np.isfinite(loss)):
            return False
        return bool(loss[-1] < loss[0] and loss.max() <= STABLE_PEAK * loss[0])

    @property
    def num_applied(self) -> int:
        return sum(1 for u in self.updates if u["alpha"] > 0)

    @property
    def num_rejected(self) -> int:
        """Updates the policy turned away (a staleness bound); not those a buffer still
        held when a diverged run stopped (``held_back``)."""
        return len(self.updates) - self.num_applied - len(self.held_back)

    @property
    def virtual_time(self) -> float:
        """Seconds until the last handled update arrived (wall-clock seconds for a deployed run)."""
        return float(max(self.column("arrival_time"))) if self.updates else 0.0

    def contributions(self, applied_only: bool = True) -> np.ndarray:
        """Updates per client (applied ones only, by default)."""
        counts = np.zeros(len(self.client_latency), dtype=int)
        for u in self.updates:
            if u["alpha"] > 0 or not applied_only:
                counts[u["client_id"]] += 1
        return counts

    def tail_accuracy(self, evals: int = 5) -> float:
        """Mean test accuracy over the last ``evals`` evaluations.

        When the curve swings, the very last point is partly luck; this is the
        number the lesson quotes. nan for a diverged run.
        """
        if self.diverged:
            return float("nan")
        return float(np.mean(self.column("accuracy", "evals")[-evals:]))

    def swing(self) -> float:
        """How much the accuracy curve swings: the mean absolute change between
        consecutive evaluations over the second half of the run."""
        acc = self.column("accuracy", "evals")
        return float(np.mean(np.abs(np.diff(acc[len(acc) // 2:]))))

    def influence(self) -> np.ndarray:
        """Each client's applied update mass: the sum of the weights (``alpha``) its updates
        were applied with. The server model is pulled towards a client in proportion."""
        mass = np.zeros(len(self.client_latency))
        for u in self.updates:
            mass[u["client_id"]] += u["alpha"]
        return mass

    def jain_index(self, applied_only: bool = True, by: str = "updates") -> float:
        """Jain's fairness index (sum x)^2 / (n sum x^2) of the clients' contributions:
        1 when every client contributed equally, 1/n when one client did everything.
        ``by="updates"`` counts updates, ``by="alpha"`` their applied weight (:meth:`influence`)."""
        if by not in ("updates", "alpha"):
            raise ValueError(f"by={by!r} is invalid: expected 'updates' or 'alpha'")
        x = self.influence() if by == "alpha" else self.contributions(applied_only).astype(float)
        return float(x.sum() ** 2 / (len(x) * (x ** 2).sum())) if x.any() else 0.0

    def time_to_accuracy(self, target: float) -> Optional[float]:
        """Virtual time of the first evaluation at or above ``target``, else None."""
        for e in self.evals:
            if not math.isnan(e["accuracy"]) and e["accuracy"] >= target:
                return e["time"]
        return None

    def summary(self) -> Dict[str, Any]:
        s = self.column("staleness") if self.updates else np.zeros(1)
        return {
            "algorithm": self.algorithm,
            "final_accuracy": self.final_accuracy,
            "tail_accuracy": self.tail_accuracy(),
            "updates_applied": self.num_applied,
            "updates_rejected": self.num_rejected,
            "updates_held_back": len(self.held_back),
            "mean_staleness": float(s.mean()),
            "max_staleness": int(s.max()),
            "virtual_time": self.virtual_time,
            "train_loss": float(self.evals[-1]["train_loss"]) if self.evals else float("nan"),
            "diverged": self.diverged,
            "divergence": self.divergence,
            "stable": self.stable,
        }
