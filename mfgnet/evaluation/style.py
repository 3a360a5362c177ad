"""One look for every mfgnet figure: resolution, fonts, panel size.

Imports matplotlib only when a figure is made (no torch at all), so that modules which draw
figures stay cheap to import.
"""

from __future__ import annotations

import functools
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # figures go to files; never open a window
    import matplotlib.pyplot as plt

    return plt


DPI = 150
"""Resolution of every saved figure (dots per inch)."""

STYLE = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
         "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.titlesize": 10}
"""Font sizes shared by every mfgnet figure, so that figures set side by side in a paper match."""

PANEL = (3.6, 2.9)
"""Width and height (inches) of one panel; a figure of r × c panels is c·3.6 × r·2.9 inches."""


def styled(make_figure):
    """Decorator: build the figure under :data:`STYLE`, so that every label gets its fonts."""

    @functools.wraps(make_figure)
    def wrapper(*args, **kwargs):
        with _pyplot().rc_context(STYLE):
            return make_figure(*args, **kwargs)

    return wrapper


def save(fig, path: str | Path) -> Path:
    """Save ``fig`` to ``path`` at :data:`DPI` and close it."""
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def panels(rows: int, cols: int, **kwargs):
    """``plt.subplots`` with mfgnet's fonts and panel size; ``axes`` is always 2D."""
    plt = _pyplot()
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, cols, figsize=(PANEL[0] * cols, PANEL[1] * rows), squeeze=False,
                                 layout="constrained", **kwargs)
    return fig, axes
