"""Speed of fedasync_lib against the original tutorial's loop, side by side.

    python benchmarks/bench_speed.py [--seed-file PATH] [--repeats N] [--min-seconds S]
                                     [--threads N] [--busy-core]

Both run the tutorial's default experiment (200 updates, 20 clients, 2 local
epochs, batch 32, synthetic data) in this one process. The tutorial's code is
not part of this repository: it is read from the seed file (by default
``../shared/seeds/000_f4dea84a44730d46.txt`` next to the clone) and executed
as it is, its 0.5-2 ms ``time.sleep`` per update included.

How it is timed, as ``timeit`` does: each row is run once to warm up and once
to count how many runs fill a sample, then ``--repeats`` samples of each row
are taken, interleaved. A sample is the mean time of ``number`` runs in a
row, with ``number`` chosen so that a sample lasts at least ``--min-seconds``
(1 s: one run of the tutorial, about 20 of fedasync_lib's). So every sample of every row spans about the same stretch
of wall-clock time and sees the same share of whatever else the machine is
doing; with one short run per sample, a burst of load from a neighbour would
hit a few of the 50 ms samples in full and move their median, while the
tutorial's 1 s samples average it out. The median sample of each row is
reported, and its fastest.

It also times fedasync_lib's other paths and settings, which the README
quotes: the generic ``torch.func`` path on the same MLP (``training="torch.func"``),
concurrency 1, the digits dataset, and a small CNN on the digits
(``DigitsCNN``, trained through ``torch.func``). Before each sample the
garbage collector runs, so that no sample pays for the garbage of the one before.

``--threads N`` sets PyTorch's intra-op threads for every row (default: its own
choice, one per core). ``--busy-core`` keeps one core busy with a spinning
Python process while the rows are timed, as a browser or a neighbour on a
shared VM might: it shows what splitting small operations across threads costs
when one of the threads has to wait for a core.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import re
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Callable, Dict, List, Tuple

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


def time_runs(fns: Dict[str, Callable[[], object]], repeats: int,
              min_seconds: float) -> Tuple[Dict[str, List[float]], Dict[str, int]]:
    """Per row: ``repeats`` samples of the mean seconds per run, and the runs per sample."""
    number: Dict[str, int] = {}
    for name, fn in fns.items():
        fn()  # warm-up: the first run also loads data and fills caches
        start = time.perf_counter()
        fn()  # how many runs like this one fill a sample
        number[name] = max(1, math.ceil(min_seconds / (time.perf_counter() - start)))
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()  # no sample pays for the garbage of the one before it
            start = time.perf_counter()
            for _ in range(number[name]):
                fn()
            times[name].append((time.perf_counter() - start) / number[name])
    return times, number


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-file", type=Path, default=DEFAULT_SEED_FILE)
    parser.add_argument("--repeats", type=int, default=7, help="samples per row")
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="shortest sample: runs in a row are added until it lasts this long")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for every row")
    parser.add_argument("--busy-core", action="store_true",
                        help="keep one core busy with a spinning process while timing")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

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

    spinner = (subprocess.Popen([sys.executable, "-c", "while True: pass"])
               if args.busy_core else None)
    try:
        times, number = time_runs(fns, args.repeats, args.min_seconds)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    busy = ", one core kept busy by another process" if args.busy_core else ""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads{busy}; seconds per "
          f"run: median and fastest of {args.repeats} samples, each the mean of the runs in it\n")
    print("| run (200 updates, 20 clients, 2 local epochs, batch 32) | runs per sample "
          "| median s | fastest s |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        print(f"| {name} | {number[name]} | {statistics.median(ts):.3f} | {min(ts):.3f} |")
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
