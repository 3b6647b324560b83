"""The classroom app with many learners at once: Voila on this machine, N real browser pages;
or, with ``--lite``, the app with no server (JupyterLite), each page its own kernel.

    python benchmarks/bench_classroom.py                      # N = 1, 5, 10, 20
    python benchmarks/bench_classroom.py --learners 1 5 --moves 3
    python benchmarks/bench_classroom.py --no-shared-cache    # each kernel computes its own runs
    python benchmarks/bench_classroom.py --preheat            # Voila's pre-heated kernels
    python benchmarks/bench_classroom.py --lite               # build/lite/classroom.html, static

For each N, a fresh Voila server is started with the README's classroom command
(``scripts/classroom.sh``), and N pages are opened at once in Chromium (each page is one
learner, with a kernel of its own). Measured, per N:

* **time to the first plot**: from the moment all N pages were asked for, until each
  page shows the app's first plot (median and the slowest page);
* **slider latency**: every learner moves the concurrency slider one step down at the
  same moment, ``--moves`` times (10 -> 9 -> 8 -> ...: each move asks for a run no kernel
  has computed yet); the time from the key press until that page's plot has been replaced
  (median and 95th percentile over all moves of all learners);
* **server memory**: the largest resident memory of the Voila server and all its kernels,
  taken once every page shows its plot and again after the last move.

``scripts/classroom.sh`` gives all the kernels one shared cache of finished runs
(``FEDASYNC_RUN_CACHE``); each measurement here starts with an empty one, so that it is
"the whole class follows the teacher's moves". With ``--no-shared-cache`` every kernel
computes every run itself: that is also the cost when every learner makes a move of their
own. With ``--preheat`` the server keeps N kernels that have already run the notebook
(``--preheat_kernel=True --pool_size=N``), and the learners arrive once that pool is full
and idle; Voila refills the pool as pages take kernels from it, so the server then runs 2N.
With ``--lite``, the site that ``bash scripts/lite.sh`` builds (or reuses) is served as
static files on 127.0.0.1 (every other request aborted and reported) and N pages open
``classroom.html`` at once, each with its own Python kernel in Pyodide, inside the browser.
The server computes nothing; here all N kernels share this machine's cores, where a class
would have one laptop each, so the row for 1 learner is what a learner's own laptop gives.
Measured as above: the time to the first plot (from the moment all N pages were asked for;
it includes each page's first download of the site, about 67 MB, from this server), and the
slider latency, every learner dragging the concurrency slider one step down at the same
moment with the mouse (the keyboard does not move a slider in this JupyterLite); and the
browser's memory (all its processes) instead of the server's.

Prints a table, and writes it as JSON with ``--json FILE``. The numbers are this
machine's (2 cores): docs/classroom.md and docs/lite.md have them, with this command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
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


def start_voila(port: int, preheat: int, cache: Path | None, log: Path) -> subprocess.Popen:
    extra = ["--preheat_kernel=True", f"--pool_size={preheat}"] if preheat else []
    env = {**os.environ, "FEDASYNC_RUN_CACHE": str(cache) if cache else ""}
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "classroom.sh"), f"--port={port}",
                             "--Voila.ip=127.0.0.1", "--KernelManager.transport=ipc", *extra],
                            cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)
    return wait_for_port(proc, port, log)


def wait_for_port(proc: subprocess.Popen, port: int, log: Path) -> subprocess.Popen:
    """``proc``, once its server answers on ``port`` (within 180 s; else an error naming ``log``)."""
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


def wait_pool_idle(pid: int, kernels: int, timeout: float = 900) -> float:
    """Wait until the server has ``kernels`` kernels and they have stopped computing (the
    pre-heated pool is full); the seconds that took."""
    start = time.monotonic()
    quiet = 0
    seen: Dict[int, psutil.Process] = {}  # one object per process: cpu_percent needs the last call's
    while time.monotonic() - start < timeout:
        try:
            procs = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            raise RuntimeError("the Voila server stopped")
        found = [seen.setdefault(p.pid, p) for p in procs if "ipykernel" in " ".join(_cmdline(p))]
        busy = sum(_cpu(p) for p in found)
        quiet = quiet + 1 if len(found) >= kernels and busy < 10 else 0
        if quiet >= 3:
            return time.monotonic() - start
        time.sleep(1)
    raise RuntimeError(f"the pool of {kernels} kernels was not ready within {timeout:.0f} s")


def _cmdline(p: psutil.Process) -> List[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _cpu(p: psutil.Process) -> float:
    try:
        return p.cpu_percent(interval=None)
    except psutil.Error:
        return 0.0


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


def times(first_plot: List[float], latencies: List[float]) -> dict:
    """A row's times: the first plot's median and slowest, the slider's p50 and p95."""
    first_plot, latencies = sorted(first_plot), sorted(latencies)
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    return {"first_plot_median_s": statistics.median(first_plot), "first_plot_max_s": first_plot[-1],
            "slider_p50_s": statistics.median(latencies), "slider_p95_s": p95}


