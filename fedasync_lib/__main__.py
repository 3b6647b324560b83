"""``python -m fedasync_lib``: run the tutorial's experiment and print a summary.

Simulate on the virtual clock (every field of :class:`AsyncConfig` is a flag)::

    python -m fedasync_lib --dataset digits --concurrency 1
    python -m fedasync_lib --staleness exponential --staleness-weight-decay 0.5
    python -m fedasync_lib --max-staleness none --config my_experiment.json

or deploy with real concurrent clients on Dask (a local cluster, or a real one)::

    python -m fedasync_lib deploy --clients 20 --updates 200
    python -m fedasync_lib deploy --scheduler tcp://host:8786 --algorithm fedbuff

A ``--config`` file is a JSON object of AsyncConfig fields; flags override it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .algorithms import ALGORITHMS
from .core.config import AsyncConfig
from .runner import run

FIELDS = {f.name: f for f in dataclasses.fields(AsyncConfig)}


def _bool(text: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in words:
        raise argparse.ArgumentTypeError(f"{text!r}: expected true or false")
    return words[text.lower()]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: expected JSON ({err})") from None


def _parser_for(type_name: str) -> Callable[[str], Any]:
    """``availability_trace`` (a tuple) is given as JSON: ``[[[0, 5], [9, 12]], ...]``."""
    base = {"int": int, "float": float, "str": str, "bool": _bool, "tuple": _json}
    if type_name.startswith("Optional["):
        inner = base[type_name[len("Optional["):-1]]
        return lambda text: None if text.lower() == "none" else inner(text)
    return base[type_name]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per AsyncConfig field, plus --config FILE. Only given flags reach the config."""
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="JSON object of AsyncConfig fields; flags override it")
    for name, f in FIELDS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=_parser_for(str(f.type)),
                            default=argparse.SUPPRESS,
                            metavar=str(f.type).upper().replace("OPTIONAL[", "").rstrip("]"),
                            help=f"default: {f.default}")


def config_from(args: argparse.Namespace, parser: argparse.ArgumentParser) -> AsyncConfig:
    values: Dict[str, Any] = {}
    if args.config is not None:
        try:
            values = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as err:
            parser.error(f"--config {args.config}: {err}")
        if not isinstance(values, dict) or set(values) - set(FIELDS):
            unknown = sorted(set(values) - set(FIELDS)) if isinstance(values, dict) else values
            parser.error(f"--config {args.config}: unknown AsyncConfig fields {unknown}")
    values.update({k: v for k, v in vars(args).items() if k in FIELDS})
    try:
        return AsyncConfig(**values)
    except ValueError as err:
        parser.error(str(err))


def format_summary(history, config: AsyncConfig, seconds: float) -> str:
    s = history.summary()
    contrib = history.contributions(applied_only=False)
    fastest = int(np.argmin(history.client_latency))
    slowest = int(np.argmax(history.client_latency))
    title = (f"{ALGORITHMS[history.algorithm].title} on {config.dataset}: {config.num_clients} "
             f"clients, {config.concurrency} training at once")
    if s["diverged"]:
        accuracy = (f"  DIVERGED after {len(history.updates)} of {config.num_updates} updates: "
                    f"{s['divergence']}; the run stopped, and the model has no accuracy")
    else:
        accuracy = f"  final test accuracy   {s['final_accuracy']:.3f}"
    why = ("staleness > max_staleness=" f"{config.max_staleness}"
           if config.staleness_policy == "drop" else "none: the wait policy drops nothing")
    lines = [
        title,
        accuracy,
        f"  updates applied       {s['updates_applied']}",
        f"  updates rejected      {s['updates_rejected']}   ({why})",
    ]
    if s["updates_held_back"]:
        lines.append(f"  updates held back     {s['updates_held_back']}   (in the buffer when the "
                     "run stopped: never applied)")
    if history.dropped:
        dropped = sum(d["reason"] == "dropped" for d in history.dropped)
        lines.append(f"  jobs given up         {len(history.dropped)}   ({dropped} dropped out, "
                     f"{len(history.dropped) - dropped} too slow for job_timeout="
                     f"{config.job_timeout:g} s)")
    if config.availability != "always" or history.dropped:
        lines.append(f"  idle slot time        {history.idle_slot_time:.1f} slot-s")
    lines += [
        f"  staleness mean / max  {s['mean_staleness']:.2f} / {s['max_staleness']}",
        f"  virtual time          {s['virtual_time']:.1f} s",
        f"  updates sent by the fastest client {contrib[fastest]}, by the slowest {contrib[slowest]}",
        f"  computed in {seconds:.2f} s of wall-clock time",
    ]
    return "\n".join(lines)


#: The built-in models a command can train: ``--model NAME``.
MODELS = ("mlp", "cnn", "logistic")


