"""``python -m fedasync_lib``: run the tutorial's experiment and print a summary.

Every field of :class:`AsyncConfig` is a flag, for example::

    python -m fedasync_lib --dataset digits --concurrency 1
    python -m fedasync_lib --staleness exponential --staleness-weight-decay 0.5
    python -m fedasync_lib --max-staleness none
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Any, Callable, List, Optional

import numpy as np

from .config import AsyncConfig
from .simulation import run_fedasync


def _parser_for(type_name: str) -> Callable[[str], Any]:
    base = {"int": int, "float": float, "str": str}
    if type_name.startswith("Optional["):
        inner = base[type_name[len("Optional["):-1]]
        return lambda text: None if text.lower() == "none" else inner(text)
    return base[type_name]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fedasync_lib",
        description="Simulate asynchronous federated learning (FedAsync) on a virtual "
                    "clock and print a summary. Every AsyncConfig field is a flag.")
    for f in dataclasses.fields(AsyncConfig):
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name,
                            type=_parser_for(str(f.type)), default=f.default,
                            metavar=str(f.type).upper().replace("OPTIONAL[", "").rstrip("]"),
                            help=f"default: {f.default}")
    return parser


def format_summary(history, config: AsyncConfig, seconds: float) -> str:
    s = history.summary()
    contrib = history.contributions(applied_only=False)
    fastest = int(np.argmin(history.client_latency))
    slowest = int(np.argmax(history.client_latency))
    lines = [
        f"FedAsync on {config.dataset}: {config.num_clients} clients, "
        f"{config.concurrency} training at once, staleness weighting {config.staleness!r}",
        f"  final test accuracy   {s['final_accuracy']:.3f}"
        + ("   (diverged: the model became non-finite)" if s["diverged"] else ""),
        f"  updates applied       {s['updates_applied']}",
        f"  updates rejected      {s['updates_rejected']}   (staleness > max_staleness="
        f"{config.max_staleness})",
        f"  staleness mean / max  {s['mean_staleness']:.2f} / {s['max_staleness']}",
        f"  virtual time          {s['virtual_time']:.1f} s",
        f"  updates sent by the fastest client {contrib[fastest]}, by the slowest {contrib[slowest]}",
        f"  computed in {seconds:.2f} s of wall-clock time",
    ]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = AsyncConfig(**vars(args))
    except ValueError as err:
        parser.error(str(err))
    start = time.perf_counter()
    history = run_fedasync(config)
    print(format_summary(history, config, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
