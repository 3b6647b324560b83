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


def test_the_package_declares_every_library_it_imports():
    import ast
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {d.split("[")[0].replace("-", "_").lower() for d in project["dependencies"]}
    declared |= {d.lower() for d in project["optional-dependencies"]["deploy"]}
    declared |= {"sklearn"} if "scikit_learn" in declared else set()
    imported = set()
    for path in (ROOT / "fedasync_lib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                     and node.module else [])
            imported |= {n.split(".")[0].lower() for n in names}
    third_party = imported - set(sys.stdlib_module_names) - {"fedasync_lib"}
    # IPython comes with ipywidgets; psutil only in tests
    assert third_party - {"ipython"} <= declared, third_party - declared


def test_the_style_file_ships_with_the_package():
    from fedasync_lib.teaching import plots
    assert plots.STYLE.exists() and plots.STYLE.suffix == ".mplstyle"


def test_check_outputs_names_an_unknown_setting_in_one_line_before_it_runs_anything():
    import subprocess

    done = subprocess.run(["bash", str(ROOT / "scripts" / "check_outputs.sh"), "2", "avx3"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("check_outputs.sh: setting=avx3 is invalid: "
                                   "expected one of 1 2 4 busy avx2 plain browser")
