"""Real concurrent clients on Dask distributed (LocalCluster, 2 worker processes):
the same algorithms as the simulator, real staleness, fault tolerance, clean failures,
and no process left behind."""

import time

import numpy as np
import psutil
import pytest

from fedasync_lib import AsyncConfig, deploy, run, run_fedasync as simulate, run_fedbuff
from fedasync_lib.__main__ import main

CFG = AsyncConfig(dataset="digits", learning_rate=0.1, concurrency=4, num_updates=100,
                  eval_every=20, heterogeneity=1.0, max_staleness=None, staleness="polynomial")


def children():
    """Live child processes, except Python's multiprocessing resource tracker: one helper
    per interpreter, started by the first spawned process, that exits with pytest itself."""
    return [p for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            and "multiprocessing.resource_tracker" not in " ".join(p.cmdline())]


@pytest.fixture(scope="module")
def dask_client():
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
            yield client


@pytest.fixture(autouse=True, scope="module")
def nothing_left_running():
    before = {p.pid for p in children()}
    yield
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and {p.pid for p in children()} - before:
        time.sleep(0.5)
    left = [(p.pid, " ".join(p.cmdline())[:200]) for p in children() if p.pid not in before]
    assert not left, f"processes left running: {left}"


def test_deployed_fedasync_matches_the_simulator(dask_client):
    h = deploy.run_fedasync(CFG, client=dask_client, time_scale=0.05, progress=False)
    sim = simulate(CFG)
    assert len(h.updates) == CFG.num_updates and h.num_applied == CFG.num_updates
    assert abs(h.tail_accuracy() - sim.tail_accuracy()) < 0.05
    assert h.column("staleness").mean() > 0.5  # real staleness under concurrency
    assert np.all(np.diff(h.column("arrival_time")) >= 0)
    np.testing.assert_array_equal(h.column("version"), np.arange(1, CFG.num_updates + 1))


