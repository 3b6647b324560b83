"""How long a slider move takes in each interactive demo of the lesson.

    python benchmarks/bench_sliders.py [--moves N]

A move is what the demo's callback does when a slider is released: the
lesson function that computes the data, the plot function, and rendering the
figure to PNG (as the notebook's inline backend does). Each timed move uses a
slider value not seen before, so the run cache cannot answer it; the
references a demo draws alongside (already computed when the notebook opened)
stay cached, as they do for a learner. One warm-up move first; the median and
the slowest of ``--moves`` moves are reported.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from typing import Callable, Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from fedasync_lib import adaptive, experiments, lesson, plots  # noqa: E402


def render(fig) -> None:
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)


DEMOS: Dict[str, Callable[[int], None]] = {
    "1.1 timelines (concurrency, heterogeneity)":
        lambda i: render(plots.plot_timelines(lesson.timelines(5, 0.8 + 0.05 * i))),
    "2.1 staleness profile (concurrency, heterogeneity)":
        lambda i: render(plots.plot_staleness_profile(lesson.staleness_profile(10, 1.8 + 0.05 * i))),
    "3.1 weighting shapes (4 parameters, no simulation)":
        lambda i: render(plots.plot_weighting_functions(
            lesson.weighting_curves(0.5 + 0.01 * i, 0.5, 10.0, 4), mixing_alpha=0.9)),
    "3.2 one weighting run (function, parameter)":
        lambda i: render(plots.plot_convergence(
            lesson.weighting_demo("exponential", 0.6 + 0.01 * i, 0.5, 10.0, 4), log_time=True)),
    "4.1 mixing run (alpha, learning rate)":
        lambda i: render(plots.plot_convergence(lesson.mixing_demo(0.5 + 0.01 * i, 0.1))),
    "Exercise 1: both policies at one bound (max_staleness)":
        lambda i: render(plots.plot_convergence(
            {p: experiments.bound_run(p, 21 + i).history for p in ("drop", "wait")}, log_time=True)),
    "Exercise 2: one scheduler (two dropdowns, 6 choices)":
        lambda i: render(plots.plot_scheduling([experiments.scheduling_run(
            ("arrival", "freshest")[i % 2], ("random", "fastest", "fewest")[i % 3],
            experiments.SCHEDULING.replace(seed=100 + i))])),
    "Exercise 3: three mixing rules (heterogeneity)":
        lambda i: render(plots.plot_convergence(experiments.mixing_rules_run(
            0.3 + 0.05 * i, {"fixed alpha": None, "staleness": adaptive.staleness_only(),
                             "staleness + distance": adaptive.staleness_and_distance()}))),
    "Exercise 4: FedAvg, FedAsync, FedBuff (heterogeneity)":
        lambda i: render(plots.plot_sync_vs_async(experiments.sync_vs_async(0.3 + 0.05 * i), 0.9)),
    # The classroom app's move, and its simulation alone: how much of a move is drawing.
    "Classroom app: the run and its drawing (heterogeneity)":
        lambda i: render(plots.plot_classroom(lesson.classroom_run(
            "FedAsync", 9, 1.0 + 0.05 * i, "polynomial", 0.5, 0.9), "FedAsync")),
    "Classroom app: the run alone (heterogeneity)":
        lambda i: lesson.classroom_run("FedAsync", 9, 1.6 + 0.05 * i, "polynomial", 0.5, 0.9),
}


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=7)
    args = parser.parse_args(argv)
    plots.use_style()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"median and slowest of {args.moves} slider moves after one warm-up\n")
    print("| demo | median s | slowest s |")
    print("|---|---:|---:|")
    for name, move in DEMOS.items():
        move(-1)  # warm-up; also computes the demo's cached references
        times = []
        for i in range(args.moves):
            start = time.perf_counter()
            move(i)
            times.append(time.perf_counter() - start)
        print(f"| {name} | {statistics.median(times):.3f} | {max(times):.3f} |")


if __name__ == "__main__":
    main()
