"""Where the test suite's CPU time goes: run a command (by default the README's test
command) and add up the CPU time of every process it starts, by kind of process.

    python benchmarks/suite_cpu.py                 # CI=true bash .ci/run, from this folder
    python benchmarks/suite_cpu.py -- bash .ci/run tests/test_cli.py

Linux only (it reads /proc). It samples every process twice a second and keeps the CPU
time it last saw; a process that lives less than half a second may be missed, and a
process's last half second may be. So the numbers are a floor, good to find what to speed
up, not to compare two runs closer than a few seconds. The kinds: a notebook kernel is
named by what started it (JupyterLab in the browser tests, nbval, nbgrader, Voila, ...).
docs/testing.md quotes a run.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")

#: (what a command line contains, the kind it is), first match wins.
KINDS: List[Tuple[str, str]] = [
    ("chrom", "Chromium"),
    ("ipykernel", "kernel"),
    ("jupyter-lab", "JupyterLab server"),
    ("jupyter lab", "JupyterLab server"),
    ("voila", "Voila server"),
    ("nbgrader", "nbgrader"),
    ("multiprocessing.spawn", "Dask worker (or another spawned process)"),
    ("dask ", "Dask worker (or another spawned process)"),
    ("pip", "pip"),
    ("-m pytest", "pytest (main)"),
    ("exec(eval(sys.stdin", "pytest worker"),  # how pytest-xdist (execnet) starts one
    ("node", "Node.js"),
]


def kind_of(command: str) -> str:
    for part, kind in KINDS:
        if part in command:
            return kind
    return "other"


def read(pid: str) -> Tuple[float, int, int]:
    """CPU seconds (user + system), parent pid, start time in ticks of ``pid``."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK, int(fields[1]), int(fields[19])


def descendants(root: int, parents: Dict[str, int]) -> set:
    family, grew = {str(root)}, True
    while grew:
        new = {p for p, parent in parents.items() if str(parent) in family} - family
        family |= new
        grew = bool(new)
    return family


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="*", default=["bash", ".ci/run"])
    parser.add_argument("--log", type=Path, default=ROOT / "test-artifacts" / "suite_cpu.log",
                        help="where the command's output goes (its last line is printed)")
    parser.add_argument("--others", type=int, default=5, metavar="N",
                        help="also list the N processes of kind 'other' that used the most CPU")
    args = parser.parse_args(argv)
    env = {**os.environ, "CI": os.environ.get("CI", "true")}
    start = time.monotonic()
    args.log.parent.mkdir(parents=True, exist_ok=True)
    log = open(args.log, "w")
    proc = subprocess.Popen(args.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    seen: Dict[str, List] = {}  # pid@start -> [command, cpu, parent pid]
    parents: Dict[str, int] = {}
    while proc.poll() is None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cpu, parent, started = read(pid)
                key = f"{pid}@{started}"
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()  # the last one: exec changes it
                command = raw.replace(b"\0", b" ").decode(errors="replace")
                if key not in seen:
                    seen[key] = [command, cpu, parent, pid]
                    parents[pid] = parent  # as first seen: an orphan's later parent is init
                seen[key][0] = command or seen[key][0]
                seen[key][1] = cpu
            except (OSError, ValueError, IndexError):
                continue
        time.sleep(0.5)
    wall = time.monotonic() - start
    log.close()
    lines = [line for line in args.log.read_text(errors="replace").splitlines() if line.strip()]
    print(f"{args.log}: {lines[-1] if lines else '(empty)'}")
    family = descendants(proc.pid, parents)
    by_pid = {v[3]: v for v in seen.values()}
    totals: Dict[str, float] = collections.defaultdict(float)
    counts: collections.Counter = collections.Counter()
    for command, cpu, parent, pid in seen.values():
        if pid not in family:
            continue
        kind = kind_of(command)
        if kind == "kernel":
            kind = f"kernel started by {kind_of(by_pid.get(str(parent), ['?'])[0])}"
        totals[kind] += cpu
        counts[kind] += 1
    print(f"{' '.join(args.command)}: exit {proc.returncode}, {wall:.0f} s of wall time, "
          f"{sum(totals.values()):.0f} s of CPU in {sum(counts.values())} processes seen")
    for kind, cpu in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{cpu:8.1f} s  {counts[kind]:4d}  {kind}")
    others = sorted((v for v in seen.values() if v[3] in family and kind_of(v[0]) == "other"),
                    key=lambda v: -v[1])[:args.others]
    for command, cpu, _, _ in others:
        print(f"{cpu:8.1f} s  other: {command[:150]}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
