#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (never a browser downloaded by
# Playwright). Install it when it is missing and this machine can: Debian's
# apt-get, as root. Otherwise say so; the browser tests then fail loudly.
set -uo pipefail
chromium=${FEDASYNC_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[setup] installing Debian's chromium for the browser tests"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
        exit 0
    fi
fi
echo "[setup] WARNING: Chromium is missing at $chromium and could not be installed here" \
     "(needs Debian's apt-get as root: apt-get install -y chromium). The browser tests will FAIL." >&2
