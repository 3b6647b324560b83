"""The asynchronous server: the one event loop of every algorithm and driver.

At every moment up to ``concurrency`` clients are training. Each one trains
on the model version it was handed when it started, and its update arrives
when its device is done. The loop, for FedAsync, FedBuff, synchronous FedAvg
and the staleness bounds alike:

    1. idle clients are handed the current model while slots are free and
       the policy allows it (``policy.may_start``);
    2. the driver reports the next event: an update arrives (it joins the
       scheduler's queue and its client is idle again), or a client fails;
    3. when the server is free, it takes the next update from the queue:
       staleness = current version - the version the job started from, and
       the policy decides what it does to the model (``policy.receive``);
    4. after the last update the policy applies what it still holds
       (``policy.flush``), and the final model is evaluated.

What an algorithm decides is its policy (:mod:`fedasync_lib.core.policy`);
where time and results come from is the driver: the virtual clock
(:mod:`fedasync_lib.core.virtual_clock`) or real Dask workers
(:mod:`fedasync_lib.deploy`). One divergence rule, one evaluation cadence,
one history for all of them.

Fast clients come back sooner, so they contribute more updates, and every
update that arrives while others are in flight is stale. A sequential loop
(train one client, apply, repeat) can never show this: there, every update
is applied to exactly the model it was trained from, so staleness is 0.
"""

from __future__ import annotations

import bisect
import itertools
import math
import numbers
from typing import Dict, List, Optional

import numpy as np

from . import dense, seeding
from .availability import availability_model
from .clients import AsyncClient
from .config import AsyncConfig
from .data import AsyncDataset
from .driver import Driver, Failure
from .history import History
from .memory import check_training_fits
from .model import AsyncModel, DenseModel, Loss, State, evaluate, is_builtin
from .policy import Policy, ServerModel
from .scheduling import Scheduler
from .threads import one_thread
from .training import LocalJob, local_trainer
from .update import Update


#: A run has diverged when a loss passes this many times its start (see :func:`divergence`).
DIVERGENCE_FACTOR = 1e6


def divergence(client_loss: float, evaluation: Optional[Dict[str, float]],
               start_loss: float) -> Optional[str]:
    """The one divergence rule: why the run has diverged, or ``None`` if it has not.

    A run has diverged when a client's loss on its own data after training, or
    the server model's test loss, is not a finite number, or is more than
    ``DIVERGENCE_FACTOR`` (10^6) times the test loss at the start (taken as at
    least 1). Why 10^6: cross-entropy is at least the margin by which a wrong
    class's score beats the true one's, so a loss of L means scores of size L.
    A float32 number carries 24 bits (one part in 1.7e7): once the scores, and
    the weights that make them, are millions of times their start, SGD steps of
    ordinary size no longer register against them, and the run cannot come
    back. ``python benchmarks/divergence_threshold.py`` measures it on three
    configs over learning rates 0.1 to 10 and alphas 0.05 to 1, with the rule
    off: of 76 runs that ended with finite numbers, none whose loss passed 10^7
    times its start came back (their final loss stayed above 10^8 times it, at
    0.14 to 0.55 accuracy), and none peaked between 10^5 and 10^7. A diverged
    run stops at once: its ``final_accuracy`` is nan.
    """
    limit = DIVERGENCE_FACTOR * max(start_loss, 1.0)
    if not math.isfinite(client_loss):
        return "a client's training loss is not a finite number"
    if client_loss > limit:
        return (f"a client's training loss reached {client_loss:.3g}, more than 10^6 times "
                f"the starting test loss ({start_loss:.3g})")
    if evaluation is None:
        return None
    if not (math.isfinite(evaluation["accuracy"]) and math.isfinite(evaluation["loss"])):
        return "the server model is not finite"
    if evaluation["loss"] > limit:
        return (f"the test loss reached {evaluation['loss']:.3g}, more than 10^6 times its "
                f"start ({start_loss:.3g})")
    return None


def diverged(train_loss: float, evaluation: Optional[Dict[str, float]] = None,
             start_loss: float = 1.0) -> bool:
    """True when :func:`divergence` gives a reason."""
    return divergence(train_loss, evaluation, start_loss) is not None


