"""What recording grad_norm_sq at every evaluation costs: the lesson's default run (LESSON,
200 updates, 21 evaluations) timed with it and with it replaced by a constant, best of 5.

    .venv/bin/python benchmarks/bench_grad_norm.py
"""

import time

from fedasync_lib.core import server
from fedasync_lib.runner import run
from fedasync_lib.teaching.lesson import LESSON, federated_data


def best_of(repeats: int = 5) -> tuple[float, int]:
    data = federated_data(LESSON)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        history = run(LESSON, "fedasync", data)
        times.append(time.perf_counter() - start)
    return min(times), len(history.evals)


if __name__ == "__main__":
    run(LESSON, "fedasync", federated_data(LESSON))  # warm-up
    with_it, evaluations = best_of()
    original = server.AsyncServer.grad_norm_sq
    server.AsyncServer.grad_norm_sq = lambda self: 0.0
    without, _ = best_of()
    server.AsyncServer.grad_norm_sq = original
    print(f"LESSON run: {with_it * 1000:.0f} ms with grad_norm_sq, {without * 1000:.0f} ms without; "
          f"{evaluations} evaluations: {(with_it - without) / evaluations * 1000:.2f} ms each")
