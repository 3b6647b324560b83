"""History.copy, which lesson.simulate hands out for every cached run: a copy equal to the
original and sharing nothing a caller could change."""

import copy

from fedasync_lib import AsyncConfig, run
from fedasync_lib.core.history import History


def a_history() -> History:
    h = run(AsyncConfig(num_updates=12, eval_every=4, concurrency=3, buffer_size=2), "fedbuff")
    h.incidents.append({"time": 1.0, "event": "worker lost", "client_ids": [1, 2], "moved_to": {1: "b"}})
    h.jobs.append({"job_id": 0, "client_id": 1, "worker": "a"})
    h.placement[1] = "a"
    h.unfinished.append({"client_id": 3, "start_time": 0.5})
    return h


def test_a_copy_is_what_deepcopy_gives():
    h = a_history()
    assert h.copy().to_json() == copy.deepcopy(h).to_json() == h.to_json()


def test_changing_a_copy_leaves_the_original_as_it_was():
    h = a_history()
    before = h.to_json()
    c = h.copy()
    c.updates[0]["alpha"] = -1.0
    c.updates.append({})
    c.evals[0]["accuracy"] = 2.0
    c.client_latency[0] = 0.0
    c.incidents[0]["client_ids"].append(9)
    c.incidents[0]["moved_to"][1] = "z"
    c.jobs[0]["worker"] = "z"
    c.placement[1] = "z"
    c.unfinished[0]["client_id"] = 0
    c.held_back.append(5)
    assert h.to_json() == before