def check_model_output(model, test_data: AsyncDataset, config: AsyncConfig) -> None:
    """Raise ``ValueError`` unless ``model`` (built-in, or a ``torch.nn.Module``) maps two test
    samples to ``(2, num_classes)`` scores."""
    x = test_data.x[:2]
    if isinstance(model, DenseModel):
        if tuple(x.shape[1:]) != (model.sizes[0],) or model.sizes[-1] != config.num_classes:
            raise ValueError(f"the built-in {model!r} does not fit the data: its samples have "
                             f"shape {tuple(x.shape[1:])} and num_classes={config.num_classes}")
        return
    try:
        import torch
        import torch.nn as nn
    except ImportError:  # no torch here (in the browser): a built-in model only
        torch = nn = None
    if nn is None or not isinstance(model, nn.Module):
        raise ValueError(f"model={model!r} is invalid: expected a built-in model (AsyncModel, "
                         "LinearModel) or a torch.nn.Module")
    try:
        with torch.no_grad():
            out = model(torch.as_tensor(x))
    except Exception as err:  # the learner's module: any error it raises is reported
        raise ValueError(f"model {type(model).__name__} cannot take the data's inputs of shape "
                         f"{tuple(x.shape[1:])} per sample: {type(err).__name__}: {err}") from None
    if not isinstance(out, torch.Tensor) or out.shape != (len(x), config.num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model {type(model).__name__} returned {shape} for {len(x)} samples: "
                         f"expected ({len(x)}, num_classes={config.num_classes}) class scores")


def initial_state(model) -> State:
    """A copy of ``model``'s parameters, as the server stores them: read-only numpy arrays of a
    built-in model, detached tensors of a module."""
    if isinstance(model, DenseModel):
        return model.state()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def as_module(model, loss: Optional[Loss], config: AsyncConfig):
    """For ``training="torch.func"``: a built-in model (``None``: the MLP of ``config``) as the
    same ``torch.nn.Module``, with cross-entropy, the only built-in loss torch has as is."""
    model = model if model is not None else AsyncModel(config)
    if (loss or model.loss) != "cross_entropy":
        raise ValueError(f"loss={loss or model.loss!r} is not read by training='torch.func' with a "
                         f"built-in model, which trains with cross-entropy: use training='auto'")
    return model.to_module()


def check_labels(datasets: List[AsyncDataset], test_data: AsyncDataset, config: AsyncConfig) -> None:
    """Raise ``ValueError`` if a label is outside ``0 .. num_classes - 1``, naming where."""
    for name, data in [*((f"client {i}", d) for i, d in enumerate(datasets)), ("test set", test_data)]:
        if len(data) and (int(data.y.min()) < 0 or int(data.y.max()) >= config.num_classes):
            raise ValueError(f"{name} has labels from {int(data.y.min())} to {int(data.y.max())}: "
                             f"expected 0 to num_classes - 1 = {config.num_classes - 1}")


