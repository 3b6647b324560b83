#!/usr/bin/env bash
# Set up (first time only) and run the whole test suite: the library's unit
# tests, and every notebook executed on a fresh kernel and compared with its
# stored outputs (nbval). A test that hangs fails after 300 s. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MPLBACKEND=Agg PYTHONHASHSEED=0
exec .venv/bin/python -m pytest tests notebooks --nbval \
    --nbval-sanitize-with notebooks/sanitize.cfg --timeout=300 -p no:cacheprovider "$@"
