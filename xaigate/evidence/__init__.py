"""Evidence for the sign-off report: PNG figures of a judged case (never part of its value)."""

from xaigate.evidence.figures import Figure, case_figures, class_grid, drift_figures
from xaigate.evidence.plots import confusion_matrix, confusion_plot, curve_plot
from xaigate.evidence.render import diverging_colours, is_png, overlay, png_bytes, tile_grid

__all__ = [
    "Figure",
    "case_figures",
    "class_grid",
    "confusion_matrix",
    "confusion_plot",
    "curve_plot",
    "diverging_colours",
    "drift_figures",
    "is_png",
    "overlay",
    "png_bytes",
    "tile_grid",
]
