"""The lesson as a learner sees it: lesson notebooks 1 to 4 run in JupyterLab in
Chromium, a slider moved in each interactive demo; the classroom app in Voila; and the
README's lesson command. The other notebooks have their own modules
(test_browser_bonus.py, test_browser_exercises.py).

A test fails when a cell shows an error, or when moving a demo's control does
not re-render its plot. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import pytest

from conftest import ROOT
from notebook_runs import LESSONS, run_notebook_and_move_its_demo, wait_for_new_image


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.name)
def test_notebook_runs_and_its_demo_responds(notebook, browser, jupyterlab, screenshots):
    run_notebook_and_move_its_demo(notebook, browser, jupyterlab, screenshots)


def test_classroom_app_in_voila(browser, voila, screenshots):
    shot = screenshots / "classroom_voila.png"
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    elsewhere = []  # requests for anything but the Voila server: refused, and a failure
    page.route(lambda url: not url.startswith(voila.url),
               lambda route: (elsewhere.append(route.request.url), route.abort()))
    try:
        # Voila streams the page while it runs the notebook; "load" fires only at the end,
        # so wait for the first bytes, then for the app (slow on an oversubscribed CPU).
        # A page still without the app after 120 s is reloaded once, as a learner would;
        # the first attempt's page text goes to the test's output.
        app = page.locator(".fedasync-classroom")
        for attempt in (1, 2):
            page.goto(voila.url + "/", timeout=120_000, wait_until="commit")
            try:
                app.wait_for(timeout=120_000 * attempt)
                break
            except Exception:  # noqa: BLE001  # Playwright's TimeoutError
                shown = page.inner_text("body")[-500:]
                print(f"attempt {attempt}: no app; the page shows {shown!r}")
        else:
            pytest.fail(f"the classroom app did not appear; the page asked elsewhere for "
                        f"{elsewhere}; it shows: {shown!r}; Voila's "
                        f"log ends: {voila.log.read_text()[-3000:]}", pytrace=False)
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
        assert not elsewhere, f"the page asked for something off its server: {elsewhere}"
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
