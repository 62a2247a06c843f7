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


def transplant(
    image: np.ndarray, mask: np.ndarray, donor: np.ndarray, donor_mask: np.ndarray
) -> np.ndarray:
    """`image` with the donor's region (its bounding box) pasted over the image's own region,
    centred on it: the faces are jittered, so the same place would miss the region."""
    out = image.copy()
    rows, cols = np.nonzero(donor_mask)
    if rows.size == 0 or not mask.any():
        return out
    patch = donor[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    target_rows, target_cols = np.nonzero(mask)
    top = int(round(target_rows.mean() - (patch.shape[0] - 1) / 2))
    left = int(round(target_cols.mean() - (patch.shape[1] - 1) / 2))
    height, width = image.shape[:2]
    top = min(max(top, 0), height - patch.shape[0])
    left = min(max(left, 0), width - patch.shape[1])
    out[top : top + patch.shape[0], left : left + patch.shape[1]] = patch
    return out
