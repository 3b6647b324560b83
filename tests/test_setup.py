"""Set-up on a learner's machine: which torch index, which browser, the plain-pip route."""

import importlib.util
import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


torch_index = load(ROOT / "scripts" / "torch_index.py", "torch_index")
chromium = load(ROOT / "tests" / "browser" / "chromium.py", "chromium_finder")


# --- torch: the CPU index when it answers ----------------------------------------------------
@pytest.fixture
def file_index(tmp_path):
    """A local package index (files served on 127.0.0.1) with a `torch` project page."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "index.html").write_text("<html><body></body></html>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_linux_uses_a_reachable_cpu_index(file_index):
    assert torch_index.pip_args("Linux", file_index) == ["--extra-index-url", file_index]


def test_linux_falls_back_at_once_when_the_index_does_not_answer(tmp_path):
    import time
    start = time.monotonic()
    assert torch_index.pip_args("Linux", (tmp_path / "nowhere").as_uri()) == []
    # a closed local port: refused at once, never retried
    assert torch_index.pip_args("Linux", "http://127.0.0.1:9/whl/cpu", timeout=3) == []
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("system", ["Darwin", "Windows"])
def test_macos_and_windows_need_no_extra_index(system, file_index):
    assert torch_index.pip_args(system, file_index) == []


def test_the_index_can_be_switched_off(file_index):
    assert torch_index.pip_args("Linux", "none") == []


def test_the_script_prints_the_arguments_setup_passes_to_pip(file_index):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "torch_index.py")],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "FEDASYNC_TORCH_INDEX": file_index})
    expected = f"--extra-index-url\n{file_index}\n" if sys.platform.startswith("linux") else "\n"
    assert done.returncode == 0 and done.stdout == expected


def test_version_names_the_torch_build():
    done = subprocess.run([sys.executable, "-m", "fedasync_lib", "--version"],
                          capture_output=True, text=True, timeout=120)
    import torch
    import fedasync_lib
    assert done.returncode == 0
    assert done.stdout.startswith(f"fedasync {fedasync_lib.__version__}, torch {torch.__version__} (")
    assert ("CPU build" in done.stdout) == (torch.version.cuda is None)


def test_the_license_matches_pyproject():
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


# --- the browser: looked up in order ----------------------------------------------------------
def fake(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_fedasync_chromium_comes_first_and_must_exist(tmp_path):
    mine = fake(tmp_path / "my" / "chromium")
    env = {"FEDASYNC_CHROMIUM": str(mine), "PATH": ""}
    assert chromium.find("linux", env, tmp_path) == mine
    env["FEDASYNC_CHROMIUM"] = str(tmp_path / "missing")
    assert chromium.find("linux", env, tmp_path) is None  # named, so never silently replaced
    assert "FEDASYNC_CHROMIUM=" in chromium.how_to_get_one("linux", env)


def test_playwright_chromium_is_found_newest_first(tmp_path):
    cache = tmp_path / ".cache" / "ms-playwright"
    fake(cache / "chromium-1100" / "chrome-linux" / "chrome")
    newest = fake(cache / "chromium-1200" / "chrome-linux" / "chrome")
    found = chromium.find("linux", {"PATH": ""}, tmp_path)
    # Debian's binary wins when it is there; otherwise Playwright's newest
    assert found in (Path(chromium.DEBIAN), newest)
    order = chromium.candidates("linux", {"PATH": ""}, tmp_path)
    assert order.index(Path(chromium.DEBIAN)) < order.index(newest)


def test_macos_looks_in_playwright_then_the_applications_folder(tmp_path):
    mac = fake(tmp_path / "Library" / "Caches" / "ms-playwright" / "chromium-1200" /
               "chrome-mac" / "Chromium.app" / "Contents" / "MacOS" / "Chromium")
    order = chromium.candidates("darwin", {"PATH": ""}, tmp_path)
    assert order.index(mac) < order.index(Path(chromium.MACOS_APPS[0]))
    assert Path("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome") in order


def test_the_path_is_the_last_resort(tmp_path):
    on_path = fake(tmp_path / "bin" / "google-chrome")
    order = chromium.candidates("linux", {"PATH": str(tmp_path / "bin")}, tmp_path)
    assert order[-1] == on_path


@pytest.mark.parametrize("platform,env,phrase", [
    ("darwin", {"PATH": ""}, "brew install --cask chromium"),
    ("win32", {"PATH": ""}, "python -m playwright install chromium"),
    ("linux", {"PATH": ""}, "distribution's chromium package"),
])
def test_no_browser_says_in_one_line_how_to_get_one(platform, env, phrase):
    message = chromium.how_to_get_one(platform, env)
    assert phrase in message and "\n" not in message


def test_debian_with_apt_is_told_to_use_apt(tmp_path):
    fake(tmp_path / "apt-get")
    assert "apt-get install -y chromium" in chromium.how_to_get_one("linux", {"PATH": str(tmp_path)})


# --- the plain-pip route, exactly as the README writes it ----------------------------------------
def readme_plain_route() -> list:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("**Without bash**", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_plain_route_installs_and_the_first_notebook_imports(tmp_path):
    lines = readme_plain_route()
    assert lines == ["python -m venv .venv", "source .venv/bin/activate",
                     "pip install -r requirements.txt -e .", "jupyter lab"]
    # a fresh copy of the repository's files, as a learner's clone would have them
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    clone = tmp_path / "fedasync"
    for name in files:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_bytes((ROOT / name).read_bytes())
    notebook = json.loads((clone / "notebooks" / "01_why_asynchronous.ipynb").read_text())
    setup = next("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    (clone / "first_setup.py").write_text(
        "\n".join(line for line in setup.splitlines() if not line.startswith("%"))
        + "\nprint('first notebook set up with', fedasync_lib.__file__)\n")
    # Every line as written, but `jupyter lab` (it would serve forever): run the set-up
    # instead. Between the first two lines, the fresh environment is shown the packages
    # this checkout's .venv already holds (a .pth file), so that pip resolves every pin of
    # requirements.txt against them, and installs the clone itself, without unpacking
    # 1.7 GB again: installing everything from nothing is what scripts/setup.sh does on
    # every fresh clone, in CI too.
    shared = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    see_installed = (f"echo {shlex.quote(shared)} > "
                     "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))')"
                     "/fedasync-test-shared.pth")
    script = "set -e\n" + "\n".join([lines[0], see_installed] + lines[1:-1]) + \
        "\n.venv/bin/python -m jupyterlab --version\n" + \
        "python -c 'import fedasync_lib' && MPLBACKEND=Agg python -c " \
        "\"import fedasync_lib; exec(open('first_setup.py').read())\"\n"
    # PIP_NO_COMPILE: pip skips writing bytecode for the installed packages (torch alone has
    # thousands of modules); Python writes it at first import instead. Same packages.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PIP_NO_COMPILE": "1"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(["bash", "-c", script], cwd=clone, capture_output=True, text=True,
                          timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"first notebook set up with {clone}" in done.stdout
    assert "Successfully installed fedasync" in done.stdout  # the clone, into the fresh .venv
