"""Whole runs of the lesson's experiment, to compare two versions of the simulator over seeds.

    python scripts/record_engine_runs.py                       # prints JSON
    python scripts/record_engine_runs.py --out FILE.json

For each algorithm (FedAsync, FedBuff, FedAvg) and each of eight seeds, the lesson's
experiment (``lesson.LESSON``: digits, 20 clients, concurrency 10, heterogeneity 2.0, 200
updates) with ``seed`` replaced; recorded per run: the final test accuracy, the mean of the
last five evaluations' accuracy, the last training loss, and whether the run was stable.

``tests/data/torch_engine_runs.json`` holds the runs of the torch engine, the last version
before the built-in models moved to numpy (#30), made from a worktree of that commit::

    git worktree add /tmp/torch-engine 475f634
    (cd /tmp/torch-engine && PYTHONPATH=. python /path/to/this/scripts/record_engine_runs.py \\
        --out /path/to/this/tests/data/torch_engine_runs.json)

``tests/test_engine_agreement.py`` runs today's code the same way and compares the two
distributions (the seeds draw different initial weights and splits in the two engines, so
the runs agree in distribution, not one by one). Only the library's public API is used, so
that the same script runs on both versions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ALGORITHMS = ("fedasync", "fedbuff", "fedavg")
SEEDS = tuple(range(8))


def record() -> dict:
    import fedasync_lib
    from fedasync_lib import run
    from fedasync_lib.teaching.lesson import LESSON

    runs = {}
    for algorithm in ALGORITHMS:
        rows = []
        for seed in SEEDS:
            h = run(LESSON.replace(seed=seed), algorithm)
            rows.append({"seed": seed, "final_accuracy": float(h.final_accuracy),
                         "tail_accuracy": float(h.tail_accuracy()),
                         "last_train_loss": float(h.evals[-1]["train_loss"]),
                         "stable": bool(h.stable)})
        runs[algorithm] = rows
    here = Path(fedasync_lib.__file__).resolve().parents[1]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    return {"commit": commit, "config": "lesson.LESSON with seed replaced", "runs": runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    text = json.dumps(record(), indent=1) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
