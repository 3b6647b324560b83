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
exec .venv/bin/voila notebooks/classroom.ipynb --no-browser --template=fedasync-offline "$@"