def measure(n: int, moves: int, preheat: bool, shared_cache: bool, browser, logs: Path) -> dict:
    port = free_port()
    name = f"{n}{'_preheat' if preheat else ''}{'' if shared_cache else '_nocache'}"
    cache = Path(tempfile.mkdtemp(prefix="classroom-runs-")) if shared_cache else None
    proc = start_voila(port, n if preheat else 0, cache, logs / f"voila_{name}.log")
    contexts = [browser.new_context(viewport={"width": 1300, "height": 900}) for _ in range(n)]
    pages = [c.new_page() for c in contexts]
    pool_ready = None
    try:
        if preheat:
            pool_ready = wait_pool_idle(proc.pid, n)
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
                page.keyboard.press("ArrowLeft")  # a value not asked for before
                pressed[i] = time.monotonic()
            replaced = wait_all(pages, lambda i, p: first_src(p) not in (None, before[i]), timeout=600)
            latencies += [replaced[i] - pressed[i] for i in range(n)]
        memory = max(memory, tree_memory_mb(proc.pid))
        return {"learners": n, "preheat": preheat, "shared_cache": shared_cache,
                "pool_ready_s": pool_ready, **times(first_plot, latencies), "server_memory_mb": memory}
    finally:
        for c in contexts:
            c.close()
        stop(proc)
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)


def drag_one_step_down(page) -> float:
    """Drag the app's concurrency slider one step to the left with the mouse; the time of the
    release. (One step of a 1-to-20 slider is about a twentieth of its track.)"""
    handle = page.locator(".fedasync-classroom .noUi-handle").first
    track = page.locator(".fedasync-classroom .noUi-target").first.bounding_box()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    step = track["width"] / 19
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - step, y, steps=3)
    page.mouse.up()
    return time.monotonic()


def browser_memory_mb(pid: int) -> float:
    """Resident memory of the browser process ``pid`` and all its children (renderers, the
    kernels' web workers run inside them)."""
    return tree_memory_mb(pid)


def chromium_pid(browser) -> int:
    """The pid of the Chromium that Playwright launched (the one child of this process that
    is a browser), to read its memory."""
    me = psutil.Process()
    for child in me.children(recursive=True):
        try:
            if "chrom" in child.name().lower() and "--type=" not in " ".join(child.cmdline()):
                return child.pid
        except psutil.Error:
            continue
    return me.pid


