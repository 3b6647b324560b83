"""Sliders for the notebooks, built from :data:`fedasync_lib.lesson.SLIDERS`.

Every slider that starts a simulation re-runs only when it is released
(``continuous_update=False``), so dragging does not queue up runs.
"""

from __future__ import annotations

import ipywidgets as w

from .lesson import SLIDERS

_LAYOUT = {"width": "420px"}
_STYLE = {"description_width": "120px"}


def slider(name: str, value: float, description: str | None = None,
           continuous_update: bool = False) -> w.Widget:
    """An int or float slider for lesson parameter ``name`` with its lesson range."""
    low, high, step = SLIDERS[name]
    kind = w.IntSlider if all(isinstance(v, int) for v in (low, high, step)) else w.FloatSlider
    return kind(value=value, min=low, max=high, step=step, description=description or name,
                continuous_update=continuous_update, layout=_LAYOUT, style=_STYLE)


def dropdown(options, value, description: str) -> w.Dropdown:
    return w.Dropdown(options=list(options), value=value, description=description,
                      layout=_LAYOUT, style=_STYLE)
