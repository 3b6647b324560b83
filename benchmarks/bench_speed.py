"""Speed of fedasync_lib against the original tutorial's loop, side by side.

    python benchmarks/bench_speed.py [--seed-file PATH] [--repeats N]

Both run the tutorial's default experiment (200 updates, 20 clients, 2 local
epochs, batch 32, synthetic data) in this one process: one warm-up run each,
then ``--repeats`` runs each, interleaved, and the median of each is
reported. The tutorial's code is not part of this repository: it is read
from the seed file (by default ``../shared/seeds/000_f4dea84a44730d46.txt``
next to the clone) and executed as it is, its 1 ms ``time.sleep`` included.

It also times fedasync_lib's other paths and settings, which the README
quotes: the generic ``torch.func`` path on the same MLP (``training="torch.func"``),
concurrency 1, the digits dataset, and a small CNN on the digits
(``DigitsCNN``, trained through ``torch.func``). Before each timed run the
garbage collector runs, so that no run pays for the garbage of the one before.
"""

from __future__ import annotations

import argparse
import gc
import logging
import re
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch

from fedasync_lib import AsyncConfig, DigitsCNN, run, run_fedasync

TUTORIAL = "tutorial loop (sequential, sleeps)"
FAST = "fedasync_lib, default config (concurrency 10)"
FUNC = "fedasync_lib, default config, torch.func path on the same MLP"
DIGITS = "fedasync_lib, digits, concurrency 10"
CNN = "fedasync_lib, digits, DigitsCNN (torch.func)"

DEFAULT_SEED_FILE = (Path(__file__).resolve().parents[1] / ".." / "shared" / "seeds"
                     / "000_f4dea84a44730d46.txt")


def load_tutorial(seed_file: Path) -> types.ModuleType:
    """Execute the tutorial's Python block as a module."""
    text = seed_file.read_text()
    match = re.search(r"```python\n(.*?)```", text, flags=re.S)
    if match is None:
        raise SystemExit(f"no ```python block in {seed_file}")
    module = types.ModuleType("tutorial_106")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(match.group(1), str(seed_file), "exec"), module.__dict__)
    logging.getLogger(module.__name__).setLevel(logging.WARNING)
    module.logger.setLevel(logging.WARNING)
    return module


def tutorial_run(tut: types.ModuleType) -> float:
    """The tutorial's main(), without its prints; returns its final accuracy."""
    config = tut.AsyncConfig()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    clients = [tut.AsyncClient(i, tut.AsyncDataset(seed=config.seed + i), config)
               for i in range(config.num_clients)]
    server = tut.AsyncServer(tut.AsyncModel(config), clients, tut.AsyncDataset(seed=999), config)
    return server.train()[-1]["accuracy"]


def time_runs(fns: Dict[str, Callable[[], object]], repeats: int) -> Dict[str, List[float]]:
    """Warm up each function once, then time them ``repeats`` times, interleaved."""
    for fn in fns.values():
        fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()  # no run pays for the garbage of the one before it
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-file", type=Path, default=DEFAULT_SEED_FILE)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    fns: Dict[str, Callable[[], object]] = {}
    if args.seed_file.exists():
        tut = load_tutorial(args.seed_file)
        fns[TUTORIAL] = lambda: tutorial_run(tut)
    else:
        print(f"seed file {args.seed_file} not found: timing fedasync_lib only", file=sys.stderr)
    default = AsyncConfig()
    digits = default.replace(dataset="digits")
    fns[FAST] = lambda: run_fedasync(default)
    fns[FUNC] = lambda: run(default, training="torch.func")
    fns["fedasync_lib, concurrency 1"] = lambda: run_fedasync(default.replace(concurrency=1))
    fns[DIGITS] = lambda: run_fedasync(digits)
    fns[CNN] = lambda: run(digits, model=DigitsCNN(seed=digits.seed))

    times = time_runs(fns, args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} runs after one warm-up\n")
    print("| run (200 updates, 20 clients, 2 local epochs, batch 32) | median s | min s |")
    print("|---|---:|---:|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.3f} | {min(ts):.3f} |")
    median = {name: statistics.median(ts) for name, ts in times.items()}
    print()
    if TUTORIAL in median:
        for name in list(times)[1:]:
            print(f"speed-up of '{name}' over the tutorial loop: "
                  f"{median[TUTORIAL] / median[name]:.1f}x")
    print(f"the torch.func path on the same MLP takes {median[FUNC] / median[FAST]:.1f}x "
          f"as long as the hand-written fast path")
    print(f"DigitsCNN takes {median[CNN] / median[DIGITS]:.1f}x as long as the built-in MLP "
          f"on the digits ({median[CNN] / 200 * 1e3:.1f} ms against "
          f"{median[DIGITS] / 200 * 1e3:.2f} ms per update)")


if __name__ == "__main__":
    main()
