"""Where the divergence rule's threshold comes from: how far a run's test loss climbs, and
whether the run comes back.

    python benchmarks/divergence_threshold.py

Runs FedAsync and FedBuff on three configs (the lesson's experiment, the default
synthetic task, the default config on the digits) over a grid of learning rates and
mixing rates, with the rule switched off for non-finite-free blow-ups
(``DIVERGENCE_FACTOR`` set to infinity; a non-finite loss still stops a run). For each
run it prints the peak and the final value of the test loss, over its start, and the
final test accuracy. The rule (``fedasync_lib.core.server.divergence``) calls a run
diverged when a loss passes 10^6 times its start: the summary lines say whether any run
came back from beyond that, and whether any run peaked near it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from fedasync_lib import AsyncConfig, run
from fedasync_lib.core import server
from fedasync_lib.teaching.lesson import LESSON

CONFIGS = {"lesson": LESSON, "synthetic": AsyncConfig(), "digits": AsyncConfig(dataset="digits")}
LEARNING_RATES = (0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0)
ALPHAS = (0.05, 0.6, 1.0)


def main() -> None:
    server.DIVERGENCE_FACTOR = math.inf  # only non-finite values stop a run here
    rows = []
    print(f"{'config':10s} {'algorithm':9s} {'lr':>5s} {'alpha':>5s} {'peak / start':>12s} "
          f"{'final / start':>13s} {'final accuracy':>14s} {'stopped':>8s}")
    for (name, base), lr, alpha in itertools.product(CONFIGS.items(), LEARNING_RATES, ALPHAS):
        for algorithm in ("fedasync", "fedbuff"):
            if algorithm == "fedbuff" and alpha != ALPHAS[0]:
                continue  # FedBuff does not read mixing_alpha
            h = run(base.replace(learning_rate=lr, mixing_alpha=alpha), algorithm)
            loss = np.array([e["loss"] for e in h.evals])
            finite = loss[np.isfinite(loss)]
            peak, final = float(finite.max() / loss[0]), float(loss[-1] / loss[0])
            accuracy = h.evals[-1]["accuracy"]
            rows.append((peak, final, accuracy, h.diverged))
            print(f"{name:10s} {algorithm:9s} {lr:5.2f} {alpha:5.2f} {peak:12.3g} {final:13.3g} "
                  f"{accuracy:14.3f} {'yes' if h.diverged else 'no':>8s}")
    ran = [r for r in rows if not r[3]]  # ran to the end with finite numbers
    below = [r for r in ran if r[0] < 1e5]
    above = [r for r in ran if r[0] > 1e7]
    print(f"\n{len(ran)} runs ended with finite numbers.")
    print(f"{len(below)} peaked below 10^5 times their start loss; their final loss is at most "
          f"{max(r[1] for r in below):.3g} times the start, their final accuracy "
          f"{min(r[2] for r in below):.3f} to {max(r[2] for r in below):.3f}.")
    if above:
        print(f"{len(above)} passed 10^7; none came back: their final loss is at least "
              f"{min(r[1] for r in above):.3g} times the start, their final accuracy "
              f"{min(r[2] for r in above):.3f} to {max(r[2] for r in above):.3f}.")
    print(f"{sum(1 for r in ran if 1e5 <= r[0] <= 1e7)} peaked between 10^5 and 10^7.")


if __name__ == "__main__":
    main()
