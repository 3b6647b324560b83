"""scripts/zmq_poll_fix.py: the kernel client never waits on its socket without a time limit,
so a message whose wake-up was lost is found; a caller's timeout still holds."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from queue import Empty

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import zmq_poll_fix  # noqa: E402
from jupyter_client.channels import AsyncZMQSocketChannel  # noqa: E402


class LostWakeUp:
    """A socket holding one message whose wake-up was lost: a poll without a time limit
    never returns; a poll with one finds the message (as pyzmq's does, with ``poll(0)``)."""

    def __init__(self, has_message: bool = True):
        self.has_message = has_message
        self.polls = []

    async def poll(self, timeout_ms=None):
        self.polls.append(timeout_ms)
        if timeout_ms is None:
            await asyncio.Future()  # for ever
        await asyncio.sleep(min(timeout_ms, 50) / 1000)
        return 1 if self.has_message else 0


class Channel:
    def __init__(self, socket):
        self.socket = socket

    async def _recv(self):
        return {"msg_type": "execute_reply"}


#: jupyter_client's own method, taken before any test installs the guard.
ORIGINAL = AsyncZMQSocketChannel.get_msg


def test_the_original_waits_for_ever_and_the_guard_finds_the_message():
    assert not getattr(ORIGINAL, "__wrapped_by_fedasync__", False)

    async def go(get_msg, channel):
        return await asyncio.wait_for(get_msg(channel), timeout=3)

    with pytest.raises(asyncio.TimeoutError):  # what nbclient's wait for a reply does today
        asyncio.run(go(ORIGINAL, Channel(LostWakeUp())))
    channel = Channel(LostWakeUp())
    assert asyncio.run(go(zmq_poll_fix._get_msg, channel)) == {"msg_type": "execute_reply"}
    assert None not in channel.socket.polls and max(channel.socket.polls) <= 1000


def test_a_timeout_still_raises_empty_on_time():
    channel = Channel(LostWakeUp(has_message=False))
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(zmq_poll_fix._get_msg(channel, timeout=0.3))
    assert time.monotonic() - start < 2


def test_install_patches_jupyter_clients_channel_once():
    zmq_poll_fix.install()
    zmq_poll_fix.install()
    assert AsyncZMQSocketChannel.get_msg is zmq_poll_fix._get_msg
