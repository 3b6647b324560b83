"""The lesson in the browser with nothing installed: the JupyterLite site (scripts/lite.sh),
its Python kernel in Pyodide, offline.

The site is built (or reused, when built from the same inputs), served on 127.0.0.1, and
opened in Chromium; every request for anything else is aborted and fails the module. In the
Pyodide kernel, notebook 3 and Exercise E1 run top to bottom with no error cell, a slider of
notebook 3's demo moves and its plot changes, and each compared output agrees with the
stored one (nbval's comparison: the text of every output of every cell not marked
``NBVAL_IGNORE_OUTPUT``; the answer cells, which keep no output in a learner's copy, against
the solution copy's). Then a correct answer pasted into E1's stub gets the checker's verdict.
"""

from __future__ import annotations

import configparser
import fcntl
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from notebook_runs import ERRORS, interact_image, wait_for_new_image

sys.path.insert(0, str(ROOT / "scripts"))
import lite_smoke  # noqa: E402  (scripts/lite_smoke.py: the static server and Chromium's flags)

NB = "window.jupyterapp.shell.currentWidget"
#: Cells whose output may differ from the stored one in the browser, and why. Pyodide's
#: numpy has no BLAS and no SIMD loops, so a sum may be added in another order; a cell is
#: listed here only with the reason its printed digits move. None is known today.
BLAS_DIFFERENCES: dict[tuple[str, str], str] = {}


def sanitizers() -> list[tuple[re.Pattern, str]]:
    """notebooks/sanitize.cfg's replacements: outputs are compared as nbval compares them."""
    config = configparser.ConfigParser()
    config.read(ROOT / "notebooks" / "sanitize.cfg")
    return [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]


SANITIZE = sanitizers()
OUTPUTS = f"""() => {{ const cells = {NB}.content.model.cells; const out = [];
    for (let i = 0; i < cells.length; i++) {{ const c = cells.get(i);
      out.push({{id: c.id, type: c.type, outputs: c.type === 'code' ? c.outputs.toJSON() : []}}); }}
    return out; }}"""


@pytest.fixture(scope="module")
def lite_site() -> Path:
    """``bash scripts/lite.sh``: builds the site, or reuses one built from the same inputs
    (one build at a time, if two test workers ask at once)."""
    lock = ROOT / "build" / ".lite-build.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = subprocess.run(["bash", "scripts/lite.sh"], cwd=ROOT, capture_output=True, text=True,
                              timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def offline_page(lite_site):
    """A Chromium page that can reach the site on 127.0.0.1 and nothing else; fails the
    module if the page (or its kernel's web worker) asked for anything else."""
    executable = lite_smoke.chromium.find()
    if executable is None:
        pytest.fail(lite_smoke.chromium.how_to_get_one())
    from playwright.sync_api import sync_playwright

    site = lite_smoke.serve(lite_site)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=lite_smoke.CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        off_site, _ = lite_smoke.offline(context, site)
        try:
            yield context, site
        finally:
            context.close()
            browser.close()
            site.shutdown()
    assert not off_site, f"the page asked for {sorted(set(off_site))}"


PENDING = f"""() => {{ const cells = {NB}.content.model.cells;
    for (let i = 0; i < cells.length; i++) {{ const c = cells.get(i);
      if (c.type === 'code' && c.executionCount === null && c.sharedModel.source.trim()) return i; }}
    return -1; }}"""


