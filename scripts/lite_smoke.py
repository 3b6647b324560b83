"""A smoke test of the JupyterLite site (scripts/lite.sh builds it in build/lite), offline.

    .venv/bin/python scripts/lite_smoke.py [--site build/lite] [--warm] [--screenshot PNG]
                                           [--require-fedasync]

Serves the site on 127.0.0.1 (a small threaded static server, as ``python -m http.server``
would), opens it in headless Chromium through Playwright (the browser tests' Chromium:
FEDASYNC_CHROMIUM, else Debian's /usr/bin/chromium; never ``playwright install``), and
aborts every request that is not for 127.0.0.1, recording it, also those of the kernel's
web worker; host names other than 127.0.0.1 do not even resolve. In a new notebook
(File > New > Notebook, Python (Pyodide)) it runs

    import numpy, matplotlib, ipywidgets, sklearn; from sklearn.datasets import load_digits; print(load_digits().data.shape)
    print(<their versions>)
    import fedasync_lib; print(fedasync_lib.__version__)
    from fedasync_lib.teaching import plots; print(plots.STYLE.name, plots.STYLE.exists())

and reports the times from opening the page: the lab shown, the kernel ready (idle), each
cell done; and how many bytes the server sent. ``--warm`` then opens the page again in
the same browser profile, with the browser's cache on (Playwright turns it off while
requests are routed, so this pass records requests without routing them).

Fails (exit 1) when the page asked for anything off 127.0.0.1, or the first cell did not
print (1797, 64). The two fedasync_lib cells fail the run only with ``--require-fedasync``
(or FEDASYNC_REQUIRED below set to True); without it, they are reported.

Standard library and Playwright only; run it with the lesson's .venv (requirements.txt
pins Playwright). Not under tests/ and not part of the suite: it keeps both cores busy
for about 20 s a pass.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
import chromium  # noqa: E402  (tests/browser/chromium.py: where the browser tests find a Chromium)

# `import fedasync_lib` must work in Pyodide: the built-in models need no torch.
FEDASYNC_REQUIRED = True

# (name, code, what its output must contain or None, whether it needs fedasync_lib)
CELLS = [
    ("numpy, matplotlib, ipywidgets, sklearn",
     ("import numpy, matplotlib, ipywidgets, sklearn; from sklearn.datasets import load_digits; "
      "print(load_digits().data.shape)"),
     "(1797, 64)", False),
    ("versions",
     ("print('numpy', numpy.__version__, '| matplotlib', matplotlib.__version__, '| ipywidgets', "
      "ipywidgets.__version__, '| scikit-learn', sklearn.__version__)"),
     None, False),
    ("fedasync_lib",
     "import fedasync_lib; print(fedasync_lib.__version__)",
     None, True),  # the expected version is read from the site's lock below
    ("the package's style file",
     "from fedasync_lib.teaching import plots; print(plots.STYLE.name, plots.STYLE.exists())",
     "fedasync.mplstyle True", True),
]
# The same flags as the browser tests (tests/browser/conftest.py), and no name resolves
# but 127.0.0.1: a request that slipped past the route could not leave the machine either.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

NB = "window.jupyterapp.shell.currentWidget"
APP_READY = "() => !!(window.jupyterapp && window.jupyterapp.shell && document.querySelector('.jp-LabShell'))"
KERNEL_IDLE = f"""() => {{ const w = {NB}; const k = w && w.sessionContext && w.sessionContext.session
    && w.sessionContext.session.kernel; return !!k && k.status === 'idle'; }}"""
CELL_DONE = f"""(i) => {{ const w = {NB}; const c = w.content.model.cells.get(i);
    return c.executionCount !== null && w.sessionContext.session.kernel.status === 'idle'; }}"""
CELL_OUTPUT = f"""(i) => {{ const c = {NB}.content.model.cells.get(i); const out = [];
    for (const o of c.outputs.toJSON()) {{
      if (o.output_type === 'stream') out.push((o.name === 'stderr' ? '[stderr] ' : '') + o.text);
      else if (o.output_type === 'error') out.push('[error] ' + o.ename + ': ' + o.evalue);
      else if (o.data && o.data['text/plain']) out.push(o.data['text/plain']);
      else out.push('[' + o.output_type + ']'); }}
    return out.join('').trim(); }}"""


class Site(ThreadingHTTPServer):
    """The built site on 127.0.0.1, counting what it serves."""

    daemon_threads = True

    def __init__(self, folder: Path):
        self.lock = threading.Lock()
        self.bytes = 0
        self.requests = 0
        self.missing: list[str] = []
        super().__init__(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return self.bytes, self.requests


class Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".mjs": "text/javascript", ".js": "text/javascript", ".json": "application/json"}

    def do_GET(self):
        # The page with window.jupyterapp exposed (as the browser tests run JupyterLab with
        # --LabApp.expose_app_in_browser), so that this script can read the kernel's state;
        # the file on disk is not changed.
        if self.path.split("?")[0] == "/jupyter-lite.json":
            config = json.loads((Path(self.directory) / "jupyter-lite.json").read_text())
            data = config.setdefault("jupyter-config-data", {})
            data["exposeAppInBrowser"] = "true"
            # Every cell rendered (no windowing), as the JupyterLab browser tests set it, so
            # that a test can scroll to a demo's widget (tests/browser/conftest.py).
            overrides = data.setdefault("settingsOverrides", {})
            overrides.setdefault("@jupyterlab/notebook-extension:tracker", {})["windowingMode"] = "none"
            body = json.dumps(config).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def send_header(self, keyword, value):
        if keyword.lower() == "content-length":
            with self.server.lock:
                self.server.bytes += int(value)
        super().send_header(keyword, value)

    def log_request(self, code="-", size="-"):
        with self.server.lock:
            self.server.requests += 1
            if str(code) == "404":
                self.server.missing.append(self.path)

    def log_message(self, *args):  # quiet
        pass


def serve(folder: Path) -> Site:
    """The site in ``folder``, served on 127.0.0.1 from a background thread."""
    site = Site(folder)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    return site


def offline(context, site: Site):
    """Abort every request of ``context`` (its pages' web and service workers' too) that is
    not for ``site``, and record it. Returns the list of recorded addresses and the route
    handler (to take it off again with ``context.unroute("**/*", handler)``)."""
    host = urlsplit(site.url).netloc
    off_site: list[str] = []

    def route(r):
        if urlsplit(r.request.url).netloc == host:
            r.continue_()
        else:
            off_site.append(r.request.url)
            r.abort()

    def request(req):
        if urlsplit(req.url).netloc != host and not req.url.startswith(("data:", "blob:")):
            off_site.append(req.url)

    context.route("**/*", route)
    context.on("request", request)
    return off_site, route


def wheel_version(site_dir: Path) -> str | None:
    """The fedasync version in the site's lock (what `import fedasync_lib` should print)."""
    lock = site_dir / "static" / "pyodide" / "pyodide-lock.json"
    try:
        return json.loads(lock.read_text())["packages"]["fedasync"]["version"]
    except (OSError, KeyError, ValueError):
        return None


