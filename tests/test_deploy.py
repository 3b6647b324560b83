"""Real concurrent clients on Dask distributed (LocalCluster, 2 worker processes):
the same algorithms as the simulator, the concurrency the config asks for, any model,
loss and data, each client's data on one worker, fault tolerance, clean failures, and no
process left behind. Separate hosts are in test_deploy_hosts.py."""

import time

import numpy as np
import psutil
import pytest

from fedasync_lib import AsyncConfig, AsyncModel, deploy, run, run_fedasync as simulate, run_fedbuff
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
        with LocalCluster(n_workers=2, threads_per_worker=CFG.concurrency, processes=True,
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


def test_deployed_runs_honour_availability_dropout_and_the_timeout(dask_client):
    """On Dask a dropped job is one that never comes back: it is not applied, and its slot is
    freed at the timeout; only clients available at that moment (in virtual time: wall-clock
    seconds / time_scale) are handed the model."""
    from fedasync_lib.core.availability import availability_model

    scale = 0.05
    cfg = SHARED.replace(availability="daily", availability_share=0.6, day_length=20.0,
                         dropout=0.25, job_timeout=8.0, max_staleness=None, num_updates=40)
    h = deploy.run(cfg, "fedasync", client=dask_client, time_scale=scale, progress=False)
    assert len(h.updates) == 40 and not h.diverged
    model = availability_model(cfg)
    # the check of availability and the job's recorded start are a few microseconds apart
    assert all(model.is_available(u["client_id"], u["start_time"] / scale - 1e-3)
               or model.is_available(u["client_id"], u["start_time"] / scale)
               for u in h.updates)
    dropped = [d for d in h.dropped if d["reason"] == "dropped"]
    assert dropped
    for d in dropped:
        assert d["freed_time"] - d["start_time"] >= scale * cfg.job_timeout - 1e-6
    gone = {(d["client_id"], d["start_time"]) for d in h.dropped}
    assert not gone & {(u["client_id"], u["start_time"]) for u in h.updates}


def test_deployed_fedavg_over_selects_and_discards_late_results(dask_client):
    cfg = SHARED.replace(oversample=1.5, num_updates=36)
    h = deploy.run(cfg, "fedavg", client=dask_client, time_scale=0.05, progress=False)
    assert len(h.updates) == 36 and h.discarded and not h.diverged
    assert all(h.updates[i]["alpha"] == 0 for i in h.discarded)


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


def held(dask_client):
    """``{worker: sorted client ids whose data it holds}``, over every run on the cluster."""
    return {w: sorted(c for clients in runs.values() for c in clients)
            for w, runs in deploy.held_data(dask_client).items()}


def test_killing_a_worker_moves_its_clients_with_their_data_and_loses_no_applied_update():
    seen = {}

    def on_update(n, client):
        if n == 15:
            seen["before"] = held(client)
        if n == 30:
            seen["killed"] = deploy.kill_busiest_worker(client)
        if n == 60:
            seen["after"] = held(client)

    cfg = CFG.replace(num_updates=80)
    h = deploy.run_fedasync(cfg, time_scale=0.05, progress=False, on_update=on_update,
                            worker_timeout=5)
    # Before: every client's data on its home worker, and on no other.
    homes = {}
    for c, w in h.placement.items():
        homes.setdefault(w, []).append(c)
    assert seen["before"] == {w: sorted(cs) for w, cs in homes.items()}
    # The kill: the worker is lost, its clients moved together, its running jobs redone.
    assert seen["killed"] is not None and deploy.lost_workers(h) == [seen["killed"]]
    (moved,) = [i for i in h.incidents if i["event"] == "worker lost"]
    assert moved["client_ids"] == sorted(homes[seen["killed"]])
    assert deploy.lost_jobs(h) >= 1
    # After: each client's data on exactly one live worker, its current home.
    after = seen["after"]
    now_home = {**h.placement, **moved["moved_to"]}
    holders = [c for cs in after.values() for c in cs]
    assert sorted(holders) == list(range(cfg.num_clients))  # each client once
    for w, cs in after.items():
        assert all(now_home[c] == w for c in cs)
    # Every job ran on its client's home at the time, and nothing applied was lost.
    for j in h.jobs:
        home = h.placement[j["client_id"]] if j["worker"] != moved["moved_to"].get(j["client_id"]) \
            else moved["moved_to"][j["client_id"]]
        assert j["worker"] == home
    assert len(h.updates) == cfg.num_updates
    np.testing.assert_array_equal(h.column("version"), np.arange(1, cfg.num_updates + 1))
    assert h.final_accuracy > h.evals[0]["accuracy"] + 0.4  # and it went on learning


def test_concurrency_is_what_the_config_asks_for(dask_client):
    """concurrency=4 on 2 workers: 4 jobs train at once, by the workers' own clocks, and
    the run takes about the emulated device time, not twice it."""
    scale = 0.2  # each job sleeps about 0.2 s: overheads of milliseconds are small beside it
    cfg = CFG.replace(num_updates=40, eval_every=40)
    h = deploy.run_fedasync(cfg, client=dask_client, time_scale=scale, progress=False)
    _, counts = deploy.concurrency_profile(h)
    assert max(counts) == cfg.concurrency
    assert {j["worker"] for j in h.jobs} == set(dask_client.nthreads())  # both workers trained
    for j in h.jobs:
        assert j["submitted"] <= j["started"] + 0.05 and j["started"] < j["finished"]
    emulated = run_fedasync_sim(cfg).virtual_time * scale  # the same jobs on the virtual clock
    startup = min(j["started"] for j in h.jobs)
    assert h.virtual_time <= 1.6 * (emulated + startup), (h.virtual_time, emulated, startup)


def run_fedasync_sim(cfg):
    return simulate(cfg)


def test_too_few_threads_for_the_concurrency_is_named():
    with pytest.raises(RuntimeError, match=r"has 1 thread\(s\), but 4 of its clients may train "
                                           r"at once.*--nthreads 4"):
        deploy.run_fedasync(CFG, threads_per_worker=1, progress=False)
    with pytest.raises(ValueError, match="threads_per_worker is read only for a local cluster"):
        deploy.run_fedasync(CFG, scheduler_address="tcp://127.0.0.1:9", threads_per_worker=2)


def own_data(cfg, images=False):
    """The lesson's split of the digits, brought as the learner's own data."""
    from fedasync_lib import FederatedData
    from fedasync_lib.core.data import make_federated_data

    split = make_federated_data(cfg)
    shape = (-1, 1, 8, 8) if images else (-1, 64)
    return FederatedData.from_clients([(c.x.reshape(shape), c.y) for c in split.clients],
                                      (split.test.x.reshape(shape), split.test.y))


@pytest.mark.parametrize("name", ["cnn", "logistic"])
def test_any_model_and_own_data_deploy_as_the_policy_allows(dask_client, name):
    from fedasync_lib import DigitsCNN, LogisticRegression

    cfg = CFG.replace(num_updates=40, eval_every=20, max_staleness=3, staleness="polynomial",
                      poly_a=0.5)
    model = (DigitsCNN(seed=cfg.seed) if name == "cnn" else LogisticRegression(64, 10, seed=cfg.seed))
    data = own_data(cfg, images=name == "cnn")
    h = deploy.run_fedasync(cfg, data, model=model, client=dask_client, time_scale=0.02,
                            progress=False)
    staleness, alpha = h.column("staleness"), h.column("alpha")
    assert len(h.updates) == cfg.num_updates
    assert np.all((alpha == 0) == (staleness > 3))  # the bound drops, and only it
    applied = alpha > 0
    np.testing.assert_allclose(alpha[applied], cfg.mixing_alpha * (1 + staleness[applied]) ** -0.5,
                               rtol=1e-6)  # FedAsync's polynomial weight of each staleness
    versions = np.cumsum(applied)
    np.testing.assert_array_equal(h.column("version"), versions)
    np.testing.assert_array_equal(staleness, versions - applied - h.column("base_version"))
    assert h.final_accuracy > h.evals[0]["accuracy"] + 0.2
    assert all(j["worker"] == h.placement[j["client_id"]] for j in h.jobs)  # pinned to the data


def test_a_lambda_loss_travels_by_value_and_trains(dask_client):
    import torch.nn.functional as F

    cfg = CFG.replace(num_updates=12, eval_every=12)
    h = deploy.run_fedasync(cfg, model=AsyncModel(cfg).to_module(),
                            loss=lambda out, y: F.cross_entropy(out, y, reduction="none"),
                            client=dask_client, time_scale=0.0, progress=False)
    assert len(h.updates) == 12 and h.final_accuracy > h.evals[0]["accuracy"]


def test_what_cannot_reach_the_workers_is_named_before_anything_starts(dask_client):
    import sys
    import threading
    import types

    import torch.nn as nn

    class Locked(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(64, 10)
            self.lock = threading.Lock()

        def forward(self, x):
            return self.linear(x)

    before = len(children())
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"model=Locked cannot be sent to the Dask workers: "
                                         r"TypeError: cannot pickle '_thread.lock'"):
        deploy.run_fedasync(CFG, model=Locked(), progress=False)
    assert time.monotonic() - start < 5 and len(children()) == before  # no cluster started

    # A class from a module the workers cannot import: named when it is set up, before any job.
    module = types.ModuleType("only_on_the_driver")
    exec("import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n"
         "        super().__init__(); self.linear = nn.Linear(64, 10)\n"
         "    def forward(self, x):\n        return self.linear(x)\n", module.__dict__)
    sys.modules["only_on_the_driver"] = module
    try:
        with pytest.raises(ValueError, match=r"cannot be set up on worker .*No module named "
                                             r"'only_on_the_driver'.*importable there"):
            deploy.run_fedasync(CFG, model=module.Net(), client=dask_client, progress=False)
    finally:
        del sys.modules["only_on_the_driver"]


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
    # The guarded form (`if __name__ == '__main__':`) is what the CLI's own local cluster uses.


def test_command_line_deploy(capsys, dask_client):
    assert main(["deploy", "--updates", "20", "--clients", "8", "--concurrency", "3",
                 "--max-staleness", "none", "--time-scale", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "on a local cluster of 2 worker processes" in out and "updates applied       20" in out
    address = dask_client.scheduler.address  # a running cluster, as `dask scheduler` gives
    assert main(["deploy", "--scheduler", address, "--updates", "30", "--clients", "8",
                 "--concurrency", "4", "--staleness-policy", "wait", "--max-staleness", "1",
                 "--time-scale", "0.01", "--no-progress"]) == 0
    out = capsys.readouterr().out
    max_seen = int(out.split("staleness mean / max")[1].split("/")[1].split()[0])
    assert "updates rejected      0" in out and max_seen <= 1
    assert main(["deploy", "--scheduler", address, "--model", "cnn", "--updates", "12",
                 "--clients", "6", "--concurrency", "2", "--dataset", "digits", "--time-scale",
                 "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "fedasync (cnn) with 6 clients" in out and "updates applied       12" in out
    assert main(["deploy", "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "2"]) == 1
    assert "cannot be reached" in capsys.readouterr().err


def test_only_a_lost_worker_sends_a_job_again_a_training_error_drops_the_client():
    from distributed.scheduler import KilledWorker

    from fedasync_lib.deploy.dask_driver import _lost_with_its_worker

    assert _lost_with_its_worker(KilledWorker("task", "tcp://10.0.0.1:1234", 0))
    assert _lost_with_its_worker(deploy.ClientDataMissing("worker lacks client 3"))
    assert not _lost_with_its_worker(RuntimeError("a bug in the learner's model"))
    assert not _lost_with_its_worker(deploy.ClientTrainingError("client 0 failed"))


def test_a_result_that_left_with_its_worker_is_given_up_not_waited_for():
    """A finished task's result lives on its worker until fetched: when the worker dies
    in between, the fetch is given up (and the job sent again), never waited on for ever."""
    from fedasync_lib.deploy.dask_driver import DaskDriver, ResultLost, _lost_with_its_worker

    class Unfetchable:
        cancelled = False

        def result(self, timeout=None):
            raise TimeoutError(f"timed out after {timeout} s.")

        def cancel(self):
            self.cancelled = True

    class Job:
        job_id = 7

    driver = DaskDriver.__new__(DaskDriver)
    checks = []
    driver.where, driver.gone = {7: "tcp://10.0.0.2:40000"}, set()

    def check_workers():  # the second look finds the worker gone
        checks.append(1)
        if len(checks) == 2:
            driver.gone.add("tcp://10.0.0.2:40000")

    driver._check_workers = check_workers
    future = Unfetchable()
    error = driver._fetch(future, Job())
    assert isinstance(error, ResultLost) and "tcp://10.0.0.2:40000" in str(error)
    assert future.cancelled and len(checks) == 2
    assert _lost_with_its_worker(error)
