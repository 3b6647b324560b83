"""What recording grad_norm_sq at every evaluation costs: the lesson's default run (LESSON,
200 updates, 21 evaluations) timed with ``track_grad_norm`` off (the default) and on, best
of 5.

    .venv/bin/python benchmarks/bench_grad_norm.py
"""

import time

from fedasync_lib.runner import run
from fedasync_lib.teaching.lesson import LESSON, federated_data


def best_of(config, repeats: int = 5) -> tuple[float, int]:
    data = federated_data(config)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        history = run(config, "fedasync", data)
        times.append(time.perf_counter() - start)
    return min(times), len(history.evals)


if __name__ == "__main__":
    run(LESSON, "fedasync", federated_data(LESSON))  # warm-up
    without, evaluations = best_of(LESSON)
    with_it, _ = best_of(LESSON.replace(track_grad_norm=True))
    print(f"LESSON run: {without * 1000:.0f} ms without grad_norm_sq (the default), "
          f"{with_it * 1000:.0f} ms with it (track_grad_norm=True); {evaluations} evaluations: "
          f"{(with_it - without) / evaluations * 1000:.2f} ms each")
