#!/usr/bin/env bash
# Build the 90-minute class's slides (slides/deck.ipynb) into a folder that works offline:
# nbconvert's reveal.js slides from the deck's slide metadata, the deck run on a fresh
# kernel so that every figure comes from the library as it is; reveal.js and require.js
# (pinned in slides/package.json, installed from npm once) copied into the folder.
# Prints the deck's path on its last line; open it in a browser, or serve the folder.
#   bash scripts/slides.sh [OUTPUT_FOLDER]     # default: build/slides
set -euo pipefail
out=$(realpath -m "${1:-$(dirname "$0")/../build/slides}")  # relative to where it is called from
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
if [ ! -f slides/node_modules/reveal.js/dist/reveal.js ] || [ ! -f slides/node_modules/requirejs/require.js ]; then
    echo "[slides] installing reveal.js and require.js from npm (slides/package-lock.json)" >&2
    (cd slides && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
fi
mkdir -p "$out/reveal.js"
export JUPYTER_PATH="$PWD/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}" MPLBACKEND=Agg
.venv/bin/jupyter nbconvert slides/deck.ipynb --to slides --execute --no-input \
    --template fedasync-slides --output-dir "$out" --output index \
    --SlidesExporter.reveal_url_prefix=reveal.js --HTMLExporter.require_js_url=require.js \
    --SlidesExporter.reveal_theme=white --SlidesExporter.reveal_transition=none \
    --ExecutePreprocessor.timeout=300 --log-level=WARN >&2
cp -r slides/node_modules/reveal.js/dist slides/node_modules/reveal.js/plugin "$out/reveal.js/"
cp slides/node_modules/requirejs/require.js "$out/require.js"
echo "$out/index.slides.html"
