"""Time and peak memory of large runs: many clients, many updates.

    python benchmarks/bench_scale.py [--only NAME]

Each scenario runs FedAsync on the synthetic task (200 samples per client,
the default model and SGD settings) in a fresh Python process, so that its
peak resident memory (``ru_maxrss``, which includes the ~250 MB of Python,
torch and numpy themselves) is its own. The test model is evaluated
100 times per run (``eval_every = num_updates / 100``). Printed: wall-clock
seconds of ``run_fedasync`` (the data split and the model included), peak
memory, and the final test accuracy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Dict, List

SCENARIOS: Dict[str, Dict[str, int]] = {
    "1k clients, 10k updates": dict(num_clients=1_000, num_updates=10_000, concurrency=10),
    "10k clients, 100k updates, concurrency 1k": dict(num_clients=10_000, num_updates=100_000,
                                                      concurrency=1_000),
}

CHILD = """
import json, resource, sys, time
import torch
from fedasync_lib import AsyncConfig, run_fedasync
settings = json.loads(sys.argv[1])
config = AsyncConfig(eval_every=settings["num_updates"] // 100, **settings)
start = time.perf_counter()
history = run_fedasync(config)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "accuracy": history.final_accuracy, "updates": len(history.updates)}))
"""


def measure(settings: Dict[str, int]) -> Dict[str, float]:
    """Run one scenario in a fresh process; return what it printed."""
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(SCENARIOS), help="run one scenario")
    args = parser.parse_args(argv)
    names = [args.only] if args.only else list(SCENARIOS)
    print("| scenario (FedAsync, synthetic, 200 samples per client) | seconds | peak memory MB "
          "| final accuracy |")
    print("|---|---:|---:|---:|")
    for name in names:
        r = measure(SCENARIOS[name])
        print(f"| {name} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {r['accuracy']:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
