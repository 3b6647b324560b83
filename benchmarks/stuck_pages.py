"""How often does a classroom page stay at "Executing 1 of 2" for good? With and without the
guard of scripts/zmq_poll_fix.py.

    python benchmarks/stuck_pages.py --learners 5 --rounds 16              # as served: guard, shared cache
    python benchmarks/stuck_pages.py --learners 5 --rounds 16 --no-guard   # plain voila, no cache

Each round starts a fresh Voila server for the classroom app and opens N pages at once in
Chromium; a round in which some page shows no plot within 90 s is counted as stuck (the
plot comes in about 20 s for 5 pages on 2 cores). Prints one line per round and the
count; docs/classroom.md has the result.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_classroom as bench  # noqa: E402  (same server, pages and waits)

ROOT = bench.ROOT


def start(port: int, guard: bool, log: Path) -> subprocess.Popen:
    if guard:
        return bench.start_voila(port, 0, Path(tempfile.mkdtemp(prefix="classroom-runs-")), log)
    env = {**os.environ, "JUPYTER_PATH": str(ROOT / "share" / "jupyter"), "FEDASYNC_RUN_CACHE": ""}
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "voila"), "notebooks/classroom.ipynb", "--no-browser",
                             "--template=fedasync-offline", f"--port={port}", "--Voila.ip=127.0.0.1",
                             "--KernelManager.transport=ipc"], cwd=ROOT, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    return bench.wait_for_port(proc, port, log)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--no-guard", dest="guard", action="store_false")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    logs = ROOT / "test-artifacts" / "stuck_pages"
    logs.mkdir(parents=True, exist_ok=True)
    stuck = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(bench.chromium.find()), args=bench.ARGS)
        for r in range(args.rounds):
            port = bench.free_port()
            proc = start(port, args.guard, logs / f"voila_{r}.log")
            contexts = [browser.new_context() for _ in range(args.learners)]
            pages = [c.new_page() for c in contexts]
            try:
                asked = time.monotonic()
                for page in pages:
                    page.goto(f"http://127.0.0.1:{port}/", wait_until="commit", timeout=300_000)
                try:
                    bench.wait_all(pages, lambda i, pg: bench.first_src(pg) is not None, timeout=90)
                    print(f"round {r}: all {args.learners} pages showed their plot in "
                          f"{time.monotonic() - asked:.0f} s", flush=True)
                except RuntimeError as e:
                    stuck += 1
                    texts = [pg.evaluate("document.body ? document.body.innerText.slice(0, 40) : ''")
                             for pg in pages if bench.first_src(pg) is None]
                    print(f"round {r}: STUCK: {e}; they show {texts}", flush=True)
            finally:
                for c in contexts:
                    c.close()
                bench.stop(proc)
        browser.close()
    print(f"{stuck} of {args.rounds} rounds had a stuck page "
          f"({args.learners} pages each, guard {'on' if args.guard else 'off'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
