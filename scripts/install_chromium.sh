#!/usr/bin/env bash
# The browser tests need a Chromium. tests/browser/chromium.py looks for one
# (FEDASYNC_CHROMIUM, Debian's /usr/bin/chromium, one Playwright installed, the
# usual macOS apps, the PATH). When there is none and this machine can, install
# Debian's package (apt-get, as root). Otherwise say in one line how to get one;
# the browser tests then fail loudly, never skip.
set -uo pipefail
cd "$(dirname "$0")/.."
found=$(.venv/bin/python tests/browser/chromium.py) && exit 0
if [ -z "${FEDASYNC_CHROMIUM:-}" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[setup] installing Debian's chromium for the browser tests"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
        exit 0
    fi
fi
echo "[setup] WARNING: $found The browser tests will FAIL." >&2
