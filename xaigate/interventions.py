"""Interventions on probe images: swap a region for another image's, and watch the prediction.

They need no explainer, so they cannot be fooled by one: if the heatmap says "border" and
swapping the border flips predictions, the model really looks there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xaigate.probes import Probe
from xaigate.stats import derived_seed


def donors(probes: Sequence[Probe], pool: Sequence[Probe], seed: int) -> list[Probe]:
    """For each probe, a deterministic donor from `pool` of another class."""
    chosen = []
    for probe in probes:
        others = [donor for donor in pool if donor.label != probe.label]
        if not others:
            raise ValueError(f"no probe of a class other than {probe.label!r} to swap from")
        chosen.append(others[derived_seed(seed, "donor", probe.id) % len(others)])
    return chosen


def paste_area(image: np.ndarray, donor: np.ndarray, area: np.ndarray) -> np.ndarray:
    """`image` with the pixels of `area` taken from `donor` (same place)."""
    out = image.copy()
    out[area] = donor[area]
    return out


def _centre_and_radius(mask: np.ndarray) -> tuple[np.ndarray, float]:
    rows, cols = np.nonzero(mask)
    return np.array([rows.mean(), cols.mean()]), float(np.sqrt(rows.size / np.pi))


def transplant(
    image: np.ndarray,
    mask: np.ndarray,
    face: np.ndarray,
    donor: np.ndarray,
    donor_mask: np.ndarray,
    donor_face: np.ndarray,
) -> np.ndarray:
    """`image` with its own region erased (filled with the median skin colour) and the donor's
    region (its bounding box) pasted where it sits on the donor's face, relative to the face's
    centre and scaled to this face's size.

    Faces are jittered in place and size, and features like raised brows are told by where they
    sit on the face: pasting at the image's own region's place would carry the shape but lose
    the position.
    """
    out = image.copy()
    rows, cols = np.nonzero(donor_mask)
    if rows.size == 0 or not mask.any() or not face.any() or not donor_face.any():
        return out
    out[mask] = np.median(image[face & ~mask], axis=0)
    patch = donor[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    centre, radius = _centre_and_radius(face)
    donor_centre, donor_radius = _centre_and_radius(donor_face)
    patch_centre = np.array([rows.min() + rows.max(), cols.min() + cols.max()]) / 2
    target = centre + (patch_centre - donor_centre) * radius / donor_radius
    height, width = image.shape[:2]
    top = min(max(int(round(target[0] - (patch.shape[0] - 1) / 2)), 0), height - patch.shape[0])
    left = min(max(int(round(target[1] - (patch.shape[1] - 1) / 2)), 0), width - patch.shape[1])
    out[top : top + patch.shape[0], left : left + patch.shape[1]] = patch
    return out
