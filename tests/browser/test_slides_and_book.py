"""The slides (scripts/slides.sh) and the book (scripts/book.sh), built as the README says
and opened from their folders in Chromium with no network: every script, stylesheet, font
and image must come from the built folder. A test fails on a request that leaves it, on
one that fails (a missing file), and on an image that does not load."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

TOPICS = ["FedAvg, a recap", "The update rule", "Staleness comes from", "Weighting and bounds",
          "The theorem in one picture", "Take-aways"]


def build(script: str, out: Path) -> Path:
    done = subprocess.run(["bash", str(ROOT / "scripts" / script), str(out)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return Path(done.stdout.strip().splitlines()[-1])


class Watched:
    """A page whose every request is checked: outside the folder, refused and recorded;
    failed (a missing file), recorded."""

    def __init__(self, browser, folder: Path):
        self.page = browser.new_page(viewport={"width": 1280, "height": 800})
        self.outside, self.failed = [], []
        prefix = folder.as_uri()
        self.page.route(lambda url: not url.startswith(prefix),
                        lambda route: (self.outside.append(route.request.url), route.abort()))
        self.page.on("requestfailed", lambda r: r.url.startswith(prefix) and self.failed.append(r.url))

    def images_loaded(self) -> list:
        """The images that did not load (src shown)."""
        return self.page.evaluate("""() => [...document.images]
            .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))""")

    def check(self) -> None:
        assert not self.outside, f"requests off the built folder: {self.outside}"
        assert not self.failed, f"requests that failed (missing files?): {self.failed}"


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    return build("slides.sh", tmp_path_factory.mktemp("slides") / "site")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    return build("book.sh", tmp_path_factory.mktemp("book") / "site")


def test_the_slides_run_offline_with_every_topic_and_figure(browser, slides, screenshots):
    assert slides.name == "index.slides.html" and slides.exists()
    w = Watched(browser, slides.parent)
    try:
        w.page.goto(slides.as_uri())
        # reveal.js marks its root "ready" once it has laid the deck out (the deck's
        # require.js call keeps the Reveal object to itself).
        w.page.wait_for_selector(".reveal.ready", timeout=60_000)
        slides_ = w.page.locator(".reveal .slides > section")
        total = slides_.count()
        titles = w.page.evaluate("[...document.querySelectorAll('.reveal section h2')].map(h => h.textContent)")
        for topic in TOPICS:
            assert any(t.startswith(topic) for t in titles), (topic, titles)
        assert total >= len(TOPICS) + 1
        w.page.screenshot(path=str(screenshots / "slides_title.png"))
        w.page.locator(".reveal").click()
        for _ in range(total - 1):
            w.page.keyboard.press("ArrowRight")
            w.page.wait_for_timeout(100)
        assert "present" in (slides_.nth(total - 1).get_attribute("class") or ""), "the keys do not move on"
        figures = w.page.evaluate("document.querySelectorAll('.reveal img').length")
        assert figures == 5, f"{figures} figures in the deck"  # timelines, staleness, weights, stability region, MLP grid
        assert w.images_loaded() == []
        assert "def " not in w.page.inner_text(".reveal"), "the deck shows code"
        w.check()
    finally:
        w.page.close()


def test_the_book_opens_offline_with_its_math_and_figures(browser, book, screenshots):
    assert (book / "index.html").exists()
    w = Watched(browser, book)
    try:
        w.page.goto((book / "index.html").as_uri())
        w.page.wait_for_url("**/book/index.html", timeout=30_000)
        links = w.page.evaluate("[...document.querySelectorAll('.toctree-wrapper a')].map(a => a.innerText)")
        assert len(links) >= 20 and any("Exercise E1" in t or "bounded" in t.lower() for t in links), links
        w.page.screenshot(path=str(screenshots / "book_first_page.png"))
        w.page.goto((book / "notebooks" / "05_analyzing_convergence.html").as_uri())
        w.page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 5",
                                 timeout=60_000)  # MathJax, from the site, set the formulas
        assert w.page.locator("img").count() >= 3  # the learner copy: answers keep no figure
        # "Run it in your browser": into the JupyterLite site, published beside the book.
        link = w.page.locator(".lite-link a").first.get_attribute("href")
        assert link == "../../lite/lab/index.html?path=05_analyzing_convergence.ipynb", link
        w.page.wait_for_timeout(500)
        assert w.images_loaded() == []
        w.check()
    finally:
        w.page.close()
