"""Servers and a browser for the browser tests.

Each server (JupyterLab, Voila) runs in its own process group on 127.0.0.1,
on a free port, with a random token; the fixtures stop the whole group when
the tests end, also when they fail. The browser is a Chromium found by
``chromium.py`` (on CI, Debian's), driven by Playwright.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import chromium  # noqa: E402  (tests/browser/chromium.py)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process in its own process group, stopped with everything it started."""

    def __init__(self, name: str, args: list[str], url: str, log: Path):
        self.name, self.url, self.log = name, url, log
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     env={**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"})

    def wait_ready(self, probe: str | None = None, timeout: float = 120.0) -> None:
        """Until ``probe`` answers (or, without one, until the port accepts connections)."""
        deadline = time.monotonic() + timeout
        port = int(self.url.rsplit(":", 1)[1])
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"its log:\n{self.log.read_text()[-3000:]}")
            try:
                if probe:
                    urllib.request.urlopen(probe, timeout=2)
                else:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not answer at {probe} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        # Kernels are started in the server's process group; make sure none is left.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def chromium_or_fail() -> str:
    """A Chromium (see chromium.py for where it looks), or a loud failure, never a skip."""
    path = chromium.find()
    if path is None:
        pytest.fail(f"BROWSER TESTS CANNOT RUN: {chromium.how_to_get_one()}", pytrace=False)
    return str(path)


@pytest.fixture(scope="module")
def browser():
    executable = chromium_or_fail()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def lab_settings(folder: Path) -> Path:
    """User settings for the test server: render every cell (no windowing, so a demo
    far down the notebook is in the page), fetch no news (no pop-up), and never save.
    The server's root is the repository itself: with JupyterLab's autosave (every 120 s),
    a notebook that ran longer than that in the browser was written back over its stored
    outputs, half run, while other tests were reading it."""
    for plugin, settings in {
        "@jupyterlab/notebook-extension/tracker": '{"windowingMode": "none"}',
        "@jupyterlab/docmanager-extension/plugin": '{"autosave": false}',
        "@jupyterlab/apputils-extension/notification": '{"fetchNews": "false", "checkForUpdates": false}',
    }.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(settings)
    return folder


def notebook_digests() -> dict[str, str]:
    """The sha256 of every notebook under notebooks/, by path."""
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((ROOT / "notebooks").rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts}


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    port, token = free_port(), secrets.token_hex(16)
    folder = tmp_path_factory.mktemp("lab")
    log = folder / "jupyterlab.log"
    os.environ["JUPYTERLAB_SETTINGS_DIR"] = str(lab_settings(folder / "settings"))
    os.environ["JUPYTERLAB_WORKSPACES_DIR"] = str(folder / "workspaces")
    server = Server("JupyterLab", [
        str(BIN / "jupyter"), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
        f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}",
        "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False",
        # Kernels talk over Unix sockets: no TCP port to lose to another process between
        # the server picking it and the kernel binding it (the suite runs Dask clusters).
        "--KernelManager.transport=ipc",
    ], f"http://127.0.0.1:{port}", log)
    before = notebook_digests()
    try:
        server.wait_ready(f"{server.url}/api/status?token={token}")
        server.token = token
        yield server
    finally:
        server.stop()
    changed = [name for name, digest in notebook_digests().items() if before.get(name) != digest]
    assert not changed, f"the browser tests wrote to the repository's notebooks: {changed}"


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    # The README's classroom command itself (its template asks for nothing off the server).
    server = Server("Voila", [
        "bash", str(ROOT / "scripts" / "classroom.sh"), f"--port={port}", "--Voila.ip=127.0.0.1",
        "--show_tracebacks=True", "--KernelManager.transport=ipc",
    ], f"http://127.0.0.1:{port}", log)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def pytest_terminal_summary(terminalreporter):
    """Name the screenshots in the test log, so CI's output says where they are."""
    shots = sorted(SCREENSHOTS.glob("*.png")) if SCREENSHOTS.exists() else []
    if shots:
        terminalreporter.section("browser screenshots")
        for shot in shots:
            terminalreporter.write_line(f"{shot.relative_to(ROOT)}  ({shot.stat().st_size // 1024} KiB)")
