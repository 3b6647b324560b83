"""Regenerate the lesson's key figures into ``figures/``.

    python -m fedasync_lib.teaching.figures [--out figures]

Every figure comes from the same library calls the notebooks make, with the
lesson's default settings, so the figures and the notebooks show the same runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import lesson, plots  # noqa: E402

FIGURES: Dict[str, Callable[[], "plt.Figure"]] = {
    "timeline.png": lambda: plots.plot_timelines(lesson.timelines(concurrency=5, heterogeneity=1.0)),
    "staleness_histogram.png": lambda: plots.plot_staleness_profile(
        lesson.staleness_profile(concurrency=10, heterogeneity=2.0)),
    "weighting_functions.png": lambda: plots.plot_weighting_functions(
        lesson.weighting_curves(decay=0.5, poly_a=0.5, hinge_a=10.0, hinge_b=4),
        mixing_alpha=lesson.LESSON.mixing_alpha),
    "convergence_by_weighting.png": lambda: plots.plot_convergence(
        lesson.compare_weightings(), log_time=True,
        title="FedAsync on non-IID digits, 10 of 20 clients at once"),
    "alpha_sweep.png": lambda: plots.plot_alpha_sweep(
        lesson.alpha_sweep([0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0])),
}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fedasync_lib.teaching.figures", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("figures"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    plots.use_style()
    for name, make in FIGURES.items():
        fig = make()
        fig.savefig(args.out / name)
        plt.close(fig)
        print(args.out / name)


if __name__ == "__main__":
    main()
