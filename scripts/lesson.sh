#!/usr/bin/env bash
# Set up (first time only) and open the lesson in JupyterLab.
# Extra arguments go to `jupyter lab`, for example --no-browser or --port 8899.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
first=$(ls notebooks/[0-9]*.ipynb 2>/dev/null | head -n 1 || true)
as_root=()
[ "$(id -u)" = 0 ] && as_root=(--allow-root)  # containers and CI machines often run as root
# The address JupyterLab prints and opens lands on the first notebook.
exec .venv/bin/jupyter lab "${as_root[@]}" --LabApp.default_url="/lab/tree/${first:-notebooks}" "$@"
