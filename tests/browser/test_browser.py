"""The lesson as a learner sees it: every notebook run in JupyterLab in Chromium,
a slider moved in each interactive demo, and the classroom app in Voila.

A test fails when a cell shows an error, or when moving a demo's control does
not re-render its plot. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import ROOT

# The learners' copies, as learners open them. A solution copy differs from its learner's
# copy only in its stub cells, and nbval runs both; so the browser runs each notebook once.
NOTEBOOKS = (sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
             + sorted((ROOT / "notebooks").glob("exercise_*.ipynb")))

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


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_notebook_runs_and_its_demo_responds(notebook, browser, jupyterlab, screenshots):
    name = str(notebook.relative_to(ROOT / "notebooks")).replace("/", "__").replace(".ipynb", "")
    shot = screenshots / f"{name}.png"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        url = (f"{jupyterlab.url}/lab/tree/{notebook.relative_to(ROOT).as_posix()}"
               f"?token={jupyterlab.token}&reset")  # a fresh workspace: no tabs left from before
        page.goto(url)
        page.wait_for_function(KERNEL_IDLE, timeout=120_000)
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


def test_classroom_app_in_voila(browser, voila, screenshots):
    shot = screenshots / "classroom_voila.png"
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        # Voila streams the page while it runs the notebook; "load" fires only at the end,
        # so wait for the first bytes, then for the app (slow on an oversubscribed CPU).
        page.goto(voila.url + "/", timeout=120_000, wait_until="commit")
        app = page.locator(".fedasync-classroom")
        app.wait_for(timeout=240_000)
        app.locator("img").first.wait_for(timeout=120_000)
        text = page.inner_text("body")
        assert "def draw(" not in text and "classroom_run" not in text, "the app shows its code"
        assert page.locator(".CodeMirror:visible, .cm-editor:visible").count() == 0, "an editor is visible"
        for action in ("slider", "dropdown"):
            before = app.locator("img").first.get_attribute("src")
            if action == "slider":
                app.locator(".noUi-handle").first.focus()  # concurrency
                page.keyboard.press("ArrowLeft")
                page.keyboard.press("ArrowLeft")
            else:
                app.locator("select").first.select_option("FedBuff")  # algorithm
            wait_for_new_image(page, app, before, f"classroom {action} changed", shot)
        errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr'], .jp-OutputArea-output.error")
        assert errors.count() == 0, errors.first.inner_text()[:500]
        page.wait_for_timeout(500)
        page.screenshot(path=str(shot))
        print(f"screenshot: {shot.relative_to(ROOT)}")
    finally:
        page.close()


def test_the_readme_lesson_command_lands_on_the_first_notebook(browser, tmp_path, screenshots):
    """`bash scripts/lesson.sh` (the README's first command) opens JupyterLab on notebook 1."""
    from conftest import Server, free_port

    port, token = free_port(), "lesson-command-test"
    server = Server("lesson.sh", ["bash", str(ROOT / "scripts" / "lesson.sh"), "--no-browser",
                                  f"--port={port}", "--ip=127.0.0.1",
                                  f"--IdentityProvider.token={token}"],
                    f"http://127.0.0.1:{port}", tmp_path / "lesson.log")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        server.wait_ready(f"{server.url}/api/status?token={token}", timeout=300)
        page.goto(f"{server.url}/?token={token}")
        page.wait_for_function("() => !!window.jupyterapp || document.title.includes('01_why')",
                               timeout=120_000)
        assert "/lab/tree/notebooks/01_why_asynchronous.ipynb" in page.url
        page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
        page.screenshot(path=str(screenshots / "lesson_command_landing.png"))
    finally:
        page.close()
        server.stop()
