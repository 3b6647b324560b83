"""The classroom app with many learners at once: Voila on this machine, N real browser pages.

    python benchmarks/bench_classroom.py                      # N = 1, 5, 10, 20
    python benchmarks/bench_classroom.py --learners 1 5 --moves 3
    python benchmarks/bench_classroom.py --preheat            # Voila's pre-heated kernels

For each N, a fresh Voila server is started with the README's classroom command
(``scripts/classroom.sh``), and N pages are opened at once in Chromium (each page is one
learner, with a kernel of its own). Measured, per N:

* **time to the first plot**: from the moment all N pages were asked for, until each
  page shows the app's first plot (median and the slowest page);
* **slider latency**: every learner moves the concurrency slider at the same moment,
  ``--moves`` times; the time from the key press until that page's plot has been
  replaced (median and 95th percentile over all moves of all learners);
* **server memory**: the resident memory of the Voila server and all its kernels,
  once every page shows its plot.

With ``--preheat`` the server keeps N kernels that have already run the notebook
(``--preheat_kernel=True --pool_size=N``), so that a page only has to attach to one.
Prints a table, and writes it as JSON with ``--json FILE``. The numbers are this
machine's (2 cores): docs/classroom.md has them, with this command.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
import chromium  # noqa: E402  (tests/browser/chromium.py: where a Chromium is)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_voila(port: int, preheat: int, log: Path) -> subprocess.Popen:
    extra = ["--preheat_kernel=True", f"--pool_size={preheat}"] if preheat else []
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "classroom.sh"), f"--port={port}",
                             "--Voila.ip=127.0.0.1", "--KernelManager.transport=ipc", *extra],
                            cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return proc
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"Voila did not answer on port {port}; see {log}")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def tree_memory_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def first_src(page) -> str | None:
    img = page.locator(".fedasync-classroom img")
    return img.first.get_attribute("src") if img.count() else None


def wait_all(pages, done, timeout: float) -> Dict[int, float]:
    """Poll every page until ``done(page)``; the monotonic time each one got there."""
    at: Dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(at) < len(pages) and time.monotonic() < deadline:
        for i, page in enumerate(pages):
            if i not in at and done(i, page):
                at[i] = time.monotonic()
        pages[0].wait_for_timeout(50)
    missing = [i for i in range(len(pages)) if i not in at]
    if missing:
        raise RuntimeError(f"pages {missing} did not get there within {timeout:.0f} s")
    return at


def measure(n: int, moves: int, preheat: bool, browser, logs: Path) -> dict:
    port = free_port()
    proc = start_voila(port, n if preheat else 0, logs / f"voila_{n}{'_preheat' if preheat else ''}.log")
    contexts = [browser.new_context(viewport={"width": 1300, "height": 900}) for _ in range(n)]
    pages = [c.new_page() for c in contexts]
    try:
        if preheat:
            time.sleep(min(10 + 3 * n, 120))  # let the pool fill before the learners arrive
        asked = time.monotonic()
        for page in pages:
            page.goto(f"http://127.0.0.1:{port}/", wait_until="commit", timeout=300_000)
        shown = wait_all(pages, lambda i, p: first_src(p) is not None, timeout=600)
        first_plot = sorted(t - asked for t in shown.values())
        memory = tree_memory_mb(proc.pid)
        latencies: List[float] = []
        for move in range(moves):
            before = [first_src(p) for p in pages]
            pressed = {}
            for i, page in enumerate(pages):
                page.locator(".fedasync-classroom .noUi-handle").first.focus()
                page.keyboard.press("ArrowLeft" if move % 2 == 0 else "ArrowRight")
                pressed[i] = time.monotonic()
            replaced = wait_all(pages, lambda i, p: first_src(p) not in (None, before[i]), timeout=600)
            latencies += [replaced[i] - pressed[i] for i in range(n)]
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
        return {"learners": n, "preheat": preheat,
                "first_plot_median_s": statistics.median(first_plot), "first_plot_max_s": first_plot[-1],
                "slider_p50_s": statistics.median(latencies), "slider_p95_s": p95,
                "server_memory_mb": memory}
    finally:
        for c in contexts:
            c.close()
        stop(proc)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--moves", type=int, default=3, help="slider moves per learner")
    parser.add_argument("--preheat", action="store_true", help="Voila's pre-heated kernels")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    executable = chromium.find()
    if executable is None:
        print(chromium.how_to_get_one(), file=sys.stderr)
        return 1
    logs = ROOT / "test-artifacts" / "bench_classroom"
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=ARGS)
        print(f"{'learners':>8s} {'preheat':>7s} {'first plot median / max':>24s} "
              f"{'slider p50 / p95':>18s} {'server memory':>14s}")
        for n in args.learners:
            row = measure(n, args.moves, args.preheat, browser, logs)
            rows.append(row)
            print(f"{n:8d} {'yes' if args.preheat else 'no':>7s} "
                  f"{row['first_plot_median_s']:10.1f} s / {row['first_plot_max_s']:5.1f} s "
                  f"{row['slider_p50_s']:7.2f} s / {row['slider_p95_s']:5.2f} s "
                  f"{row['server_memory_mb'] / 1024:10.1f} GiB", flush=True)
        browser.close()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
