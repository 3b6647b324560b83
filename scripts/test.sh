#!/usr/bin/env bash
# Set up (first time only) and run the whole test suite: the library's unit
# tests; every notebook executed on a fresh kernel and compared with its stored
# outputs (nbval); and the browser tests, which run every notebook in JupyterLab
# and the classroom app in Voila, in Debian's Chromium (installed here when
# missing; screenshots in test-artifacts/screenshots/). A test that hangs fails
# after 300 s. Two pytest workers share the tests, a whole test module, or a notebook
# with its worked solution, to each (conftest.py; a notebook's cells stay in order on
# one kernel); pass -n 0 to run everything in this process. Extra arguments go to pytest;
# a test file or folder among them runs instead of the whole suite
# (bash scripts/test.sh -n 0 tests/test_cli.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_chromium.sh
export MPLBACKEND=Agg PYTHONHASHSEED=0
# Runs finished in this session are kept for the other kernels that ask for the same run
# (fedasync_lib/teaching/run_cache.py); a fresh folder each session.
export FEDASYNC_RUN_CACHE="$PWD/test-artifacts/run-cache"
rm -rf "$FEDASYNC_RUN_CACHE"
paths=(tests notebooks)
for arg in "$@"; do
    case "$arg" in
        -*) ;;
        *) if [ -e "${arg%%::*}" ]; then paths=(); fi ;;
    esac
done
exec .venv/bin/python -m pytest "${paths[@]}" --nbval \
    --nbval-sanitize-with notebooks/sanitize.cfg --timeout=300 -p no:cacheprovider \
    -n 2 --dist loadscope "$@"
