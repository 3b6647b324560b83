"""A Dask cluster on three separate hosts (network namespaces on this machine, joined by
veth links): the scheduler on one, a worker on each of the others, started with the
commands docs/deploy.md gives for real machines, and the run driven from this machine
with the command-line deploy. Mid-run one worker host drops off the network; the run must
finish its updates, lose no applied update, record the incident, and leave no process,
namespace or link behind."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest

from fedasync_lib import History
from fedasync_lib.deploy import netns

REASON = netns.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"separate hosts: {REASON}")

UPDATES = 120


def start_cluster(lab: netns.HostLab, logs) -> str:
    """The real-cluster route of docs/deploy.md: `dask scheduler` on host 0, `dask worker
    ADDRESS --nthreads 4` on hosts 1 and 2."""
    address = f"tcp://{lab.address(0)}:8786"
    lab.start(0, [netns.dask_command("dask"), "scheduler", "--host", lab.address(0),
                  "--port", "8786", "--no-dashboard"], log=logs / "scheduler.log")
    lab.wait_for_port(0, 8786)
    for host in (1, 2):
        lab.start(host, [netns.dask_command("dask"), "worker", address, "--nthreads", "4",
                         "--host", lab.address(host), "--no-dashboard"],
                  log=logs / f"worker{host}.log")
    return address


def wait_for_workers(address: str, n: int) -> dict:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(n, timeout=90)
        return {w: info["host"] for w, info in client.scheduler_info()["workers"].items()}


def test_a_host_dropping_off_mid_run_loses_no_applied_update(tmp_path):
    started: list = []
    with netns.HostLab(3) as lab:
        address = start_cluster(lab, tmp_path)
        started = [p.pid for p in lab.processes]
        workers = wait_for_workers(address, 2)
        on_host = {host: w for w, host in workers.items()}
        cut_off = on_host[lab.address(2)]
        records = tmp_path / "history.json"
        command = [sys.executable, "-m", "fedasync_lib", "deploy", "--scheduler", address,
                   "--dataset", "digits", "--learning-rate", "0.1", "--concurrency", "4",
                   "--updates", str(UPDATES), "--eval-every", "20", "--max-staleness", "none",
                   "--heterogeneity", "1.0", "--time-scale", "0.05", "--worker-timeout", "3",
                   "--save-history", str(records)]
        summary = tmp_path / "summary.txt"
        with open(summary, "w") as stdout:
            driver = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True)
        cut_at = []

        def watch_progress():  # tqdm's bar on stderr: cut the host once 20 updates are in
            text = ""
            while True:
                chunk = driver.stderr.read(64)
                if not chunk:
                    return
                text += chunk
                done = [int(n) for n in re.findall(r"(\d+)/%d" % UPDATES, text[-400:])]
                if done and max(done) >= 20 and not cut_at:
                    lab.link_down(2)
                    cut_at.append(max(done))

        watcher = threading.Thread(target=watch_progress, daemon=True)
        watcher.start()
        try:
            driver.wait(timeout=240)
        finally:
            driver.kill()
            watcher.join(5)
        out = summary.read_text()
        assert driver.returncode == 0, out
    # Afterwards: nothing of the lab is left, and every process it started is gone.
    assert lab.leftovers() == []
    assert not [p for p in started if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]

    assert cut_at and cut_at[0] < UPDATES, "the host was never cut off mid-run"
    h = History.from_json(records.read_text())
    assert len(h.updates) == UPDATES and h.num_applied == UPDATES  # it finished them all
    np.testing.assert_array_equal(h.column("version"), np.arange(1, UPDATES + 1))  # no gap
    (lost,) = [i for i in h.incidents if i["event"] == "worker lost"]
    assert lost["worker"] == cut_off
    home = {c: w for c, w in h.placement.items()}
    assert lost["client_ids"] == sorted(c for c, w in home.items() if w == cut_off)
    assert set(lost["moved_to"].values()) == {on_host[lab.address(1)]}  # to the host still up
    after = [j for j in h.jobs if j["submitted"] > lost["time"]]
    assert after and all(j["worker"] == on_host[lab.address(1)] for j in after)
    assert "workers lost          1" in out and f"updates applied       {UPDATES}" in out
    assert h.final_accuracy > h.evals[0]["accuracy"] + 0.4


def test_the_lab_says_why_it_cannot_run_where_it_cannot(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert "needs root" in netns.unavailable()
    with pytest.raises(RuntimeError, match="cannot build separate hosts here: .*needs root"):
        netns.HostLab(3)
