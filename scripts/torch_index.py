"""Which extra package index gives this machine PyTorch's CPU build.

    python scripts/torch_index.py      # prints the pip arguments, one per line (maybe none)

On Linux, PyPI's ``torch`` is the CUDA build, with several GB of GPU
libraries the lesson never uses; PyTorch's own CPU index serves the same
version as ``+cpu``, and pip prefers it when that index is added with
``--extra-index-url``. So on Linux the set-up adds the CPU index when it can
reach it, with one short probe (no retries), and otherwise lets pip resolve
``torch`` as usual (as on a machine that serves a CPU build from a local
index). macOS and Windows wheels on PyPI are CPU builds already.

``FEDASYNC_TORCH_INDEX`` replaces the index address (``none`` disables it);
the tests point it at a local ``file://`` index. Standard library only: it
runs before the virtual environment has any package.
"""

from __future__ import annotations

import os
import platform
import sys
import urllib.request
from typing import List, Optional

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_SECONDS = 3.0


def reachable(index: str, timeout: float = PROBE_SECONDS) -> bool:
    """Does ``index`` answer for the ``torch`` project within ``timeout`` seconds?"""
    try:
        with urllib.request.urlopen(index.rstrip("/") + "/torch/", timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def pip_args(system: Optional[str] = None, index: Optional[str] = None,
             timeout: float = PROBE_SECONDS) -> List[str]:
    """The pip arguments that select the CPU build of torch here (an empty list: none needed)."""
    system = platform.system() if system is None else system
    index = os.environ.get("FEDASYNC_TORCH_INDEX", CPU_INDEX) if index is None else index
    if system != "Linux" or index.lower() in ("", "none"):
        return []
    return ["--extra-index-url", index] if reachable(index, timeout) else []


def main() -> int:
    args = pip_args()
    if args:
        print(f"[setup] torch: PyTorch's CPU index {args[1]} (no CUDA libraries)", file=sys.stderr)
    elif platform.system() == "Linux":
        print("[setup] torch: PyTorch's CPU index is not reachable; pip resolves torch from the "
              "configured index (check the build with `python -m fedasync_lib --version`)",
              file=sys.stderr)
    print("\n".join(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
