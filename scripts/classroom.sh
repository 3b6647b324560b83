#!/usr/bin/env bash
# Set up (first time only) and serve the classroom app: the lesson's demos in one
# page, code hidden, for a projector or for learners who should not edit code.
# Open the address it prints (default http://localhost:8866). Extra arguments go
# to voila, for example --port 9000 or --Voila.ip=0.0.0.0 to serve a classroom network.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The template (share/jupyter/voila/templates/fedasync-offline) is Voila's own, minus the
# stylesheets it links from a CDN: the page needs nothing but this server.
export JUPYTER_PATH="$PWD/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
# All the learners' kernels share one cache of finished runs (fedasync_lib/teaching/run_cache.py):
# a run one learner's kernel computes, another gets at once, and twenty learners moving a
# slider to the same value at the same moment cost one simulation. FEDASYNC_RUN_CACHE= turns
# it off; a run is keyed by the library's code, so an old entry is never used for new code.
export FEDASYNC_RUN_CACHE="${FEDASYNC_RUN_CACHE-$PWD/.cache/classroom-runs}"
# Runs kept for another version of the library are of no use: remove them (run_cache.prune).
if [ -n "$FEDASYNC_RUN_CACHE" ]; then
    .venv/bin/python -c "from fedasync_lib.teaching import run_cache; run_cache.prune()"
fi
# Voila itself, with a guard against a lost ZeroMQ wake-up that can leave a page at
# "Executing 1 of 2" for good (scripts/zmq_poll_fix.py says what and how often).
exec .venv/bin/python scripts/serve_voila.py notebooks/classroom.ipynb --no-browser --template=fedasync-offline "$@"
