"""The run cache on disk (FEDASYNC_RUN_CACHE): a result handed out again is the result the
run computes, a different config or algorithm is a different entry, and a learner's code
is never answered from the cache."""

from __future__ import annotations

import pytest

from fedasync_lib.algorithms.adaptive import ParticipationWeighted, participation_weighted, staleness_only
from fedasync_lib.core.scheduling import Scheduler
from fedasync_lib.teaching import experiments, run_cache
from fedasync_lib.teaching.lesson import LESSON


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(run_cache.VARIABLE, str(tmp_path))
    return tmp_path


def test_without_the_variable_nothing_is_kept(monkeypatch):
    monkeypatch.delenv(run_cache.VARIABLE, raising=False)
    calls = []
    for _ in range(2):
        run_cache.cached(LESSON, "x", lambda: calls.append(1) or len(calls))
    assert calls == [1, 1]


def test_a_kept_result_is_handed_out_and_keys_tell_configs_apart(cache):
    calls = []

    def compute(value):
        calls.append(value)
        return {"value": value}

    assert run_cache.cached(LESSON, "a", lambda: compute(1)) == {"value": 1}
    assert run_cache.cached(LESSON, "a", lambda: compute(2)) == {"value": 1}  # kept
    assert run_cache.cached(LESSON.replace(seed=7), "a", lambda: compute(3)) == {"value": 3}
    assert run_cache.cached(LESSON, "b", lambda: compute(4)) == {"value": 4}
    assert calls == [1, 3, 4]
    assert len(list(cache.glob("*/*.pickle"))) == 3


def test_a_broken_entry_is_computed_again(cache):
    run_cache.cached(LESSON, "a", lambda: 1)
    (entry,) = cache.glob("*/*.pickle")
    entry.write_bytes(b"not a pickle")
    assert run_cache.cached(LESSON, "a", lambda: 2) == 2


def test_library_rules_have_keys_and_a_learners_subclass_has_none():
    assert participation_weighted().cache_key
    assert staleness_only(0.5).cache_key != staleness_only(0.6).cache_key

    class Mine(ParticipationWeighted):
        def __call__(self, *args, **kwargs):
            return 0.01

    assert Mine().cache_key is None


def test_cached_bias_correction_and_scheduling_equal_fresh_runs(cache, monkeypatch):
    config = experiments.SCHEDULING.replace(apply_time=0.0, staleness="polynomial", num_updates=40)
    fresh = experiments._bias_correction(config.replace(seed=3), True, participation_weighted())
    first = experiments.bias_correction(3, config)
    again = experiments.bias_correction(3, config)
    for r in (first, again):
        assert r.jain == fresh.jain and r.accuracy == fresh.accuracy
        assert r.slow_digit_accuracy == fresh.slow_digit_accuracy and r.seed == 3
    cfg = experiments.SCHEDULING.replace(num_updates=40)
    a = experiments.scheduling_run("arrival", "fewest", cfg)
    b = experiments.scheduling_run("arrival", "fewest", cfg)
    c = experiments._scheduling_run("arrival", "fewest", cfg, Scheduler)
    assert a.accuracy == b.accuracy == c.accuracy and a.jain == b.jain == c.jain
    assert a.history.updates == c.history.updates


def test_a_model_run_kept_on_disk_equals_a_fresh_one_and_another_model_is_not_it(cache):
    from fedasync_lib import lesson

    config = lesson.LESSON.replace(num_updates=20, eval_every=10)
    fresh = lesson._model_run("logistic regression", config, lesson.federated_data(config))
    lesson._cached_model_run.cache_clear()  # only the copy on disk is left
    first = lesson.model_run("logistic regression", config.staleness, config)
    lesson._cached_model_run.cache_clear()
    kept = lesson.model_run("logistic regression", config.staleness, config)
    assert len(list(cache.glob("*/*.pickle"))) == 1
    for r in (first, kept):
        assert r.history.updates == fresh.history.updates and r.parameters == fresh.parameters
    assert kept.seconds_per_update == first.seconds_per_update  # the first run's timing, read back
    other = lesson.model_run("built-in MLP", config.staleness, config)
    assert other.parameters != fresh.parameters and len(list(cache.glob("*/*.pickle"))) == 2


def test_a_run_on_given_data_is_kept_under_the_datas_hash(cache):
    from fedasync_lib import lesson
    from fedasync_lib.core.data import FederatedData

    config = lesson.LESSON.replace(num_updates=20, eval_every=10)
    shards = lesson.two_digit_shards(config, images=False)
    fresh = lesson._model_run("logistic regression", config, shards)
    first = lesson.model_run("logistic regression", config.staleness, config, data=shards)
    rebuilt = lesson.two_digit_shards(config, images=False)  # equal data, other tensors
    kept = lesson.model_run("logistic regression", config.staleness, config, data=rebuilt)
    assert len(list(cache.glob("*/*.pickle"))) == 1
    for r in (first, kept):
        assert r.history.updates == fresh.history.updates
    # One label changed: other data, so another run.
    clients = [(c.x, c.y.copy()) for c in shards.clients]
    clients[0][1][0] = (clients[0][1][0] + 1) % 10
    changed = FederatedData.from_clients(clients, (shards.test.x, shards.test.y))
    assert run_cache.data_digest(changed) != run_cache.data_digest(shards)
    lesson.model_run("logistic regression", config.staleness, config, data=changed)
    assert len(list(cache.glob("*/*.pickle"))) == 2