def run_all(context, site, name: str, screenshots: Path):
    """Open ``name`` in the site's JupyterLab, run it top to bottom in the Pyodide kernel, and
    fail on an error output. An unwritten stub's NotImplementedError (a ``raises-exception``
    cell) is expected; JupyterLite cancels the cells after any error, that tag or not (its
    Run all, jupyterlite PR #1671), so the run goes on from the next cell with "Run
    Selected Cell and All Below", as docs/lite.md tells learners to."""
    page = context.new_page()
    opened = time.monotonic()
    page.goto(f"{site.url}/lab/index.html?path={name}", wait_until="domcontentloaded")
    page.wait_for_function(lite_smoke.APP_READY, timeout=120_000, polling=200)
    page.wait_for_function(f"() => {{ const w = {NB}; return !!(w && w.content && w.content.model"
                           f" && w.context && w.context.path === '{name}'); }}", timeout=120_000)
    page.wait_for_function(lite_smoke.KERNEL_IDLE, timeout=180_000, polling=200)
    command, started = "notebook:run-all-cells", time.monotonic()
    print(f"{name} in Pyodide: kernel ready {started - opened:.1f} s after the page opened")
    for _ in range(20):  # at most one restart per stub
        page.evaluate(f"window.jupyterapp.commands.execute('{command}')")
        page.wait_for_timeout(1000)
        page.wait_for_function(lite_smoke.KERNEL_IDLE, timeout=280_000, polling=500)
        errors = page.evaluate(ERRORS)
        # (Pyodide's kernel names the class as "<class 'NotImplementedError'>")
        unexpected = [e for e in errors if not (e["expected"] and "NotImplementedError" in e["ename"])]
        if unexpected:
            page.screenshot(path=str(screenshots / f"lite__{name}.png"))
        assert not unexpected, f"cells show errors in the browser: {unexpected}"
        pending = page.evaluate(PENDING)
        if pending < 0:
            print(f"{name} in Pyodide: every cell ran in {time.monotonic() - started:.1f} s")
            return page
        page.evaluate(f"{NB}.content.activeCellIndex = {pending}")
        command = "notebook:run-all-below"
    pytest.fail(f"{name}: cells still pending after 20 rounds")


#: Printed once by matplotlib in a browser whose storage has no font cache yet: not an output.
FONT_CACHE = "Matplotlib is building the font cache; this may take a moment.\n"


def text_of(outputs) -> str:
    """The text nbval compares: streams and text/plain, sanitized; images left out."""
    parts = []
    for o in outputs:
        if o.get("output_type") == "stream":
            parts.append(o["text"] if isinstance(o["text"], str) else "".join(o["text"]))
        elif "text/plain" in o.get("data", {}):
            value = o["data"]["text/plain"]
            parts.append(value if isinstance(value, str) else "".join(value))
    text = "".join(parts).replace(FONT_CACHE, "")
    for pattern, replace in SANITIZE:
        text = pattern.sub(replace, text)
    return text.strip()


def compared_outputs(name: str) -> dict[str, str]:
    """Per cell id, the stored text output nbval compares; an answer cell's from the solution copy."""
    learner = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    solution_path = ROOT / "notebooks" / "solutions" / name
    solution = ({c.id: c for c in nbformat.read(solution_path, as_version=4).cells}
                if solution_path.exists() else {})
    stored = {}
    for cell in learner.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or "NBVAL_IGNORE_OUTPUT" in cell.source:
            continue
        if "answer" in tags and cell.id in solution:
            cell = solution[cell.id]
        elif "nbval-ignore-output" in tags or "raises-exception" in tags:
            continue
        stored[cell.id] = text_of(cell.outputs)
    return stored


def compare_with_stored(page, name: str) -> None:
    ran = {c["id"]: text_of(c["outputs"]) for c in page.evaluate(OUTPUTS)}
    differing = {}
    for cell_id, want in compared_outputs(name).items():
        got = ran.get(cell_id)
        if got != want:
            differing[(name, cell_id)] = (want, got)
    listed = {k for k in BLAS_DIFFERENCES if k[0] == name}
    unexplained = {k: v for k, v in differing.items() if k not in listed}
    report = "\n".join(f"cell {k[1]}:\n  stored : {v[0]!r}\n  browser: {v[1]!r}"
                       for k, v in unexplained.items())
    assert not unexplained, f"{name}: outputs differ from the stored ones in the browser:\n{report}"
    assert listed <= set(differing), (f"{name}: listed in BLAS_DIFFERENCES but now equal: "
                                      f"{sorted(listed - set(differing))}: take them off the list")


def drag(page, handle, dx: float) -> float:
    """Drag a slider's ``handle`` ``dx`` pixels with the mouse, as a learner does (the
    keyboard does not move a slider in this JupyterLite: docs/lite.md); the release time."""
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=5)
    page.mouse.up()
    return time.monotonic()


