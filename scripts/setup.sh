#!/usr/bin/env bash
# Set-up shared by lesson.sh and test.sh: a virtual environment in .venv with
# the pinned requirements and this package installed in editable mode.
# Re-installs only when requirements.txt or pyproject.toml change.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "fedasync needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.fedasync-installed
wanted=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "[setup] installing pinned requirements"
    # On Linux, PyTorch's CPU index when it answers (one 3 s probe): no CUDA libraries.
    torch_index=$("$PYTHON" scripts/torch_index.py)
    # shellcheck disable=SC2086  # the probe prints zero or two words
    .venv/bin/python -m pip install --quiet --disable-pip-version-check $torch_index \
        -r requirements.txt
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        --no-deps --no-build-isolation -e .
    echo "$wanted" > "$stamp"
    echo "[setup] installed: $(.venv/bin/python -m fedasync_lib --version)"
fi