def test_a_learners_scheduler_is_run_not_looked_up(cache):
    made = []

    class Counting(Scheduler):
        def __init__(self, *args):
            made.append(1)
            super().__init__(*args)

    cfg = experiments.SCHEDULING.replace(num_updates=30)
    table = experiments.scheduler_table({"mine": (Counting, "fewest"),
                                         "library": (Scheduler, "fewest")}, seeds=(1,), config=cfg)
    experiments.scheduler_table({"mine": (Counting, "fewest")}, seeds=(1,), config=cfg)
    assert len(made) == 2  # built for each table, never answered from the cache
    assert table["mine"][0].accuracy == table["library"][0].accuracy
    assert table["mine"][0].label == "mine" and table["library"][0].label == "library"


PROCESS = r"""
import sys, time
from pathlib import Path
from fedasync_lib.teaching import run_cache
from fedasync_lib.teaching.lesson import LESSON

name, where = sys.argv[1], Path(sys.argv[2])

def compute():
    (where / f"{name}.computing").touch()
    deadline = time.monotonic() + 60
    while not (where / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return name

(where / f"{name}.asking").touch()
print(run_cache.cached(LESSON, "same run", compute))
"""


def _wait_for(path, seconds):
    import time
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.exists()


def test_two_processes_asking_for_one_run_compute_it_once(tmp_path):
    """The classroom's case: while one kernel computes a run, another that asks for it waits
    and gets the same result instead of computing it too."""
    import os
    import subprocess
    import sys

    flags = tmp_path / "flags"
    flags.mkdir()
    env = {**os.environ, run_cache.VARIABLE: str(tmp_path / "cache")}

    def start(name):
        return subprocess.Popen([sys.executable, "-c", PROCESS, name, str(flags)], env=env,
                                stdout=subprocess.PIPE, text=True)

    first = start("first")
    try:
        assert _wait_for(flags / "first.computing", 60)
        second = start("second")
        try:
            assert _wait_for(flags / "second.asking", 60)
            # Without the lock, the second process would now be computing the run as well.
            assert not _wait_for(flags / "second.computing", 1.5)
            (flags / "go").touch()
            out_first, _ = first.communicate(timeout=60)
            out_second, _ = second.communicate(timeout=60)
        finally:
            second.kill()
    finally:
        first.kill()
    assert out_first.strip() == out_second.strip() == "first"
    assert not (flags / "second.computing").exists()


def test_a_run_inside_the_same_runs_computation_does_not_wait_for_itself(cache):
    outer = run_cache.cached(LESSON, "a", lambda: run_cache.cached(LESSON, "a", lambda: 5) + 1)
    assert outer in (5, 6)


def test_prune_keeps_this_versions_runs_and_removes_every_other_versions(cache):
    run_cache.cached(LESSON, "a", lambda: 1)
    (kept,) = cache.glob("*/*.pickle")
    assert kept.parent.name == run_cache.code_version()
    entry = "0123456789abcdef" * 2
    old = cache / "0123456789abcdef"  # another version's folder
    old.mkdir()
    (old / f"{entry}.pickle").write_bytes(b"old")
    (old / f"{entry}.lock").write_bytes(b"")
    (cache / f"{entry}.pickle").write_bytes(b"from the flat layout")
    # What the cache did not write stays, wherever the variable points.
    (cache / "notes.txt").write_text("not the cache's")
    (cache / "mine").mkdir()
    (cache / "mine" / f"{entry}.pickle").write_bytes(b"someone else's")
    (cache / "fedcba9876543210").mkdir()  # a version's name, but holding something else
    (cache / "fedcba9876543210" / "keep.txt").write_text("not an entry")
    assert run_cache.prune() == 3
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [run_cache.code_version(), "notes.txt", "mine", "fedcba9876543210"])
    assert (cache / "mine" / f"{entry}.pickle").exists() and (cache / "fedcba9876543210" / "keep.txt").exists()
    assert kept.exists() and run_cache.cached(LESSON, "a", lambda: 2) == 1
    assert run_cache.prune() == 0


def test_prune_without_a_cache_does_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv(run_cache.VARIABLE, raising=False)
    assert run_cache.prune() == 0
    assert run_cache.prune(tmp_path / "missing") == 0


def test_the_classroom_command_prunes_other_versions_before_it_serves(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    old = tmp_path / "0123456789abcdef"
    old.mkdir()
    (old / f"{'0123456789abcdef' * 2}.pickle").write_bytes(b"old")
    done = subprocess.run(["bash", str(root / "scripts" / "classroom.sh"), "--help"],
                          env={**os.environ, run_cache.VARIABLE: str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert not old.exists()