class AsyncServer:
    """Runs ``policy`` (FedAsync when none is given) over ``clients``; evaluates on ``test_data``.

    ``model`` is the initial model: the built-in :class:`AsyncModel` or any
    ``nn.Module`` that maps a batch of inputs to ``(n, num_classes)`` scores.
    ``loss`` (per sample, ``reduction="none"``; cross-entropy by default) and
    ``training`` (``"auto"``, ``"hand-written"``, ``"torch.func"``) choose how
    clients train: see :func:`~fedasync_lib.core.training.local_trainer`.
    ``scheduler`` decides which waiting update is handled next and which idle
    client gets the model next (Exercise 2); by default the config's orders.
    """

    def __init__(self, model, clients: List[AsyncClient],
                 test_data: AsyncDataset, config: AsyncConfig, policy: Optional[Policy] = None,
                 *, scheduler: Optional[Scheduler] = None,
                 loss: Optional[Loss] = None, training: str = "auto"):
        if len(clients) != config.num_clients:
            raise ValueError(f"clients has {len(clients)} entries, expected "
                             f"num_clients={config.num_clients}")
        if training == "torch.func" and is_builtin(model):
            model, loss = as_module(model, loss, config), None
        model = model if model is not None else AsyncModel(config)
        check_model_output(model, test_data, config)
        check_labels([c.dataset for c in clients], test_data, config)
        state = initial_state(model)
        check_training_fits(config, sum(int(np.prod(v.shape)) for v in state.values()),
                            int(np.prod(test_data.x.shape[1:])), max(len(c.dataset) for c in clients))
        if policy is None:  # the tutorial's default algorithm
            from ..algorithms.fedasync import FedAsync
            policy = FedAsync(config)
        self.config = config
        self.clients = clients
        self.test_data = test_data
        self.policy = policy
        self.module = model  # its own parameters stay untouched: the server trains copies
        self.loss = loss
        self.training = training  # the path asked for: "auto", "hand-written" or "torch.func"
        self.local_training = local_trainer(model, [c.dataset for c in clients], config,
                                            loss=loss, training=training)
        self.model = ServerModel(state)
        # `is None`, not `or`: an empty scheduler has len() 0 and is falsy.
        self.scheduler = (scheduler if scheduler is not None
                          else Scheduler(config.update_order, config.client_order))

    @property
    def state(self) -> State:
        return self.model.state

    @property
    def version(self) -> int:
        return self.model.version

    def evaluate(self) -> Dict[str, float]:
        accuracy, loss = evaluate(self.model.state, self.test_data.x, self.test_data.y,
                                  self.module, self.loss)
        return {"accuracy": accuracy, "loss": loss}

    def train_loss(self) -> float:
        """The sample-weighted mean loss of the server model over every client's training
        samples, each sample weighted alike (so a client with more samples counts more). The
        quantity to watch for progress and stability (:attr:`History.stable`), but not what
        the convergence theorems bound: they bound the average squared gradient norm of the
        client-uniform objective, recorded as ``grad_norm_sq`` (:meth:`grad_norm_sq`,
        notebook 5)."""
        samples = self.local_training.samples
        total, n, chunk = 0.0, len(samples.y), 65_536
        for i in range(0, n, chunk):
            _, mean = evaluate(self.model.state, samples.x[i: i + chunk], samples.y[i: i + chunk],
                               self.module, self.loss)
            total += mean * len(samples.y[i: i + chunk])
        return total / n

    def grad_norm_sq(self) -> float:
        """``||grad f(x)||^2`` at the server model ``x``, for the clients' uniform average

            f(x) = (1/n) sum_i f_i(x),    f_i(x) = (1/m_i) sum_{j in client i} loss(x; s_j),

        the objective of Koloskova, Stich and Jaggi (2022), whose theorems bound the average
        of this quantity over a run (notebook 5). It differs from :meth:`train_loss` twice:
        a gradient's squared norm, not a loss value, and each client weighted alike, not
        each sample (a client with m_i samples weighs 1 / (n m_i) per sample here). The
        gradient of a built-in model is its own formula; of a module, autograd's."""
        samples = self.local_training.samples
        weights = np.repeat(1.0 / (len(samples.sizes) * samples.sizes), samples.sizes)
        if isinstance(self.module, DenseModel):
            return self._dense_grad_norm_sq(samples, weights)
        return self._autograd_grad_norm_sq(samples, weights)

    def _dense_grad_norm_sq(self, samples, weights: np.ndarray) -> float:
        """:meth:`grad_norm_sq` of a built-in model: its gradient formula
        (:func:`fedasync_lib.core.dense.gradients`, float32) over chunks of samples, summed in
        float64."""
        model = self.module
        params = dense.stack([self.model.state], model.layers)
        weights = weights.astype(np.float32)
        loss = self.local_training.loss
        total = [np.zeros(p.shape[1:], dtype=np.float64) for p in params]
        n, chunk = len(samples.y), 65_536
        for i in range(0, n, chunk):
            x = dense.with_ones(samples.x[i: i + chunk])[None]
            target = dense.one_hot_t(samples.y[i: i + chunk], model.sizes[-1])[None]
            for t, g in zip(total, dense.gradients(params, x, target, weights[None, i: i + chunk],
                                                   loss)):
                t += g[0]
        return float(sum((g * g).sum() for g in total))

    def _autograd_grad_norm_sq(self, samples, weights: np.ndarray) -> float:
        """:meth:`grad_norm_sq` of a module: autograd through the run's model and loss, with
        respect to every floating-point entry of the state, summed in float64."""
        import torch

        from .model import logits
        from .training_func import per_sample_loss

        weights = torch.as_tensor(weights, dtype=torch.float32)
        state = {k: (v.detach().clone().requires_grad_(True) if v.is_floating_point() else v)
                 for k, v in self.model.state.items()}
        wrt = [k for k, v in state.items() if v.requires_grad]
        loss = per_sample_loss(self.loss)  # the run's loss, cross-entropy by default
        total = {k: torch.zeros(state[k].shape, dtype=torch.float64) for k in wrt}
        n, chunk = len(samples.y), 65_536
        with torch.enable_grad():
            for i in range(0, n, chunk):
                out = logits(state, torch.as_tensor(samples.x[i: i + chunk]), self.module)
                y = torch.as_tensor(samples.y[i: i + chunk])
                weighted = (loss(out, y) * weights[i: i + chunk]).sum()
                grads = torch.autograd.grad(weighted, [state[k] for k in wrt], allow_unused=True)
                for k, g in zip(wrt, grads):
                    if g is not None:
                        total[k] += g.double()
        return float(sum((g * g).sum() for g in total.values()))

    # --- the event loop ---------------------------------------------------------
    def train(self, driver: Optional[Driver] = None) -> History:
        """Run until ``config.num_updates`` updates were handled, or the model diverged.

        The simulator's arithmetic runs on one intra-op thread
        (:func:`~fedasync_lib.core.threads.one_thread`), so that a run's numbers do not
        depend on how many cores the machine has or how busy they are.
        """
        with one_thread():
            return self._train(driver)

    def _train(self, driver: Optional[Driver]) -> History:
        if driver is None:
            from .virtual_clock import VirtualClock
            driver = VirtualClock()
        cfg, policy, model = self.config, self.policy, self.model
        latency = [c.mean_latency for c in self.clients]
        history = History(policy.name, client_latency=latency, clock=driver.clock)
        if driver.time_scale == 0 and (cfg.availability != "always" or cfg.job_timeout is not None):
            raise ValueError(f"availability={cfg.availability!r} and job_timeout="
                             f"{cfg.job_timeout!r} need a clock on which devices take time: "
                             f"this driver's time_scale is 0")
        driver.open(self, history)
        policy.bind_clock(driver.time_after)
        gen = seeding.rng(cfg.seed, "schedule")
        idle = list(range(cfg.num_clients))  # kept sorted, so choices are reproducible
        alive = set(idle)
        delivered = [0] * cfg.num_clients
        in_flight: Dict[int, LocalJob] = {}  # training
        waiting: Dict[int, LocalJob] = {}  # arrived, waiting for the server (apply_time > 0)
        job_ids = itertools.count()
        work = 0.0  # client-seconds of the jobs that have arrived (running ones are added at each evaluation)
        handled = 0
        busy_until = 0.0  # the server applies one update at a time, each taking apply_time
        start_loss = math.nan  # the test loss at the start: the divergence rule's yardstick
        available = availability_model(cfg)
        drops = seeding.rng(cfg.seed, "dropout")  # drawn only when dropout > 0
        lost: Dict[int, LocalJob] = {}  # in flight, but never coming back (dropout)
        expires: Dict[int, float] = {}  # when the server gives up on a job (job_timeout)
        last_tick = 0.0  # the idle slot time is counted up to here

        def tick() -> None:
            """Count the slot-seconds since the last tick in which fewer than ``concurrency``
            jobs were in flight."""
            nonlocal last_tick
            now = driver.now()
            free = cfg.concurrency - len(in_flight)
            if free > 0:
                history.idle_slot_time += (now - last_tick) * free
            last_tick = now

        def start_jobs() -> None:
            # A job waiting for the server can still arrive stale, so the policy sees it too.
            now = driver.now()
            ready = idle if available.always else [
                c for c in idle if available.is_available(c, now / driver.time_scale)]
            while (ready and len(in_flight) < policy.max_in_flight()
                   and policy.may_start(model, [*in_flight.values(), *waiting.values()], handled)):
                client = self.clients[self._pick_client(ready, latency, delivered, gen)]
                del idle[bisect.bisect_left(idle, client.client_id)]  # idle is sorted
                if ready is not idle:
                    ready.remove(client.client_id)
                job = LocalJob(next(job_ids), client.client_id, model.version, model.state,
                               start_time=now)
                in_flight[job.job_id] = job
                policy.on_start(job)
                duration = client.job_latency(gen)
                if cfg.job_timeout is not None:
                    expires[job.job_id] = driver.time_after(cfg.job_timeout)
                if cfg.dropout > 0 and drops.random() < cfg.dropout:
                    lost[job.job_id] = job  # the device took the model and is gone
                else:
                    driver.start(job, duration)

        def give_up(job: LocalJob) -> None:
            """``job_timeout`` passed: free the job's slot; its result, if any, is never used."""
            now = driver.now()
            del in_flight[job.job_id]
            del expires[job.job_id]
            if lost.pop(job.job_id, None) is None:
                driver.cancel(job)
                reason = "late"
            else:
                reason = "dropped"
            history.dropped.append({"client_id": job.client_id, "start_time": job.start_time,
                                    "freed_time": now, "reason": reason})
            nonlocal work
            work += now - job.start_time
            bisect.insort(idle, job.client_id)
            history.set_weights(policy.on_abandon(model, job, now))

        def next_wake(deadline: Optional[float]) -> Optional[float]:
            """The earliest moment the loop must act without an arrival: the policy's
            deadline, a job's timeout, or an idle client becoming available while a slot
            is free (``inf``: none ever will)."""
            if not expires and available.always:
                return deadline  # the default run: only a policy's deadline, if any
            times = [] if deadline is None else [deadline]
            if expires:
                times.append(min(expires.values()))
            if not available.always and idle and len(in_flight) < policy.max_in_flight():
                now = driver.now()
                first = driver.time_scale * min(
                    available.next_available(c, now / driver.time_scale) for c in idle)
                if first > now:
                    times.append(first)
            return min(times) if times else None

        def record_eval() -> Dict[str, float]:
            evaluation = self.evaluate()
            now = driver.now()  # client computation so far: finished jobs, plus the running ones up to now
            spent = work + sum(max(0.0, now - job.start_time) for job in in_flight.values())
            record = {"update": handled, "time": now, "work": spent, "version": model.version,
                      **evaluation, "train_loss": self.train_loss()}
            if cfg.track_grad_norm:
                record["grad_norm_sq"] = self.grad_norm_sq()
            history.evals.append(record)
            return evaluation

        def handle(job: LocalJob) -> float:
            """The server takes up one waiting update; returns the client's loss."""
            now = driver.now()
            state, loss = driver.result(job)
            update = Update(state, job.client_id, job.base_version,
                            len(self.clients[job.client_id].dataset), start_time=job.start_time,
                            arrival_time=job.arrival_time, train_loss=loss,
                            base_state=job.base_state)
            staleness = update.staleness(model.version)
            index = len(history.updates)
            weights = policy.receive(model, update, staleness, now, index)
            history.record_update(job, applied_time=now, version=model.version,
                                  staleness=staleness, alpha=weights.pop(index, 0.0),
                                  train_loss=loss)
            history.set_weights(weights)  # earlier updates a buffered step has just applied
            bisect.insort(idle, job.client_id)  # the client may be handed the model again
            return loss

        try:
            start_jobs()
            start_loss = record_eval()["loss"]
            while handled < cfg.num_updates and history.divergence is None:
                if waiting and driver.now() >= busy_until:
                    loss = handle(self._pop_update(waiting))
                    handled += 1
                    busy_until = driver.time_after(cfg.apply_time)
                    driver.after_update(handled)
                    finished = handled == cfg.num_updates
                    if finished and divergence(loss, None, start_loss) is None:
                        history.set_weights(policy.flush(model, driver.now()))
                    evaluation = None
                    if (finished or handled % cfg.eval_every == 0
                            or divergence(loss, None, start_loss) is not None):
                        evaluation = record_eval()
                    history.divergence = divergence(loss, evaluation, start_loss)
                    start_jobs()
                    continue
                deadline = policy.deadline()  # a time window's end, say
                wake = next_wake(deadline)
                if wake == math.inf and not in_flight and not waiting:
                    raise RuntimeError(
                        f"no client will ever be available again: every idle client's "
                        f"availability has ended (time {driver.now():g}, {handled} of "
                        f"{cfg.num_updates} updates handled)")
                if not in_flight and not waiting and wake is None:
                    raise RuntimeError(
                        f"no client may start a job: the {policy.name} policy's may_start refused "
                        f"every idle client while none is training (server version "
                        f"{model.version}, {handled} of {cfg.num_updates} updates handled)")
                until = busy_until if waiting else None
                if wake is not None and wake != math.inf:
                    until = wake if until is None else min(until, wake)
                event = driver.next_event(until)
                tick()
                if event is None:  # the server became free, a deadline or a timeout came
                    now = driver.now()
                    fired = deadline is not None and now >= deadline
                    if fired:
                        history.set_weights(policy.on_deadline(model, now))
                    expired = [j for j, t in expires.items() if t <= now]
                    for job_id in expired:
                        give_up(in_flight[job_id])
                    if fired or expired or not (waiting and now >= busy_until):
                        start_jobs()  # else the server takes its waiting update up first
                    continue
                job = event.job
                del in_flight[job.job_id]
                expires.pop(job.job_id, None)
                if isinstance(event, Failure):
                    alive.discard(job.client_id)
                    history.incidents.append({"time": driver.now(), "event": "client failed",
                                              "client_id": job.client_id, "error": str(event.error)})
                    if not alive:
                        raise RuntimeError(f"every client's training failed; the last error: "
                                           f"{event.error}")
                else:
                    delivered[job.client_id] += 1
                    work += job.arrival_time - job.start_time
                    waiting[job.job_id] = job
                    self.scheduler.push_update(job, job.arrival_time, job.base_version)
                    if driver.now() >= busy_until:
                        continue  # the server takes it up before anyone is handed the model
                start_jobs()
        finally:
            tick()
            stopped = driver.close()  # also when the run fails: nothing is left running
            for job in lost.values():
                job.arrival_time = math.nan  # never
            stopped = [*stopped, *lost.values()]

        history.diverged = history.divergence is not None
        history.held_back = policy.held()  # kept in a buffer when a diverged run stopped
        history.discarded = policy.discarded()  # too late for their round (FedAvg)
        for job in sorted([*stopped, *waiting.values()], key=lambda j: (_or_inf(j.arrival_time), j.job_id)):
            history.unfinished.append({"client_id": job.client_id, "start_time": job.start_time,
                                       "arrival_time": job.arrival_time})
        history.final_accuracy = (float("nan") if history.diverged
                                  else history.evals[-1]["accuracy"])
        return history

    # --- the scheduler's answers, checked -------------------------------------------
    def _pick_client(self, idle: List[int], latency: List[float], delivered: List[int],
                     gen) -> int:
        choice = self.scheduler.pick_client(list(idle), latency, list(delivered), gen)
        if (isinstance(choice, numbers.Integral) and not isinstance(choice, (bool, np.bool_))
                and int(choice) in idle):
            return int(choice)
        raise ValueError(f"scheduler.pick_client returned {choice!r}: expected one of the idle "
                         f"clients {idle} (an int)")

    def _pop_update(self, waiting: Dict[int, LocalJob]) -> LocalJob:
        job = self.scheduler.pop_update()
        if isinstance(job, LocalJob) and waiting.get(job.job_id) is job:
            return waiting.pop(job.job_id)
        raise ValueError(f"scheduler.pop_update returned {job!r}: expected one of the "
                         f"{len(waiting)} jobs pushed with push_update and not popped yet")


def _or_inf(time: float) -> float:
    """A time to sort by: a job that never arrives (nan) comes last."""
    return math.inf if math.isnan(time) else time
