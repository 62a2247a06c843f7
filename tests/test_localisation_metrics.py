"""Known-answer tests of the localisation metrics."""

import numpy as np
import pytest

from xaigate.metrics.localisation import (
    area_share,
    border_mask,
    pointing_game,
    relevance_mass,
    relevance_rank_accuracy,
)


@pytest.fixture
def mask() -> np.ndarray:
    region = np.zeros((64, 64), dtype=bool)
    region[40:50, 20:44] = True
    return region


def test_map_equal_to_mask_has_mass_one(mask: np.ndarray) -> None:
    assert relevance_mass(mask.astype(float), mask) == 1.0


def test_map_outside_mask_has_mass_zero(mask: np.ndarray) -> None:
    assert relevance_mass((~mask).astype(float), mask) == 0.0


def test_uniform_random_map_scores_area_share(mask: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    masses = [relevance_mass(rng.random(mask.shape), mask) for _ in range(50)]
    assert np.mean(masses) == pytest.approx(area_share(mask), abs=0.01)


def test_negative_attribution_is_ignored(mask: np.ndarray) -> None:
    attribution = np.where(mask, 1.0, -5.0)
    assert relevance_mass(attribution, mask) == 1.0


def test_map_without_positive_mass_is_undefined(mask: np.ndarray) -> None:
    assert np.isnan(relevance_mass(-np.ones(mask.shape), mask))


def test_mass_is_scale_invariant(mask: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    attribution = rng.random(mask.shape)
    assert relevance_mass(attribution, mask) == pytest.approx(
        relevance_mass(attribution * 1000.0, mask)
    )


def test_shape_mismatch_is_refused(mask: np.ndarray) -> None:
    with pytest.raises(ValueError, match="same 2-D shape"):
        relevance_mass(np.ones((32, 32)), mask)


def test_rank_accuracy_known_answers(mask: np.ndarray) -> None:
    assert relevance_rank_accuracy(mask.astype(float), mask) == 1.0
    assert relevance_rank_accuracy((~mask).astype(float), mask) == 0.0
    rng = np.random.default_rng(2)
    random_scores = [relevance_rank_accuracy(rng.random(mask.shape), mask) for _ in range(50)]
    assert np.mean(random_scores) == pytest.approx(area_share(mask), abs=0.02)


def test_rank_accuracy_counts_ties_at_the_cut_off_by_expectation(mask: np.ndarray) -> None:
    # One flat "superpixel" of twice the region's size, half of it the region: the top-|R|
    # places fall among its pixels, and half of them are expected inside, whichever come first
    # in raster order (here the half above the region).
    attribution = np.zeros(mask.shape)
    attribution[30:50, 20:44] = 1.0
    assert relevance_rank_accuracy(attribution, mask) == pytest.approx(0.5)
    # Strictly higher pixels take their places first; the rest go by expectation.
    attribution[45:50, 20:44] = 2.0
    assert relevance_rank_accuracy(attribution, mask) == pytest.approx(0.5 + 0.5 * 5 / 15)


def test_pointing_game_with_tied_peaks_scores_the_share_that_hits(mask: np.ndarray) -> None:
    attribution = np.zeros(mask.shape)
    attribution[30:50, 20:44] = 1.0  # a flat peak, half of it on the region
    assert pointing_game(attribution, mask) == pytest.approx(0.5)
    assert pointing_game(attribution, mask, tolerance=10) == 1.0


def test_pointing_game_hits_and_tolerance(mask: np.ndarray) -> None:
    attribution = np.zeros(mask.shape)
    attribution[45, 30] = 1.0
    assert pointing_game(attribution, mask) == 1.0
    attribution = np.zeros(mask.shape)
    attribution[51, 30] = 1.0  # two pixels below the region (rows 40..49)
    assert pointing_game(attribution, mask) == 0.0
    assert pointing_game(attribution, mask, tolerance=2) == 1.0
    assert pointing_game(np.ones(mask.shape), mask) == 0.0


def test_border_mask_area() -> None:
    band = border_mask((64, 64), 6)
    assert band.sum() == 64 * 64 - 52 * 52
    assert band[0, 0] and band[5, 30] and not band[6, 30] and band[58, 30]
    with pytest.raises(ValueError):
        border_mask((10, 10), 5)
