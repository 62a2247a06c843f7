"""Region swaps used by the intervention checks."""

import numpy as np

from xaigate.interventions import paste_area, transplant
from xaigate.probes import generate_faces


def test_paste_area_changes_only_the_area() -> None:
    image, donor = np.zeros((8, 8, 3)), np.ones((8, 8, 3))
    area = np.zeros((8, 8), dtype=bool)
    area[:2] = True
    out = paste_area(image, donor, area)
    assert out[area].min() == 1.0 and out[~area].max() == 0.0
    assert image.max() == 0.0  # the input is not modified


def test_transplant_moves_the_donor_region_onto_the_target_region() -> None:
    image = np.zeros((20, 20, 3))
    donor = np.zeros((20, 20, 3))
    donor_mask = np.zeros((20, 20), dtype=bool)
    donor_mask[2:4, 2:6] = True
    donor[donor_mask] = 1.0
    mask = np.zeros((20, 20), dtype=bool)
    mask[12:14, 10:14] = True
    out = transplant(image, mask, donor, donor_mask)
    assert np.array_equal(out[..., 0] > 0, mask)


def test_transplanting_a_smile_mouth_carries_the_mouth_tag_visually() -> None:
    faces = generate_faces(2, seed=5)  # not_smile, smile
    sad, happy = faces
    out = transplant(sad.image, sad.regions["mouth"], happy.image, happy.regions["mouth"])
    assert not np.array_equal(out, sad.image)
    outside = ~sad.regions["face"]
    assert np.array_equal(out[outside], sad.image[outside])