def make_model(name: str, config: AsyncConfig):
    """The model ``--model name`` stands for, for ``config``'s data (None: the built-in MLP)."""
    from .core.model import LinearModel

    if name == "mlp":
        return None
    if name == "cnn":
        if config.feature_dim != 64:
            raise ValueError(f"--model cnn reads 8x8 images (64 features), but dataset="
                             f"{config.dataset!r} has {config.feature_dim}: use --dataset digits")
        from .core.model_zoo import DigitsCNN  # a torch module: trained through torch.func

        return DigitsCNN(num_classes=config.num_classes, seed=config.seed)
    return LinearModel(config.feature_dim, config.num_classes, seed=config.seed)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=MODELS, default="mlp",
                        help="mlp: the built-in two-layer MLP (hidden_dim); cnn: a small CNN for "
                             "the 8x8 digits (torch); logistic: the built-in logistic regression "
                             "(default: mlp)")


def version_text() -> str:
    """This package's version, and which build of torch is installed (CPU, CUDA or ROCm)."""
    import platform

    from . import __version__

    try:
        import torch
    except ImportError:
        return (f"fedasync {__version__}, without torch (built-in models only), "
                f"Python {platform.python_version()}")
    if torch.version.cuda:
        build = f"CUDA {torch.version.cuda} build"
    elif getattr(torch.version, "hip", None):
        build = f"ROCm {torch.version.hip} build"
    else:
        build = "CPU build"
    return (f"fedasync {__version__}, torch {torch.__version__} ({build}), "
            f"Python {platform.python_version()}")


def simulate_main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fedasync_lib",
        description="Simulate asynchronous federated learning on a virtual clock and "
                    "print a summary. Every AsyncConfig field is a flag. "
                    "`python -m fedasync_lib deploy --help` runs real clients on Dask.")
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--algorithm", choices=tuple(ALGORITHMS), default="fedasync")
    add_model_argument(parser)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = config_from(args, parser)
    start = time.perf_counter()
    history = run(config, args.algorithm, model=make_model(args.model, config))
    print(format_summary(history, config, time.perf_counter() - start))
    return 0


def deploy_main(argv: List[str]) -> int:
    from . import deploy

    parser = argparse.ArgumentParser(
        prog="python -m fedasync_lib deploy",
        description="Run FedAsync, FedBuff or FedAvg with each client's training as a Dask task: on a "
                    "local cluster started for the run, or on the cluster at --scheduler.")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="a running Dask scheduler, e.g. tcp://host:8786 (default: start a "
                             "local cluster)")
    parser.add_argument("--algorithm", choices=tuple(ALGORITHMS), default="fedasync")
    add_model_argument(parser)
    parser.add_argument("--workers", type=int, default=2, help="local cluster's worker processes")
    parser.add_argument("--threads-per-worker", type=int, default=None, metavar="N",
                        help="local cluster's threads per worker (default: enough for "
                             "--concurrency clients to train at once)")
    parser.add_argument("--time-scale", type=float, default=0.05,
                        help="real seconds a task sleeps per virtual second of its client's "
                             "job time (emulates slow devices; 0: none)")
    parser.add_argument("--connect-timeout", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("--worker-timeout", type=float, default=20.0, metavar="SECONDS",
                        help="a worker not heard from for this long is lost: its clients move "
                             "to the others (default: 20)")
    parser.add_argument("--save-history", type=Path, default=None, metavar="FILE",
                        help="write the run's records (updates, evaluations, jobs, placement, "
                             "incidents) to FILE as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--clients", dest="num_clients", type=int, default=argparse.SUPPRESS,
                        help="same as --num-clients")
    parser.add_argument("--updates", dest="num_updates", type=int, default=argparse.SUPPRESS,
                        help="same as --num-updates")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = config_from(args, parser)
    where = args.scheduler or f"a local cluster of {args.workers} worker processes"
    print(f"{args.algorithm} ({args.model}) with {config.num_clients} clients "
          f"({config.concurrency} at once), {config.num_updates} updates, on {where}", flush=True)
    history = deploy.run(config, args.algorithm, model=make_model(args.model, config),
                         scheduler_address=args.scheduler, n_workers=args.workers,
                         threads_per_worker=args.threads_per_worker, time_scale=args.time_scale,
                         connect_timeout=args.connect_timeout,
                         worker_timeout=args.worker_timeout, progress=not args.no_progress)
    print("\n".join(deploy.summary_lines(history)))
    if args.save_history is not None:
        args.save_history.write_text(history.to_json())
        print(f"  records written to   {args.save_history}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command; an error during the run prints one line and returns 1
    (``FEDASYNC_DEBUG=1`` shows the traceback as well)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "deploy":
            return deploy_main(argv[1:])
        return simulate_main(argv)
    except Exception as err:  # one line for whatever went wrong during the run
        if os.environ.get("FEDASYNC_DEBUG"):
            raise
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 1


def one_line(err: BaseException) -> str:
    """``err`` as one line: its message, with the exception's name when that adds something."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if isinstance(err, (ValueError, RuntimeError)) else f"{type(err).__name__}: {text}"


if __name__ == "__main__":
    sys.exit(main())
