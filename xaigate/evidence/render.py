"""Heatmaps as pictures: a diverging colour map, overlays on the probe image, grids, PNG bytes.

Pillow only (already a dependency): the figures are small, and a fixed encoder keeps the bytes
of a figure the same for the same map.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NEGATIVE = np.array([33, 102, 172], dtype=np.float64)  # blue: evidence against the class
POSITIVE = np.array([178, 24, 43], dtype=np.float64)  # red: evidence for it
WHITE = np.array([255, 255, 255], dtype=np.float64)


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """RGB uint8 from an (H, W, 3) float image in [0, 1], or a grayscale one."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return image[..., :3]


def _signed_scale(attribution: np.ndarray) -> np.ndarray:
    """The map in [-1, 1], scaled by its largest magnitude (an all-zero map stays zero)."""
    attribution = np.nan_to_num(np.asarray(attribution, dtype=np.float64))
    peak = float(np.abs(attribution).max()) if attribution.size else 0.0
    return attribution / peak if peak > 0 else np.zeros_like(attribution)


def diverging_colours(attribution: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: blue for negative, white for zero, red for positive attribution."""
    scaled = _signed_scale(attribution)[..., None]
    toward = np.where(scaled >= 0, POSITIVE, NEGATIVE)
    colours = WHITE + (toward - WHITE) * np.abs(scaled)
    return np.clip(np.rint(colours), 0, 255).astype(np.uint8)


def overlay(
    image: np.ndarray, attribution: np.ndarray, *, alpha: float = 0.7, scale: int = 4
) -> np.ndarray:
    """The heatmap over the image: each pixel takes the map's colour in proportion to its
    magnitude, so the image shows through where the map says nothing. Upscaled by `scale`
    (nearest neighbour: a 64 px probe is too small to read, and blurring would invent detail)."""
    base = _as_uint8(image).astype(np.float64)
    weight = alpha * np.abs(_signed_scale(attribution))[..., None]
    mixed = base * (1.0 - weight) + diverging_colours(attribution).astype(np.float64) * weight
    picture = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return np.kron(picture, np.ones((scale, scale, 1), dtype=np.uint8)) if scale > 1 else picture


def tile_grid(tiles: Sequence[np.ndarray], columns: int, *, gap: int = 4) -> np.ndarray:
    """Equal-sized RGB tiles in rows of `columns`, on a white ground."""
    if not tiles:
        raise ValueError("no tiles to lay out")
    height, width = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    grid = np.full(
        (rows * height + (rows + 1) * gap, columns * width + (columns + 1) * gap, 3),
        255,
        dtype=np.uint8,
    )
    for index, tile in enumerate(tiles):
        if tile.shape[:2] != (height, width):
            raise ValueError(f"tile {index} is {tile.shape[:2]}, expected {(height, width)}")
        top = gap + (index // columns) * (height + gap)
        left = gap + (index % columns) * (width + gap)
        grid[top : top + height, left : left + width] = _as_uint8(tile)
    return grid


def png_bytes(picture: np.ndarray) -> bytes:
    """An RGB uint8 array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(_as_uint8(picture)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def is_png(data: bytes) -> bool:
    """PNG signature and a full decode: what the tests ask of every attachment."""
    if not data.startswith(PNG_SIGNATURE):
        return False
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
    except OSError:
        return False
    return True
