"""Separate hosts on one Linux machine, to run a Dask cluster across a real network.

A :class:`HostLab` builds ``n`` hosts as network namespaces, each with its own network
stack and one address, joined by veth links to a bridge in the machine's own namespace
(which can reach them all, as an operator's laptop on the same network would)::

    this machine (10.213.T.1) -- bridge -- veth -- host 0 (10.213.T.10)
                                        -- veth -- host 1 (10.213.T.11)
                                        -- veth -- host 2 (10.213.T.12)

Processes started on a host (:meth:`HostLab.start`) see only that host's network: a Dask
scheduler on host 0 and a worker on each other host talk over the veth links, as on
separate machines. :meth:`HostLab.link_down` cuts one host off, as a cable pulled or a
machine dropped off the network would; :meth:`HostLab.close` stops every process the lab
started and removes every namespace, link and the bridge, also after an error.

It needs root (``ip netns``; CAP_NET_ADMIN) on Linux: :func:`unavailable` says why not
when it cannot run. The tests (``tests/test_deploy_hosts.py``) and
``benchmarks/bench_deploy.py`` use it; ``docs/deploy.md`` gives the same commands for
real machines.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable() -> Optional[str]:
    """Why a :class:`HostLab` cannot be built here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are a Linux feature; this is {sys.platform}"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return ("building network namespaces needs root: run it as root, for example "
                "`sudo -E bash scripts/test.sh tests/test_deploy_hosts.py`")
    probe = f"fedasync-probe-{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class HostLab:
    """``n_hosts`` hosts in network namespaces on one bridge (see the module docstring)."""

    def __init__(self, n_hosts: int = 3):
        if not 1 <= n_hosts <= 50:
            raise ValueError(f"n_hosts={n_hosts!r} is invalid: expected an integer in [1, 50]")
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(f"cannot build separate hosts here: {reason}")
        self.tag = f"{os.getpid() % 10000:04d}"
        self.subnet = f"10.213.{os.getpid() % 200 + 20}"
        self.bridge = f"fa{self.tag}br"
        self.hosts = [f"fedasync-{self.tag}-h{i}" for i in range(n_hosts)]
        self.links = [f"fa{self.tag}v{i}" for i in range(n_hosts)]
        self.processes: List[subprocess.Popen] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # --- the network --------------------------------------------------------------------
    def _build(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, (host, link) in enumerate(zip(self.hosts, self.links)):
            _ip("netns", "add", host)
            _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", host)
            _ip("link", "set", link, "master", self.bridge)
            _ip("link", "set", link, "up")
            _ip("-n", host, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            _ip("-n", host, "link", "set", "eth0", "up")
            _ip("-n", host, "link", "set", "lo", "up")

    def address(self, host: int) -> str:
        """The IP address of host ``host``."""
        return f"{self.subnet}.{10 + host}"

    def link_down(self, host: int) -> None:
        """Cut host ``host`` off the network (its processes keep running)."""
        _ip("link", "set", self.links[host], "down")

    def link_up(self, host: int) -> None:
        _ip("link", "set", self.links[host], "up")

    # --- processes ----------------------------------------------------------------------
    def start(self, host: int, argv: Sequence[str], log: Optional[Path] = None,
              env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        """Start ``argv`` on host ``host``, in a session of its own (so that :meth:`close`
        stops it with all its children); output to ``log``."""
        out = open(log, "ab") if log is not None else subprocess.DEVNULL
        try:
            process = subprocess.Popen(["ip", "netns", "exec", self.hosts[host], *argv],
                                       stdout=out, stderr=subprocess.STDOUT,
                                       env={**os.environ, **(env or {})}, start_new_session=True)
        finally:
            if log is not None:
                out.close()
        self.processes.append(process)
        return process

    def wait_for_port(self, host: int, port: int, timeout: float = 60.0) -> None:
        """Wait until something listens on ``port`` of host ``host``; ``RuntimeError`` if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.address(host), port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"nothing listens on {self.address(host)}:{port} after {timeout:g} s")

    def pids(self) -> List[int]:
        """Every process still running in one of the lab's hosts."""
        found: List[int] = []
        for host in self.hosts:
            listed = _ip("netns", "pids", host, check=False)
            found += [int(p) for p in listed.stdout.split()]
        return found

    # --- tearing down -------------------------------------------------------------------
    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 5 s) and remove the hosts, their
        links and the bridge. Safe to call twice."""
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(5)
        for pid in self.pids():  # anything a process left behind in a host
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for host in self.hosts:
            _ip("netns", "del", host, check=False)  # takes its end of the veth, and so both
        for link in self.links:
            _ip("link", "del", link, check=False)
        _ip("link", "del", self.bridge, check=False)
        self.processes = []

    def leftovers(self) -> List[str]:
        """What of the lab still exists (empty once :meth:`close` has run)."""
        names = set(_ip("netns", "list", check=False).stdout.split())
        links = _ip("-o", "link", "show", check=False).stdout
        return ([h for h in self.hosts if h in names]
                + [n for n in [*self.links, self.bridge] if f" {n}:" in links or f" {n}@" in links])

    def __enter__(self) -> "HostLab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def dask_command(name: str) -> str:
    """The ``dask`` command of this Python's environment."""
    found = Path(sys.executable).with_name(name)
    return str(found) if found.exists() else name