def test_deployed_fedbuff_steps_once_per_buffer(dask_client):
    cfg = CFG.replace(buffer_size=4, server_lr=2.0, num_updates=120)
    h = deploy.run_fedbuff(cfg, client=dask_client, time_scale=0.02, progress=False)
    assert h.algorithm == "fedbuff"
    np.testing.assert_array_equal(h.column("version"), np.arange(1, 121) // 4)
    assert abs(h.tail_accuracy() - run_fedbuff(cfg).tail_accuracy()) < 0.08


def test_deployed_wait_policy_applies_no_update_staler_than_the_bound(dask_client):
    cfg = CFG.replace(staleness_policy="wait", max_staleness=2, num_updates=60)
    h = deploy.run_fedasync(cfg, client=dask_client, time_scale=0.02, progress=False)
    assert len(h.updates) == 60 and h.num_rejected == 0
    assert h.column("staleness").max() <= 2
    assert h.column("staleness").max() > 0  # jobs did overlap: the bound was exercised


# The same policy under both drivers: the loop is shared, so the same invariants hold.
SHARED = CFG.replace(num_updates=42, eval_every=10, buffer_size=4, max_staleness=2)


@pytest.mark.parametrize("algorithm,changes", [
    ("fedasync", {}),                                   # drop above the bound
    ("fedasync", {"staleness_policy": "wait"}),         # wait for the bound
    ("fedbuff", {"max_staleness": None}),               # 42 = 10 buffers of 4 and one of 2
    ("fedavg", {}),
])
def test_the_simulator_and_the_dask_driver_share_the_loop(dask_client, algorithm, changes):
    cfg = SHARED.replace(**changes)
    sim = run(cfg, algorithm)
    dep = deploy.run(cfg, algorithm, client=dask_client, time_scale=0.02, progress=False)
    assert (sim.clock, dep.clock) == ("virtual", "wall-clock")
    for h in (sim, dep):
        assert h.algorithm == algorithm and len(h.updates) == cfg.num_updates
        assert set(h.updates[0]) == set(sim.updates[0]) and set(h.evals[0]) == set(sim.evals[0])
        assert [e["update"] for e in h.evals] == [0, 10, 20, 30, 40, 42]
        staleness = h.column("staleness")
        if cfg.staleness_policy == "wait":
            assert staleness.max() <= 2 and h.num_rejected == 0
        elif algorithm == "fedasync":
            assert np.all((h.column("alpha") == 0) == (staleness > 2))
        if algorithm == "fedbuff":  # the last partial buffer is flushed
            assert h.num_applied == 42 and h.evals[-1]["version"] == 11
        if algorithm == "fedavg":
            assert staleness.max() == 0 and h.evals[-1]["version"] == 11  # 10 rounds of 4, one of 2
        assert not h.diverged and h.final_accuracy > h.evals[0]["accuracy"]


def test_deployed_runs_honour_apply_time_and_update_order(dask_client):
    # Equal, exact job times (1 virtual s = 0.02 s) and a server five times slower (0.1 s per
    # update): the server is the bottleneck, so updates queue. Asserted on what the run
    # recorded, not on how fast this machine is.
    cfg = CFG.replace(num_updates=24, apply_time=5.0, update_order="freshest", eval_every=24,
                      heterogeneity=0.0, jitter=0.0)
    h = deploy.run_fedasync(cfg, client=dask_client, time_scale=0.02, progress=False)
    arrival, applied = h.column("arrival_time"), h.column("applied_time")
    assert np.all(applied >= arrival)
    assert np.all(np.diff(applied) >= 5.0 * 0.02)  # one at a time, each taken up once the server is free
    assert (applied > arrival).sum() >= 12  # most updates waited for the server
    for a, b in zip(h.updates, h.updates[1:]):  # of the updates waiting together, the freshest first
        if b["arrival_time"] <= a["applied_time"]:
            assert a["base_version"] >= b["base_version"]
    for u in h.updates:  # a client whose update waits is not handed the model again meanwhile
        assert not any(v["client_id"] == u["client_id"] and
                       u["arrival_time"] <= v["start_time"] < u["applied_time"] for v in h.updates)


def test_killing_a_worker_mid_run_loses_no_applied_update():
    killed = []

    def kill_at_30(n, client):
        if n == 30:
            killed.append(deploy.kill_busiest_worker(client))

    cfg = CFG.replace(num_updates=80)
    h = deploy.run_fedasync(cfg, time_scale=0.05, progress=False, on_update=kill_at_30)
    assert killed and killed[0] is not None
    assert deploy.lost_jobs(h) >= 1  # the in-flight jobs on it were counted and redone
    assert len(h.updates) == cfg.num_updates  # the run finished its requested updates
    np.testing.assert_array_equal(h.column("version"), np.arange(1, cfg.num_updates + 1))
    assert h.final_accuracy > h.evals[0]["accuracy"] + 0.4  # and it went on learning


def test_a_failing_client_is_dropped_and_the_run_goes_on(dask_client):
    cfg = CFG.replace(num_updates=40)
    h = deploy.run_fedasync(cfg, client=dask_client, time_scale=0.0, progress=False,
                            faulty_clients={0, 1})
    assert len(h.updates) == 40
    failed = {i["client_id"] for i in h.incidents if i["event"] == "client failed"}
    assert failed <= {0, 1} and failed
    assert not {u["client_id"] for u in h.updates} & {0, 1}


def test_every_client_failing_stops_the_run_with_a_clear_error(dask_client):
    with pytest.raises(RuntimeError, match="every client's training failed"):
        deploy.run_fedasync(CFG.replace(num_clients=4, concurrency=2), client=dask_client,
                            time_scale=0.0, progress=False, faulty_clients=range(4))


def test_unreachable_scheduler_is_a_clear_error():
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"scheduler_address='tcp://127.0.0.1:9' cannot be reached"):
        deploy.run_fedasync(CFG, scheduler_address="tcp://127.0.0.1:9", connect_timeout=2,
                            progress=False)
    assert time.monotonic() - start < 30


