"""What a fresh machine, CI or a hosted Jupyter service installs is pinned and consistent."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_every_requirement_is_pinned_and_torch_is_the_cpu_pin():
    reqs = requirements()
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][A-Za-z0-9.+]*", r) for r in reqs), reqs
    assert "torch==2.13.0" in reqs
    assert not any(r.startswith(("torchvision", "torchaudio")) for r in reqs)


def test_binder_installs_the_same_pins_and_the_package():
    binder = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert "-r ../requirements.txt" in binder
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in binder
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime == f"python-{sys.version_info.major}.{sys.version_info.minor}" == "python-3.11"
    assert "pip install --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/lesson.sh" in readme
    assert "exec bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
