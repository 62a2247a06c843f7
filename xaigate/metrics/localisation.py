"""Localisation metrics: does positive attribution fall inside a region?

Each takes an HxW attribution map and an HxW boolean mask of the same shape.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _check_shapes(attribution: np.ndarray, mask: np.ndarray) -> None:
    if attribution.shape != mask.shape or attribution.ndim != 2:
        raise ValueError(
            f"attribution {attribution.shape} and mask {mask.shape} must be the same 2-D shape"
        )


def area_share(mask: np.ndarray) -> float:
    """Share of the image inside `mask`: what a uniformly random map scores on relevance mass."""
    return float(np.asarray(mask, dtype=bool).mean())


def relevance_mass(attribution: np.ndarray, mask: np.ndarray) -> float:
    """Share of positive attribution inside `mask` (Arras et al. 2022, "CLEVR-XAI").

    Higher is better for a decisive region, lower for one that should not matter (border,
    background). NaN when the map has no positive attribution at all: nothing to localise.
    """
    _check_shapes(attribution, mask)
    positive = np.clip(attribution.astype(np.float64), 0.0, None)
    total = positive.sum()
    if total <= 0.0 or not np.isfinite(total):
        return float("nan")
    return float(positive[np.asarray(mask, dtype=bool)].sum() / total)


def relevance_rank_accuracy(attribution: np.ndarray, mask: np.ndarray) -> float:
    """Share of the top-|R| pixels that fall inside R (Arras et al. 2022). Higher is better.

    Pixels tied at the cut-off count by expectation: of the k places left among the n tied
    pixels, k * (tied inside R) / n go inside. A map that is flat over one superpixel (LIME)
    is judged by how much of that superpixel is the region, not by which of its pixels come
    first in raster order (a stable sort picked the superpixel's top rows, above the mouth).
    """
    _check_shapes(attribution, mask)
    inside = np.asarray(mask, dtype=bool).ravel()
    size = int(inside.sum())
    if size == 0:
        return float("nan")
    values = attribution.astype(np.float64).ravel()
    cut = np.partition(values, values.size - size)[values.size - size]  # the |R|-th largest
    above, tied = values > cut, values == cut
    places = size - int(above.sum())
    hits = inside[above].sum() + places * inside[tied].sum() / tied.sum()
    return float(hits / size)


def pointing_game(attribution: np.ndarray, mask: np.ndarray, tolerance: int = 0) -> float:
    """Whether the maximum of the map lies within `tolerance` pixels of `mask`: 1.0 or 0.0.

    Zhang et al. 2018, "Top-down neural attention by excitation backprop". Higher is better.
    A map with several maximal pixels (LIME's best superpixel) scores the share of them that
    hit, the expected hit of a peak picked at random among them. A flat map has no maximum to
    point with and scores 0.
    """
    _check_shapes(attribution, mask)
    if not np.any(attribution > attribution.min()):
        return 0.0
    region = np.asarray(mask, dtype=bool)
    if tolerance > 0:
        region = ndimage.binary_dilation(region, iterations=tolerance)
    peaks = attribution == attribution.max()
    return float(region[peaks].mean())


def border_mask(shape: tuple[int, int], width: int) -> np.ndarray:
    """Boolean HxW mask of the outer band `width` pixels wide."""
    height, breadth = shape
    if width < 0 or 2 * width >= min(height, breadth):
        raise ValueError(f"border width {width} does not fit an image of shape {shape}")
    band = np.ones(shape, dtype=bool)
    band[width : height - width, width : breadth - width] = False
    return band
