"""What deploying costs: updates per second on Dask against the simulator.

    python benchmarks/bench_deploy.py [--updates N] [--repeats R] [--no-hosts]

Every row runs FedAsync on the digits (20 clients, 4 training at once, 2 local epochs)
with ``time_scale=0``: no emulated device time, so a deployed run is as fast as its
tasks, the network and the scheduler allow, and the difference to the simulator is the
cost of deploying. Rows:

* the simulator (virtual clock, jobs trained in batches in this process);
* Dask on a ``LocalCluster`` of 2 worker processes on this machine (a cluster started
  once, then ``--repeats`` runs on it);
* Dask across separate hosts: a scheduler and 2 workers in network namespaces joined by
  veth links (:mod:`fedasync_lib.deploy.netns`; needs root, skipped otherwise or with
  ``--no-hosts``).

each for the built-in MLP (hand-written gradients) and the small CNN (``torch.func``).
Reported: the median of ``--repeats`` runs of updates per second and of milliseconds per
update, and the overhead per update against the simulator (deployed ms per update minus
simulated). The cluster's start-up is not in any row; it is printed on its own.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fedasync_lib import AsyncConfig, DigitsCNN, deploy, run_fedasync  # noqa: E402
from fedasync_lib.deploy import netns  # noqa: E402

CONFIG = AsyncConfig(dataset="digits", learning_rate=0.1, concurrency=4, eval_every=1_000_000,
                     heterogeneity=1.0, max_staleness=None)


def timed(fn: Callable[[], object], repeats: int) -> List[float]:
    fn()  # warm-up: the workers' first job pays for imports
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def models(config: AsyncConfig) -> Dict[str, Callable[[], Optional[object]]]:
    return {"MLP": lambda: None, "CNN": lambda: DigitsCNN(seed=config.seed)}


def rows_for(where: str, run: Callable[[object], object], config: AsyncConfig,
             repeats: int) -> List[tuple]:
    out = []
    for name, make in models(config).items():
        seconds = timed(lambda: run(make()), repeats)
        out.append((where, name, statistics.median(seconds), min(seconds)))
        print(f"  {where:24s} {name}: {statistics.median(seconds):.2f} s per run", flush=True)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-hosts", action="store_true", help="skip the separate-hosts rows")
    args = parser.parse_args(argv)
    config = CONFIG.replace(num_updates=args.updates)
    rows = rows_for("simulator", lambda m: run_fedasync(config, model=m), config, args.repeats)

    import dask
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=2, threads_per_worker=config.concurrency, processes=True,
                         dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        print(f"  LocalCluster started in {time.perf_counter() - start:.1f} s", flush=True)
        rows += rows_for("Dask, LocalCluster", lambda m: deploy.run_fedasync(
            config, model=m, client=client, time_scale=0.0, progress=False), config, args.repeats)

    reason = "skipped (--no-hosts)" if args.no_hosts else netns.unavailable()
    if reason is None:
        with netns.HostLab(3) as lab, tempfile.TemporaryDirectory() as logs:
            start = time.perf_counter()
            address = f"tcp://{lab.address(0)}:8786"
            lab.start(0, [netns.dask_command("dask"), "scheduler", "--host", lab.address(0),
                          "--port", "8786", "--no-dashboard"], log=Path(logs) / "s.log")
            lab.wait_for_port(0, 8786)
            for host in (1, 2):
                lab.start(host, [netns.dask_command("dask"), "worker", address, "--nthreads",
                                 str(config.concurrency), "--host", lab.address(host),
                                 "--no-dashboard"], log=Path(logs) / f"w{host}.log")
            with Client(address) as client:
                client.wait_for_workers(2, timeout=120)
                print(f"  hosts started in {time.perf_counter() - start:.1f} s", flush=True)
                rows += rows_for("Dask, 3 separate hosts", lambda m: deploy.run_fedasync(
                    config, model=m, client=client, time_scale=0.0, progress=False),
                    config, args.repeats)
    else:
        print(f"  separate hosts: {reason}")

    simulated = {name: median for where, name, median, _ in rows if where == "simulator"}
    n = config.num_updates
    print(f"\nFedAsync, digits, 20 clients, 4 at once, {n} updates, time_scale=0; median of "
          f"{args.repeats} runs (python benchmarks/bench_deploy.py --updates {n} --repeats "
          f"{args.repeats})\n")
    print("| where | model | updates/s | ms per update | overhead per update |")
    print("|---|---|---:|---:|---:|")
    for where, name, median, _ in rows:
        ms = 1000 * median / n
        extra = "" if where == "simulator" else f"+{ms - 1000 * simulated[name] / n:.1f} ms"
        print(f"| {where} | {name} | {n / median:,.0f} | {ms:.2f} | {extra} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
