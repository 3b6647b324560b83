"""Sphinx configuration of the lesson as a book: `bash scripts/book.sh` builds it.

The source folder is the repository itself (so that the notebooks, the docs and the
figures keep their own paths and links), and only the files listed in
``include_patterns`` are read. The notebooks are shown with their stored outputs, never
run (``nb_execution_mode = "off"``): they are the outputs nbval checks on every test run.
Nothing is loaded from a CDN: MathJax is served from the book's own ``_static`` folder
(copied there from npm by the script), the widget manager is left out (a stored widget
shows its text form; the live demos need a kernel), and the theme is Sphinx's own.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fedasync_lib import __version__  # noqa: E402

project = "fedasync: asynchronous federated learning, a lesson"
release = version = __version__
extensions = ["myst_nb"]
root_doc = "book/index"
include_patterns = ["book/index.md", "notebooks/*.ipynb", "docs/*.md",
                    "notebooks/TEACHING.md"]
exclude_patterns = ["notebooks/solutions/**", "notebooks/classroom.ipynb", "**/.ipynb_checkpoints/**"]
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no widget manager from a CDN
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "myst.xref_missing", "misc.highlighting_failure"]
html_theme = "alabaster"
html_static_path = ["_static"]
mathjax_path = "mathjax/tex-chtml.js"  # under _static: scripts/book.sh puts it there
html_title = "fedasync"
html_show_sourcelink = False
html_theme_options = {"page_width": "1100px", "sidebar_width": "260px"}
html_extra_path = ["extra"]  # index.html at the top of the site, pointing at book/index.html

# "Run it in your browser": a link on each lesson page that the JupyterLite site carries
# (scripts/lite.sh; docs/lite.md) into that site. The two sites are published side by side
# (build/book and build/lite), so the link is relative; FEDASYNC_LITE_URL sets another base.
templates_path = ["_templates"]
LITE_URL = __import__("os").environ.get("FEDASYNC_LITE_URL", "")
#: The notebooks in the JupyterLite site: the ones that need neither Dask nor torch.
LITE_NOTEBOOKS = ("01_", "02_", "03_", "04_", "05_", "exercise_", "design_challenge")


def lite_link(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    folder, _, name = pagename.rpartition("/")
    if folder != "notebooks" or not name.startswith(LITE_NOTEBOOKS):
        return
    base = LITE_URL or "../" * (pagename.count("/") + 1) + "lite/"
    context["lite_url"] = f"{base.rstrip('/')}/lab/index.html?path={name}.ipynb"


def setup(app):
    app.connect("html-page-context", lite_link)