def measure_lite(n: int, moves: int, browser, site) -> dict:
    """N learners open the static site's classroom app at once; see the module's docstring."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import lite_smoke

    contexts = [browser.new_context(viewport={"width": 1300, "height": 900}) for _ in range(n)]
    off_site = []
    for c in contexts:
        off_site += lite_smoke.offline(c, site)[0]
    pages = [c.new_page() for c in contexts]
    try:
        asked = time.monotonic()
        for page in pages:
            page.goto(f"{site.url}/classroom.html", wait_until="commit", timeout=300_000)
        shown = wait_all(pages, lambda i, p: first_src(p) is not None, timeout=1200)
        first_plot = sorted(t - asked for t in shown.values())
        memory = browser_memory_mb(chromium_pid(browser))
        latencies: List[float] = []
        for move in range(moves):
            before = [first_src(p) for p in pages]
            released = {i: drag_one_step_down(page) for i, page in enumerate(pages)}
            replaced = wait_all(pages, lambda i, p: first_src(p) not in (None, before[i]), timeout=600)
            latencies += [replaced[i] - released[i] for i in range(n)]
        memory = max(memory, browser_memory_mb(chromium_pid(browser)))
        if off_site:
            raise RuntimeError(f"the pages asked for something off the site: {sorted(set(off_site))[:5]}")
        return {"learners": n, "lite": True, **times(first_plot, latencies), "browser_memory_mb": memory}
    finally:
        for c in contexts:
            c.close()


def lite_site() -> Path:
    """``bash scripts/lite.sh``: the site's folder (built, or reused when up to date)."""
    done = subprocess.run(["bash", "scripts/lite.sh"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"scripts/lite.sh failed: {done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--moves", type=int, default=3, help="slider moves per learner")
    parser.add_argument("--preheat", action="store_true", help="Voila's pre-heated kernels")
    parser.add_argument("--no-shared-cache", dest="shared_cache", action="store_false",
                        help="every kernel computes every run itself")
    parser.add_argument("--lite", action="store_true",
                        help="the app with no server: build/lite/classroom.html, a kernel per page")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args(argv)
    if args.lite and (args.preheat or not args.shared_cache):
        parser.error("--lite has no server kernels: --preheat and --no-shared-cache do not apply")
    from playwright.sync_api import sync_playwright

    executable = chromium.find()
    if executable is None:
        print(chromium.how_to_get_one(), file=sys.stderr)
        return 1
    logs = ROOT / "test-artifacts" / "bench_classroom"
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    if args.lite:
        return main_lite(args, executable)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=ARGS)
        print(f"{'learners':>8s} {'preheat':>7s} {'cache':>6s} {'first plot median / max':>24s} "
              f"{'slider p50 / p95':>18s} {'server memory':>14s}")
        for n in args.learners:
            row = measure(n, args.moves, args.preheat, args.shared_cache, browser, logs)
            rows.append(row)
            if args.json:  # after each row: a long sweep that stops early keeps what it measured
                args.json.write_text(json.dumps(rows, indent=2))
            print(f"{n:8d} {'yes' if args.preheat else 'no':>7s} "
                  f"{'shared' if args.shared_cache else 'none':>6s} "
                  f"{row['first_plot_median_s']:10.1f} s / {row['first_plot_max_s']:5.1f} s "
                  f"{row['slider_p50_s']:7.2f} s / {row['slider_p95_s']:5.2f} s "
                  f"{row['server_memory_mb'] / 1024:10.1f} GiB", flush=True)
        browser.close()
    return 0


def main_lite(args, executable) -> int:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "scripts"))
    import lite_smoke

    site = lite_smoke.serve(lite_site())
    rows = []
    try:
        with sync_playwright() as p:
            print(f"{'learners':>8s} {'first plot median / max':>24s} {'slider p50 / p95':>18s} "
                  f"{'browser memory':>15s}")
            for n in args.learners:
                # A fresh browser per row: no row inherits the last one's cache or kernels.
                browser = p.chromium.launch(executable_path=str(executable), args=ARGS)
                try:
                    row = measure_lite(n, args.moves, browser, site)
                finally:
                    browser.close()
                rows.append(row)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=2))
                print(f"{n:8d} {row['first_plot_median_s']:10.1f} s / {row['first_plot_max_s']:5.1f} s "
                      f"{row['slider_p50_s']:7.2f} s / {row['slider_p95_s']:5.2f} s "
                      f"{row['browser_memory_mb'] / 1024:11.1f} GiB", flush=True)
    finally:
        site.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
