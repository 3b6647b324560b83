#!/usr/bin/env bash
# Build the lesson as a book: a static HTML site of every lesson and exercise notebook with
# its stored outputs, the instructor guide and the docs pages (Sphinx with MyST-NB;
# book/conf.py). It works offline and from any static web server: MathJax (pinned in
# book/package.json, installed from npm once) is served from the site itself.
# Prints the site's folder on its last line; open index.html there.
#   bash scripts/book.sh [OUTPUT_FOLDER]     # default: build/book
set -euo pipefail
out=$(realpath -m "${1:-$(dirname "$0")/../build/book}")  # relative to where it is called from
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
mathjax=book/node_modules/mathjax/es5
if [ ! -f "$mathjax/tex-chtml.js" ]; then
    echo "[book] installing MathJax from npm (book/package-lock.json)" >&2
    (cd book && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
fi
rm -rf book/_static/mathjax && mkdir -p book/_static/mathjax/output/chtml/fonts book/_static/mathjax/input/tex
cp "$mathjax/tex-chtml.js" book/_static/mathjax/
cp -r "$mathjax/output/chtml/fonts/woff-v2" book/_static/mathjax/output/chtml/fonts/
cp -r "$mathjax/input/tex/extensions" book/_static/mathjax/input/tex/
.venv/bin/python -m sphinx -b html -E -c book -q . "$out" -d "$out/.doctrees" >&2
echo "$out"
