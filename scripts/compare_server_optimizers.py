"""FedBuff's server optimisers over seeds: plain steps, momentum and Adam at each concurrency.

    python scripts/compare_server_optimizers.py

Prints, as a Markdown table, ``experiments.server_optimizer_table()``: the lesson's
experiment with a buffer of 2 and 400 updates, four seeds; accuracy is the mean of the last
five evaluations; "vs plain" is the accuracy minus that of plain steps on the same seed
(lowest to highest over the seeds). docs/server_optimizers.md quotes its output.
"""

import numpy as np

from fedasync_lib.teaching.experiments import server_optimizer_table

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