def test_a_cluster_without_workers_is_a_clear_error():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=0, processes=True, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        with pytest.raises(RuntimeError, match="no worker joined"):
            deploy.run_fedasync(CFG, client=client, connect_timeout=2, progress=False)
    with pytest.raises(ValueError, match="n_workers=0"):
        deploy.run_fedasync(CFG, n_workers=0, progress=False)


def test_bad_time_scale_is_rejected_before_anything_starts():
    with pytest.raises(ValueError, match="time_scale=-1"):
        deploy.run_fedasync(CFG, time_scale=-1, progress=False)


@pytest.mark.parametrize("options,phrase", [
    ({"connect_timeout": -1}, r"connect_timeout=-1 is invalid: expected a number of seconds > 0"),
    ({"connect_timeout": float("nan")}, "connect_timeout=nan is invalid"),
    ({"n_workers": 2.5}, r"n_workers=2.5 is invalid: expected an integer in \[1, 256\]"),
    ({"scheduler_address": "localhost:8786"}, "expected PROTOCOL://HOST:PORT"),
    ({"scheduler_address": "tcp://localhost"}, "missing port number"),
    ({"scheduler_address": "http://localhost:8786"}, "protocol 'http'"),
    ({"scheduler_address": "tcp://localhost:99999"}, "scheduler_address='tcp://localhost:99999' is invalid"),
    ({"scheduler_address": 8786}, "scheduler_address=8786 is invalid"),
])
def test_bad_deploy_options_are_one_line_errors_before_anything_starts(options, phrase):
    start = time.monotonic()
    with pytest.raises(ValueError, match=phrase):
        deploy.run_fedasync(CFG, progress=False, **options)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("answer", [b"", b"\xff" * 64, b"HTTP/1.0 400 Bad Request\r\n\r\n"])
def test_something_else_at_the_address_is_named(answer):
    """A server that is not a Dask scheduler: silent, garbage (Dask's own client would read a
    message length of exabytes), or a web server."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.sendall(answer) if answer else None
            stop.wait(5)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        with pytest.raises(RuntimeError, match="answers, but not as a Dask scheduler does"):
            deploy.run_fedasync(CFG, scheduler_address=address, connect_timeout=1, progress=False)
    finally:
        stop.set()
        thread.join()
        server.close()


def test_a_script_without_a_main_guard_is_told_why(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "experiment.py"
    script.write_text("from fedasync_lib import AsyncConfig, deploy\n"
                      "h = deploy.run(AsyncConfig(num_updates=5), progress=False)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "line 2, starts a local Dask cluster from the top level of the script" in done.stderr
    assert "Nanny failed" not in done.stderr
    guarded = tmp_path / "guarded.py"
    guarded.write_text("from fedasync_lib import AsyncConfig, deploy\n"
                       "def main():\n"
                       "    return deploy.run(AsyncConfig(num_updates=5, concurrency=2), "
                       "progress=False, time_scale=0)\n"
                       "if __name__ == '__main__':\n"
                       "    print(len(main().updates))\n")
    done = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "5", done.stderr


def test_command_line_deploy(capsys):
    assert main(["deploy", "--updates", "20", "--clients", "8", "--concurrency", "3",
                 "--max-staleness", "none", "--time-scale", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "on a local cluster of 2 worker processes" in out and "updates applied       20" in out
    assert main(["deploy", "--updates", "30", "--clients", "8", "--concurrency", "4",
                 "--staleness-policy", "wait", "--max-staleness", "1", "--time-scale", "0.01",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    max_seen = int(out.split("staleness mean / max")[1].split("/")[1].split()[0])
    assert "updates rejected      0" in out and max_seen <= 1
    assert main(["deploy", "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "2"]) == 1
    assert "cannot be reached" in capsys.readouterr().err
