"""A guard against a lost wake-up in Jupyter's asyncio kernel client, for Voila and nbgrader.

What goes wrong. Voila (the classroom app) and nbgrader (``autograde``) run notebooks
through nbclient, which waits for a cell's ``execute_reply`` with
``await kc.shell_channel.get_msg(timeout=None)``: one asyncio poll of a ZeroMQ socket,
with no time limit. ZeroMQ signals new messages on an *edge-triggered* file descriptor;
now and then that edge is consumed without the poll being woken. The reply then sits in
the socket while the poll waits for ever: the kernel is idle, the page shows "Executing 1
of 2" for good. In runs of 5 pages opened at once on 2 cores
(``benchmarks/stuck_pages.py --no-guard``), about one round in five had a page stuck so,
with ipykernel 7.4.0 and 6.31.0 and with pyzmq 27.3.0 and 26.4.0 alike. In the stuck case
looked into (with a signal handler that listed the server's asyncio tasks and read each
client's socket), the socket held the message (``zmq.EVENTS`` had ``POLLIN``) while
nbclient was still waiting on it. docs/classroom.md has the counts.

The guard. :func:`install` makes jupyter_client's asyncio channel poll in slices of one
second and look again after each: pyzmq's poll, when its time is up, asks the socket
directly (``poll(0)``), so a message whose wake-up was lost is found within a second. A
caller's own timeout still holds. Nothing else changes; messages are read as before.

Installed by ``scripts/serve_voila.py`` (which ``scripts/classroom.sh`` runs) and by the
course's ``nbgrader_config.py`` (written by ``scripts/make_course.py``).
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any, Dict, Optional

#: The longest single wait on the socket, in seconds: a lost wake-up costs at most this.
SLICE = 1.0


async def _get_msg(self, timeout: Optional[float] = None) -> Dict[str, Any]:
    """``AsyncZMQSocketChannel.get_msg``, polling in slices of :data:`SLICE` seconds."""
    assert self.socket is not None
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = SLICE if deadline is None else max(0.0, min(SLICE, deadline - time.monotonic()))
        if await self.socket.poll(int(left * 1000)):
            return await self._recv()
        if deadline is not None and time.monotonic() >= deadline:
            raise Empty


def install() -> None:
    """Patch jupyter_client's asyncio channel (once; a second call does nothing)."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    if getattr(AsyncZMQSocketChannel.get_msg, "__wrapped_by_fedasync__", False):
        return
    _get_msg.__wrapped_by_fedasync__ = True  # type: ignore[attr-defined]
    AsyncZMQSocketChannel.get_msg = _get_msg  # type: ignore[method-assign]