def test_notebook_3_runs_in_pyodide_agrees_and_its_slider_answers(offline_page, screenshots):
    context, site = offline_page
    name = "03_staleness_weighting.ipynb"
    page = run_all(context, site, name, screenshots)
    compare_with_stored(page, name)
    # Drag a slider of demo 3.2, which re-runs a simulation, with the mouse, as a learner
    # does. (The keyboard does not move a slider in this JupyterLite: docs/lite.md.)
    demo = page.locator(".widget-interact").nth(1)
    demo.scroll_into_view_if_needed()
    before = interact_image(page, demo)
    handle = demo.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    released = drag(page, handle, 40)
    wait_for_new_image(page, demo, before, "slider dragged", screenshots / "lite__03_demo.png")
    print(f"{name} in Pyodide: the demo's plot changed {time.monotonic() - released:.1f} s after "
          "the slider was released (polled every 0.3 s)")
    errors = demo.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, f"the demo shows an error: {errors.first.inner_text()[:500]}"
    print(f"{name} in Pyodide: slider dragged to {demo.inner_text().split()[:4]}; the plot re-rendered")
    page.screenshot(path=str(screenshots / "lite__03_staleness_weighting.png"))
    page.close()


def test_exercise_1_runs_in_pyodide_and_its_checker_judges_a_pasted_answer(offline_page, screenshots):
    context, site = offline_page
    name = "exercise_1_bounded_staleness.ipynb"
    page = run_all(context, site, name, screenshots)
    compare_with_stored(page, name)
    # A learner's correct answer: the solution copy's code in the stub cell, then the checker.
    solution = {c.id: c for c in nbformat.read(ROOT / "notebooks" / "solutions" / name, as_version=4).cells}
    learner = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    stub = next(i for i, c in enumerate(learner.cells) if "raise NotImplementedError" in c.source)
    checker = next(i for i, c in enumerate(learner.cells) if "check_exercise_1(" in c.source)
    answer = solution[learner.cells[stub].id].source
    for index, source in ((stub, answer), (checker, None)):
        page.evaluate(f"""([i, code]) => {{ const w = {NB}; w.content.activeCellIndex = i;
                          if (code !== null) w.content.activeCell.model.sharedModel.setSource(code); }}""",
                      [index, source])
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")
        page.wait_for_function(f"""(i) => {{ const w = {NB}; const c = w.content.model.cells.get(i);
            return w.sessionContext.session.kernel.status === 'idle' && c.executionCount !== null
                   && c.outputs.length > 0 || (i === {stub} && c.executionCount !== null
                   && w.sessionContext.session.kernel.status === 'idle'); }}""",
                               arg=index, timeout=180_000, polling=300)
    verdict = text_of(page.evaluate(OUTPUTS)[checker]["outputs"])
    page.screenshot(path=str(screenshots / "lite__exercise_1_checked.png"))
    page.close()
    assert re.search(r"Exercise E1: all \d+ checks passed", verdict), verdict


def test_the_classroom_app_runs_in_the_browser_with_its_code_hidden(offline_page, screenshots):
    """classroom.html opens the classroom notebook as an app (JupyterLite's REPL): its text,
    widgets and plot, no code and no editor; a slider dragged re-runs it and re-plots."""
    context, site = offline_page
    page = context.new_page()
    opened = time.monotonic()
    page.goto(f"{site.url}/classroom.html", wait_until="domcontentloaded")
    app = page.locator(".fedasync-classroom")
    app.locator("img").first.wait_for(timeout=240_000)
    print(f"classroom app in Pyodide: first plot {time.monotonic() - opened:.1f} s after the page opened")
    text = page.inner_text("body")
    source = nbformat.read(ROOT / "notebooks" / "classroom.ipynb", as_version=4).cells
    intro = next(c.source for c in source if c.cell_type == "markdown").splitlines()[0].lstrip("# ")
    assert intro in text, "the notebook's text is not shown"
    assert "def draw(" not in text and "classroom_run" not in text, "the app shows its code"
    assert page.locator(".cm-editor:visible").count() == 0, "an editor is visible"
    assert "font cache" not in text
    before = app.locator("img").first.get_attribute("src")
    released = drag(page, app.locator(".noUi-handle").first, -40)  # concurrency
    wait_for_new_image(page, app, before, "classroom slider dragged", screenshots / "lite__classroom.png")
    print(f"classroom app in Pyodide: the plot changed {time.monotonic() - released:.1f} s after "
          "the slider was released")
    errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr'], .jp-OutputArea-output.error")
    assert errors.count() == 0, errors.first.inner_text()[:500]
    page.screenshot(path=str(screenshots / "lite__classroom.png"))
    page.close()
