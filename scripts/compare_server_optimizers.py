"""FedBuff's server step over seeds: plain steps, momentum and Adam at each concurrency;
and a buffer of K updates against a time window of the same mean size.

    python scripts/compare_server_optimizers.py

Prints, as a Markdown table, ``experiments.server_optimizer_table()``: the lesson's
experiment with a buffer of 2 and 400 updates, four seeds; accuracy is the mean of the last
five evaluations; "vs plain" is the accuracy minus that of plain steps on the same seed
(lowest to highest over the seeds). Then ``experiments.window_vs_buffer()``: FedBuff with a
buffer of K, and with the time window whose mean buffer size is K on the lesson's seed
(found by bisection), on the same four seeds. Last, the largest stable long-run step of
server momentum with changes d steps old on a quadratic
(``analysis.largest_stable_momentum_step``), and its check on the simulator
(``convergence.momentum_delay_check``, one seed). docs/server_optimizers.md quotes its output.
"""

import numpy as np

from fedasync_lib.analysis import largest_stable_momentum_step, largest_stable_step
from fedasync_lib.teaching.convergence import momentum_delay_check
from fedasync_lib.teaching.experiments import server_optimizer_table, window_vs_buffer

#: (concurrency, momentum, updates): runs near the bound with a large beta grow slowly.
CASES = [(1, 0.5, 400), (2, 0.5, 400), (2, 0.9, 400), (4, 0.5, 400), (4, 0.9, 1500), (10, 0.9, 3000)]

if __name__ == "__main__":
    print("| concurrency | server step | accuracy: mean (range) | vs plain, per seed | "
          "loss fluctuation: mean (range) | stable |")
    print("|---:|---|---|---|---|---:|")
    for r in server_optimizer_table():
        gain = "" if not any(r.gain) else f"{min(r.gain):+.3f} to {max(r.gain):+.3f}"
        print(f"| {r.concurrency} | {r.setting} | {np.mean(r.accuracy):.3f} "
              f"({min(r.accuracy):.3f}-{max(r.accuracy):.3f}) | {gain} | "
              f"{np.mean(r.fluctuation):.3f} ({min(r.fluctuation):.3f}-{max(r.fluctuation):.3f}) | "
              f"{r.stable}/{len(r.accuracy)} |")

    print()
    print("| K | window (s) | window's mean buffer size per seed | accuracy, buffer of K | "
          "accuracy, window | window minus buffer, per seed | stable |")
    print("|---:|---:|---|---|---|---|---|")
    for r in window_vs_buffer():
        d = [b - a for a, b in zip(r.buffer_accuracy, r.window_accuracy)]
        print(f"| {r.buffer_size} | {r.window} | {', '.join(f'{m:.1f}' for m in r.window_mean_size)} | "
              f"{np.mean(r.buffer_accuracy):.3f} ({min(r.buffer_accuracy):.3f}-{max(r.buffer_accuracy):.3f}) | "
              f"{np.mean(r.window_accuracy):.3f} ({min(r.window_accuracy):.3f}-{max(r.window_accuracy):.3f}) | "
              f"{min(d):+.3f} to {max(d):+.3f} | {r.buffer_stable}/4, {r.window_stable}/4 |")

    print()
    print("| delay d | no momentum | beta 0.5 | beta 0.9 |")
    print("|---:|---:|---:|---:|")
    for d in (0, 1, 3, 9):
        cells = [f"{largest_stable_momentum_step(d, b) / (1 - b):.3f}" for b in (0.5, 0.9)]
        print(f"| {d} | {largest_stable_step(d):.3f} | " + " | ".join(cells) + " |")
    print()
    print("| concurrency (delay) | beta | updates | predicted eta L | stable at 0.9x | stable at 1.1x |")
    print("|---:|---:|---:|---:|---:|---:|")
    for (c, b, n), r in zip(CASES, momentum_delay_check(CASES, seeds=(42,))):
        print(f"| {c} ({c - 1}) | {b} | {n} | {r['predicted']:.4f} | {r['stable'][0.9]}/1 | "
              f"{r['stable'][1.1]}/1 |")
