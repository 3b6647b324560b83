"""Where the browser tests find a Chromium, on any desktop.

    python tests/browser/chromium.py     # prints the path, or how to get one (exit 1)

In order: ``FEDASYNC_CHROMIUM``; Debian's ``/usr/bin/chromium``; a Chromium
that Playwright has installed (``python -m playwright install chromium``
puts it in ``ms-playwright/`` under the user's cache folder); the usual
Chrome and Chromium apps on macOS; ``chromium`` or ``google-chrome`` on the
PATH. The browser tests fail with one line that says how to get one on this
system when none is found; they are never skipped. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import List, Mapping, Optional

DEBIAN = "/usr/bin/chromium"
MACOS_APPS = [
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
]
# Inside one ms-playwright/chromium-NNNN folder, per system.
PLAYWRIGHT_BINARIES = {
    "linux": ["chrome-linux/chrome", "chrome-linux64/chrome"],
    "darwin": ["chrome-mac/Chromium.app/Contents/MacOS/Chromium",
               "chrome-mac-arm64/Chromium.app/Contents/MacOS/Chromium"],
    "win32": ["chrome-win/chrome.exe", "chrome-win64/chrome.exe"],
}


def playwright_folder(platform: str, env: Mapping[str, str], home: Path) -> Path:
    """Where Playwright keeps its browsers on this system."""
    if env.get("PLAYWRIGHT_BROWSERS_PATH"):
        return Path(env["PLAYWRIGHT_BROWSERS_PATH"])
    if platform == "darwin":
        return home / "Library" / "Caches" / "ms-playwright"
    if platform == "win32":
        return Path(env.get("LOCALAPPDATA", home / "AppData" / "Local")) / "ms-playwright"
    return Path(env.get("XDG_CACHE_HOME", home / ".cache")) / "ms-playwright"


def candidates(platform: str = sys.platform, env: Optional[Mapping[str, str]] = None,
               home: Optional[Path] = None) -> List[Path]:
    """Every place to look, in order."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    found: List[Path] = []
    if env.get("FEDASYNC_CHROMIUM"):
        found.append(Path(env["FEDASYNC_CHROMIUM"]))
    found.append(Path(DEBIAN))
    folder = playwright_folder(platform, env, home)
    key = "linux" if platform.startswith("linux") else platform
    for build in sorted(folder.glob("chromium-*"), reverse=True):  # the newest first
        found += [build / binary for binary in PLAYWRIGHT_BINARIES.get(key, [])]
    if platform == "darwin":
        found += [Path(app) for app in MACOS_APPS]
    for name in ("chromium", "chromium-browser", "google-chrome"):
        on_path = shutil.which(name, path=env.get("PATH"))
        if on_path:
            found.append(Path(on_path))
    return found


def find(platform: str = sys.platform, env: Optional[Mapping[str, str]] = None,
         home: Optional[Path] = None) -> Optional[Path]:
    """The first candidate that is an executable file, or None."""
    env = os.environ if env is None else env
    if env.get("FEDASYNC_CHROMIUM") and not _executable(Path(env["FEDASYNC_CHROMIUM"])):
        return None  # a browser named explicitly must be used, not silently replaced
    return next((p for p in candidates(platform, env, home) if _executable(p)), None)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def how_to_get_one(platform: str = sys.platform, env: Optional[Mapping[str, str]] = None) -> str:
    """One line: no Chromium was found, and how to get one on this system."""
    env = os.environ if env is None else env
    if env.get("FEDASYNC_CHROMIUM"):
        return (f"FEDASYNC_CHROMIUM={env['FEDASYNC_CHROMIUM']} is not an executable file: "
                "point it at a Chromium or Chrome binary.")
    if platform == "darwin":
        how = "install Chromium (`brew install --cask chromium`) or Google Chrome"
    elif platform == "win32":
        how = "run `python -m playwright install chromium`, or set FEDASYNC_CHROMIUM to chrome.exe"
    elif shutil.which("apt-get", path=env.get("PATH")):
        how = "run `sudo apt-get update && sudo apt-get install -y chromium`"
    else:
        how = ("install your distribution's chromium package, or run "
               "`python -m playwright install chromium`")
    return (f"no Chromium found for the browser tests: {how} "
            "(or set FEDASYNC_CHROMIUM to a Chromium binary).")


if __name__ == "__main__":
    path = find()
    print(path if path else how_to_get_one())
    sys.exit(0 if path else 1)
