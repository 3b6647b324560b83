import pytest

from fedasync_lib.core.events import EventQueue


def test_events_come_out_in_time_order_and_move_the_clock():
    q = EventQueue()
    for t, name in [(3.0, "c"), (1.0, "a"), (2.5, "b"), (7.0, "d")]:
        q.push(t, name)
    out = []
    while q:
        t, name = q.pop()
        assert q.now == t
        out.append((t, name))
    assert out == [(1.0, "a"), (2.5, "b"), (3.0, "c"), (7.0, "d")]


def test_ties_keep_push_order():
    q = EventQueue()
    for name in "xyz":
        q.push(1.0, name)
    assert [q.pop()[1] for _ in range(3)] == ["x", "y", "z"]


def test_cannot_schedule_in_the_past():
    q = EventQueue()
    q.push(5.0, "a")
    q.pop()
    with pytest.raises(ValueError, match="time=4.0"):
        q.push(4.0, "late")
    q.push(5.0, "now is fine")
    assert len(q) == 1
