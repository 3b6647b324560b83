"""Connecting to a Dask cluster: the one given, one at an address, or a new local one.

Everything this module starts is closed by the caller's ``ExitStack``; a scheduler that
cannot be reached, or something else answering at its address, is a ``RuntimeError``
that says which, within the timeout.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any, Optional

from ..core import processes


def connect(stack: ExitStack, scheduler_address: Optional[str], client: Any, n_workers: int,
            threads_per_worker: int, connect_timeout: float):
    """A ``distributed.Client``: the one given, one connected to the address, or a new
    LocalCluster's of ``n_workers`` processes with ``threads_per_worker`` threads each.
    Everything started here is closed by ``stack``."""
    import dask
    from distributed import Client, LocalCluster

    if client is not None:
        return client
    if scheduler_address is not None:
        _probe_scheduler(scheduler_address, connect_timeout)
        try:
            return stack.enter_context(Client(scheduler_address, timeout=f"{connect_timeout}s"))
        except (OSError, TimeoutError) as err:
            raise RuntimeError(f"scheduler_address={scheduler_address!r} cannot be reached within "
                               f"{connect_timeout:g} s: {err}") from None
    unguarded = processes.unguarded_call_in_main_script()
    if unguarded is not None:
        path, line = unguarded
        raise RuntimeError(
            f"{path}, line {line}, starts a local Dask cluster from the top level of the script, "
            "outside an `if __name__ == \"__main__\":` block. Each of the cluster's worker "
            "processes is a new Python that imports your script again, and would start a "
            "cluster of its own; put the code that calls deploy.run under that `if`")
    stack.enter_context(dask.config.set({"distributed.scheduler.allowed-failures": 0}))
    # Dask's own log lines about dead workers would repeat what History.incidents records.
    # dashboard_address=None would still bind the default port 8787: use a random one.
    cluster = stack.enter_context(LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                               processes=True, dashboard_address="127.0.0.1:0",
                                               silence_logs=logging.CRITICAL))
    return stack.enter_context(Client(cluster))


def check_address(address: str) -> None:
    """Raise ``ValueError`` unless ``address`` reads as a Dask scheduler address, PROTOCOL://HOST:PORT."""
    from distributed.comm import parse_address, parse_host_port

    example = "expected PROTOCOL://HOST:PORT, for example 'tcp://10.0.0.5:8786'"
    if not isinstance(address, str) or "://" not in address:
        raise ValueError(f"scheduler_address={address!r} is invalid: {example}")
    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            raise ValueError(f"protocol {scheme!r}")
        host, port = parse_host_port(location)
        if not host or not 0 < int(port) < 65536:
            raise ValueError("host or port")
    except (ValueError, TypeError) as err:
        raise ValueError(f"scheduler_address={address!r} is invalid ({err}): {example}, "
                         "with protocol tcp or tls") from None


def _probe_scheduler(address: str, timeout: float) -> None:
    """Ask whatever listens at ``address`` who it is, within ``timeout`` seconds; raise
    ``RuntimeError`` unless a Dask scheduler answers. (Dask's own client, pointed at
    another kind of server, can wait for ever or read a garbage message length and
    try to allocate exabytes.)"""
    import asyncio
    import concurrent.futures
    import socket

    from distributed.comm import connect, parse_address, parse_host_port

    host, port = parse_host_port(parse_address(address)[1])
    try:  # first, is anything listening at all?
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise RuntimeError(f"scheduler_address={address!r} cannot be reached within {timeout:g} "
                           f"s: {err}") from None

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    def ask() -> Any:  # its own event loop, also when the caller runs one (Jupyter)
        return asyncio.run(asyncio.wait_for(identity(), 2 * timeout))

    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        reply = pool.submit(ask).result(2 * timeout + 1)
    except BaseException as err:  # no answer, or a garbage one (MemoryError, ...)
        reply = err
    finally:
        pool.shutdown(wait=False)  # a server that never answers must not hold us here
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        raise RuntimeError(f"scheduler_address={address!r} answers, but not as a Dask scheduler "
                           "does: is something else listening on that port? Start one with "
                           "`dask scheduler` and give its address")


def wait_for_workers(client, connect_timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=connect_timeout)
    except (TimeoutError, OSError):
        raise RuntimeError(f"no worker joined the cluster at {client.scheduler.address} within "
                           f"{connect_timeout:g} s: start workers (`dask worker ADDRESS`) or "
                           "pass a cluster that has some") from None
