"""How the browser tests run a notebook in JupyterLab: open it, Run all, fail on an
error output, move the first control of its interactive demo and wait for the plot to
re-render, and take a screenshot. The test modules (test_browser*.py) share this, each
for a group of notebooks with its own JupyterLab, so that two pytest workers can share
them out."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import ROOT

# The learners' copies, as learners open them. A solution copy differs from its learner's
# copy only in its stub cells, and nbval runs both; so the browser runs each notebook once.
# Lesson notebooks 1 to 4 and Exercise E1 (whose unwritten stubs must not stop Run all):
# what the 90-minute class opens.
LESSONS = [p for p in sorted((ROOT / "notebooks").glob("0[1-4]_*.ipynb"))] + [
    ROOT / "notebooks" / "exercise_1_bounded_staleness.ipynb"]
# Notebooks 5 to 7, and the other exercises with the design challenge: each group in a
# module of its own, with its own JupyterLab, so that two pytest workers share them out.
# Notebook 5 last: by then nbval has put its runs in the session's run cache (conftest.FIRST).
# Notebooks 6 (Dask) and 7 (torch) run in JupyterLab only in `check_outputs.sh browser`
# (FEDASYNC_BROWSER_ALL=1), not in the test command, to keep it under 8 minutes: nbval runs
# both on every test run, and their demos are a menu and a Dask run, not a slider that
# the browser could break (docs/testing.md).
BONUS = sorted((ROOT / "notebooks").glob("0[5-9]_*.ipynb"), key=lambda p: (p.name.startswith("05_"), p.name))
if not os.environ.get("FEDASYNC_BROWSER_ALL"):
    BONUS = [p for p in BONUS if p.name.startswith("05_")]
EXERCISES = [p for p in sorted((ROOT / "notebooks").glob("exercise_*.ipynb")) if p not in LESSONS] + [
    ROOT / "notebooks" / "design_challenge.ipynb"]

NB = "window.jupyterapp.shell.currentWidget"
KERNEL_IDLE = f"""() => {{ if (!window.jupyterapp || !window.jupyterapp.shell) return false;
    const w = {NB}; const k = w && w.sessionContext && w.sessionContext.session
    && w.sessionContext.session.kernel; return !!k && k.status === 'idle'; }}"""
# Done when the kernel is idle and every code cell has run, or when a cell shows an
# unexpected error (Run all stops there).
ALL_RAN = f"""() => {{ const w = {NB}; if (w.sessionContext.session.kernel.status !== 'idle') return false;
    const cells = w.content.model.cells; let pending = false;
    for (let i = 0; i < cells.length; i++) {{ const c = cells.get(i); if (c.type !== 'code') continue;
      const tags = c.getMetadata('tags') || [];
      for (const o of c.outputs.toJSON())
        if (o.output_type === 'error' && !tags.includes('raises-exception')) return true;
      if (c.executionCount === null && c.sharedModel.source.trim()) pending = true; }}
    return !pending; }}"""
ERRORS = f"""() => {{ const cells = {NB}.content.model.cells; const out = [];
    for (let i = 0; i < cells.length; i++) {{ const c = cells.get(i); if (c.type !== 'code') continue;
      const tags = c.getMetadata('tags') || [];
      for (const o of c.outputs.toJSON()) if (o.output_type === 'error')
        out.push({{cell: i, ename: o.ename, evalue: o.evalue, expected: tags.includes('raises-exception')}}); }}
    return out; }}"""


def dismiss_notifications(page) -> None:
    for button in page.locator(".jp-Notification-Toast button:has-text('No')").all():
        button.click()


def interact_image(page, demo):
    img = demo.locator("img").first
    img.wait_for(timeout=60_000)
    return img.get_attribute("src")


def move_control(page, demo) -> str:
    """Move the demo's first slider two steps right (or change its dropdown); describe it."""
    handles = demo.locator(".noUi-handle")
    if handles.count():
        handles.first.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        return "slider moved two steps right"
    select = demo.locator("select").last
    options = select.locator("option").all_inner_texts()
    current = select.input_value()
    choice = next(o for o in options if o != current)
    select.select_option(choice)
    return f"dropdown changed from {current!r} to {choice!r}"


def wait_for_new_image(page, container, before: str, action: str, screenshot: Path,
                       timeout: float = 150.0) -> None:
    """Until the first image in ``container`` differs from ``before``; else fail, with a screenshot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(300)
        img = container.locator("img")
        if img.count() and img.first.get_attribute("src") != before:
            return
    page.screenshot(path=str(screenshot))
    pytest.fail(f"the plot did not re-render after the {action}")


def check_demo_rerenders(page, demo, screenshot: Path) -> str:
    demo.scroll_into_view_if_needed()
    before = interact_image(page, demo)
    action = move_control(page, demo)
    wait_for_new_image(page, demo, before, action, screenshot)
    errors = demo.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, f"the demo shows an error after the {action}: {errors.first.inner_text()[:500]}"
    demo.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    return action


def open_with_a_kernel(page, url: str, shot: Path) -> None:
    """Open the notebook and wait for its kernel. A page that has not asked for a kernel
    within 60 s is reloaded once, as a learner would (the reason, any dialog's text, goes to
    the test's output); a second failure fails the test, with a screenshot."""
    for attempt in (1, 2):
        page.goto(url)
        try:
            page.wait_for_function(KERNEL_IDLE, timeout=60_000 * attempt)
            return
        except Exception:  # noqa: BLE001  # Playwright's TimeoutError
            dialogs = [d.inner_text()[:300] for d in page.locator(".jp-Dialog").all()]
            page.screenshot(path=str(shot))
            print(f"attempt {attempt}: no idle kernel; dialogs: {dialogs}; screenshot {shot.name}")
    pytest.fail(f"JupyterLab started no kernel for the notebook (screenshot {shot.name})", pytrace=False)


def run_notebook_and_move_its_demo(notebook, browser, jupyterlab, screenshots):
    """Run ``notebook`` in JupyterLab, fail on an error output, and check its demo responds."""
    name = str(notebook.relative_to(ROOT / "notebooks")).replace("/", "__").replace(".ipynb", "")
    shot = screenshots / f"{name}.png"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        url = (f"{jupyterlab.url}/lab/tree/{notebook.relative_to(ROOT).as_posix()}"
               f"?token={jupyterlab.token}&reset")  # a fresh workspace: no tabs left from before
        open_with_a_kernel(page, url, shot)
        dismiss_notifications(page)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_timeout(1000)
        page.wait_for_function(ALL_RAN, timeout=240_000, polling=500)
        errors = page.evaluate(ERRORS)
        unexpected = [e for e in errors if not (e["expected"] and e["ename"] == "NotImplementedError")]
        if unexpected:
            page.screenshot(path=str(shot))
        assert not unexpected, f"cells show errors: {unexpected}"
        demos = page.locator(".widget-interact")
        if "interact(" in notebook.read_text():
            assert demos.count() >= 1, "the notebook has a demo, but no widget was rendered"
            action = check_demo_rerenders(page, demos.first, shot)
            print(f"{notebook.name}: {action}; the plot re-rendered")
        page.screenshot(path=str(shot))
        print(f"screenshot: {shot.relative_to(ROOT)}")
    finally:
        try:
            page.evaluate(f"{NB}.sessionContext.shutdown()")
        except Exception:
            pass
        page.close()