def log(message: str) -> None:
    print(message, flush=True)


def open_and_run(context, site: Site, label: str, timeout_s: float, screenshot: Path | None) -> dict:
    """Open the lab, start a new Python (Pyodide) notebook, run the cells; times in s from page open."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = context.new_page()
    result: dict = {"pass": label, "cells": []}
    bytes0, requests0 = site.counts()
    t0 = time.monotonic()
    page.goto(f"{site.url}/lab/index.html", wait_until="domcontentloaded", timeout=timeout_s * 1000)
    page.wait_for_function(APP_READY, timeout=timeout_s * 1000, polling=100)
    result["lab_shown_s"] = round(time.monotonic() - t0, 2)
    result["served_mb_to_lab_shown"] = round((site.counts()[0] - bytes0) / 1e6, 1)
    log(f"[{label}] lab shown after {result['lab_shown_s']} s ({result['served_mb_to_lab_shown']} MB sent)")

    # A new notebook with the Pyodide kernel, as a learner makes one from the launcher.
    page.evaluate("""() => window.jupyterapp.commands.execute('notebook:create-new',
                                                               {kernelName: 'python'})""")
    page.wait_for_function(f"() => {{ const w = {NB}; return !!(w && w.content && w.content.model); }}",
                           timeout=timeout_s * 1000, polling=100)
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_s * 1000, polling=100)
    result["kernel_ready_s"] = round(time.monotonic() - t0, 2)
    result["served_mb_to_kernel_ready"] = round((site.counts()[0] - bytes0) / 1e6, 1)
    log(f"[{label}] kernel ready (idle) after {result['kernel_ready_s']} s "
        f"({result['served_mb_to_kernel_ready']} MB sent by then)")

    for i, (name, code, expected, needs_fedasync) in enumerate(CELLS):
        if i:
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:insert-cell-below')")
        page.evaluate(f"""(code) => {{ const w = {NB}; w.content.activeCellIndex = {i};
                          w.content.activeCell.model.sharedModel.setSource(code); }}""", code)
        t_cell = time.monotonic()
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-cell'); }")
        try:
            page.wait_for_function(CELL_DONE, arg=i, timeout=timeout_s * 1000, polling=100)
            output = page.evaluate(CELL_OUTPUT, i)
        except PlaywrightTimeout:  # say so, and go on to the report
            output = f"[timeout] after {timeout_s:.0f} s"
        done = time.monotonic()
        failed = "[error]" in output or "[timeout]" in output
        cell = {"name": name, "output": output, "ok": not failed and (expected is None or expected in output),
                "needs_fedasync": needs_fedasync,
                "cell_s": round(done - t_cell, 2), "since_open_s": round(done - t0, 2)}
        if expected is not None and not cell["ok"]:
            cell["expected"] = expected
        result["cells"].append(cell)
        log(f"[{label}] cell {i + 1} ({name}): {cell['cell_s']} s, done {cell['since_open_s']} s "
            f"after page open -> {output!r}")

    if screenshot:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
        log(f"[{label}] screenshot {screenshot}")
    b, r = site.counts()
    result["served_mb"] = round((b - bytes0) / 1e6, 1)
    result["requests"] = r - requests0
    log(f"[{label}] the server sent {result['served_mb']} MB in {result['requests']} responses")
    page.close()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", default=str(ROOT / "build" / "lite"), help="the built site (default build/lite)")
    parser.add_argument("--warm", action="store_true", help="open the page a second time, browser cache warm")
    parser.add_argument("--screenshot", type=Path, help="a PNG of the notebook at the end of the first pass")
    parser.add_argument("--require-fedasync", action="store_true", default=FEDASYNC_REQUIRED,
                        help="fail when `import fedasync_lib` does not print the site's version")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for each step (default 300)")
    args = parser.parse_args(argv)

    site_dir = Path(args.site).resolve()
    if not (site_dir / "jupyter-lite.json").is_file():
        log(f"no JupyterLite site in {site_dir}: run `bash scripts/lite.sh` first")
        return 1
    version = wheel_version(site_dir)
    CELLS[2] = (*CELLS[2][:2], version, True)
    executable = chromium.find()
    if executable is None:
        log(chromium.how_to_get_one())
        return 1

    from playwright.sync_api import sync_playwright

    site = serve(site_dir)
    console_errors: list[str] = []
    results, off_site = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            # Every request not for the site is aborted and recorded, also those of the
            # kernel's web worker and of the site's service worker.
            off_site, route = offline(context, site)
            context.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            log(f"serving {site_dir} at {site.url}; Chromium {executable}")
            results.append(open_and_run(context, site, "cold", args.timeout, args.screenshot))
            if args.warm:
                # Playwright turns the browser's cache off while a route is set: without it,
                # every request is still recorded, and no host name but 127.0.0.1 resolves.
                context.unroute("**/*", route)
                results.append(open_and_run(context, site, "warm", args.timeout, None))
            context.close()
        finally:
            browser.close()
            site.shutdown()

    failures = []
    off_site = sorted(set(off_site))
    for url in off_site:
        failures.append(f"the page asked for {url} (aborted)")
    for res in results:
        for cell in res["cells"]:
            if not cell["ok"] and (args.require_fedasync or not cell["needs_fedasync"]):
                failures.append(f"[{res['pass']}] cell {cell['name']!r} printed {cell['output']!r}"
                                + (f", not {cell['expected']!r}" if "expected" in cell else ""))
    missing = sorted(set(site.missing))
    summary = {"site": str(site_dir), "results": results, "off_site_requests": off_site,
               "not_found": missing, "console_errors": [e[:300] for e in console_errors[:10]],
               "failures": failures}
    log("SUMMARY " + json.dumps(summary))
    if missing:
        log(f"note: {len(missing)} paths answered 404 (JupyterLite probes some optional files): "
            + ", ".join(missing[:10]))
    for cell in results[0]["cells"]:
        if cell["needs_fedasync"] and not cell["ok"] and not args.require_fedasync:
            log(f"note: cell {cell['name']!r} printed {cell['output']!r} "
                "(reported only; --require-fedasync makes it fail)")
    for f in failures:
        log(f"FAIL: {f}")
    log("PASS" if not failures else f"FAILED ({len(failures)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
