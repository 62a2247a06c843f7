"""Interventions on probe images: swap a region for another image's, and watch the prediction.

They need no explainer, so they cannot be fooled by one: if the heatmap says "border" and
swapping the border flips predictions, the model really looks there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xaigate.probes import Probe
from xaigate.stats import derived_seed


def donors(probes: Sequence[Probe], pool: Sequence[Probe], seed: int) -> list[list[Probe]]:
    """For each probe, one deterministic donor from `pool` of every other class, in class order.

    One donor per other class, not one in all: each image is then tested against every class it
    could be pushed towards, and its per-image rate averages C - 1 swaps, so a gate on a
    many-class model does not hang on which class a single donor happened to come from.
    """
    by_class: dict[str, list[Probe]] = {}
    for donor in pool:
        by_class.setdefault(donor.label, []).append(donor)
    chosen = []
    for probe in probes:
        others = [label for label in by_class if label != probe.label]
        if not others:
            raise ValueError(f"no probe of a class other than {probe.label!r} to swap from")
        chosen.append(
            [
                by_class[label][derived_seed(seed, "donor", probe.id, label) % len(by_class[label])]
                for label in others
            ]
        )
    return chosen


def paste_area(image: np.ndarray, donor: np.ndarray, area: np.ndarray) -> np.ndarray:
    """`image` with the pixels of `area` taken from `donor` (same place)."""
    out = image.copy()
    out[area] = donor[area]
    return out


# A donor pixel belongs to the feature when a channel differs from the donor's median skin by
# more than this share of the range; the face's own shading stays within about half of it.
STROKE_CONTRAST = 0.08


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
    region pasted where it sits on the donor's face, relative to the face's centre and scaled
    to this face's size. Only the feature's own pixels come along (those of the donor's box that
    stand out from the donor's skin); the rest of the box takes this face's skin colour.

    Faces are jittered in place and size, and features like raised brows are told by where they
    sit on the face: pasting at the image's own region's place would carry the shape but lose
    the position. Pasting the whole box would carry a block of the donor's skin as well, itself
    a new feature (a dark patch where the mouth is), and the swap would test that patch.
    """
    out = image.copy()
    rows, cols = np.nonzero(donor_mask)
    if rows.size == 0 or not mask.any() or not face.any() or not donor_face.any():
        return out
    skin = np.median(image[face & ~mask], axis=0)
    donor_skin = np.median(donor[donor_face & ~donor_mask], axis=0)
    out[mask] = skin
    box = donor[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = 1.0 if image.dtype.kind == "f" else 255.0
    stroke = np.abs(box.astype(np.float64) - donor_skin).max(axis=-1) > STROKE_CONTRAST * scale
    patch = np.where(stroke[..., None], box, skin).astype(image.dtype)
    centre, radius = _centre_and_radius(face)
    donor_centre, donor_radius = _centre_and_radius(donor_face)
    patch_centre = np.array([rows.min() + rows.max(), cols.min() + cols.max()]) / 2
    target = centre + (patch_centre - donor_centre) * radius / donor_radius
    height, width = image.shape[:2]
    top = min(max(int(round(target[0] - (patch.shape[0] - 1) / 2)), 0), height - patch.shape[0])
    left = min(max(int(round(target[1] - (patch.shape[1] - 1) / 2)), 0), width - patch.shape[1])
    out[top : top + patch.shape[0], left : left + patch.shape[1]] = patch
    return out
