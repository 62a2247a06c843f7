"""Map similarity metrics: known answers on identical, negated, transformed and random maps."""

from __future__ import annotations

import numpy as np
import pytest

from xaigate.metrics.similarity import (
    cosine_similarity,
    rank_correlation,
    top_k_iou,
    top_k_iou_by_chance,
    top_k_mask,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_identical_maps_are_perfectly_similar(rng: np.random.Generator) -> None:
    a = rng.normal(size=(64, 64))
    assert rank_correlation(a, a) == pytest.approx(1.0)
    assert top_k_iou(a, a) == 1.0
    assert cosine_similarity(a, a) == pytest.approx(1.0)


def test_negated_map_is_perfectly_anticorrelated(rng: np.random.Generator) -> None:
    a = rng.normal(size=(64, 64))
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert top_k_iou(a, -a) == 0.0  # the top 10% of -a is the bottom 10% of a


def test_independent_maps_score_chance(rng: np.random.Generator) -> None:
    a, b = rng.random((64, 64)), rng.random((64, 64))
    # 4096 pixels: the correlation's standard error is about 1/64, the IoU's about 0.005.
    assert abs(rank_correlation(a, b)) < 0.05
    assert top_k_iou(a, b, k=0.1) == pytest.approx(0.1 / 1.9, abs=0.02)
    for k in (0.05, 0.1, 0.3):  # the chance level the checks report, against random maps
        assert top_k_iou_by_chance(k) == k / (2 - k)
        assert top_k_iou(a, b, k=k) == pytest.approx(top_k_iou_by_chance(k), abs=0.02)
    assert abs(cosine_similarity(a - 0.5, b - 0.5)) < 0.05


def test_rank_correlation_ignores_monotone_transforms(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=(32, 32)), rng.normal(size=(32, 32))
    b = 0.5 * a + b  # correlated, so the value tested is not just 0
    expected = rank_correlation(a, b)
    assert expected > 0.3
    assert rank_correlation(np.exp(a), 3.0 * b**3 + 1.0) == pytest.approx(expected)
    assert top_k_iou(np.exp(a), b) == top_k_iou(a, b)


def test_rank_correlation_averages_tied_ranks() -> None:
    a = np.array([[0.0, 0.0, 1.0, 2.0]])
    b = np.array([[0.0, 1.0, 2.0, 3.0]])
    # Ranks of a are (1.5, 1.5, 3, 4): Pearson of those with (1, 2, 3, 4) is 0.9486833.
    assert rank_correlation(a, b) == pytest.approx(3 / np.sqrt(10))


def test_constant_maps_do_not_give_nan() -> None:
    flat, other_flat = np.zeros((8, 8)), np.ones((8, 8))
    varying = np.arange(64.0).reshape(8, 8)
    assert rank_correlation(flat, flat) == 1.0
    assert rank_correlation(flat, other_flat) == 0.0
    assert rank_correlation(flat, varying) == 0.0 and rank_correlation(varying, flat) == 0.0
    assert cosine_similarity(flat, flat) == 1.0 and cosine_similarity(flat, varying) == 0.0


def test_top_k_breaks_ties_by_position() -> None:
    flat = np.zeros((10, 10))
    mask = top_k_mask(flat, 0.1)
    # Stable sort: all tied, so the first ten pixels in row-major order, i.e. row 0.
    assert mask.sum() == 10 and mask[0].all()
    assert top_k_iou(flat, flat) == 1.0


def test_top_k_counts() -> None:
    a = np.arange(100.0).reshape(10, 10)
    assert top_k_mask(a, 0.05).sum() == 5 and top_k_mask(a, 0.05)[9, 5:].all()
    assert top_k_mask(a, 1e-6).sum() == 1  # never empty
    assert top_k_mask(a, 1.0).all()
    b = a.copy()
    b[9, 9] = -1.0  # drop one of a's top 10
    assert top_k_iou(a, b, k=0.1) == pytest.approx(9 / 11)


@pytest.mark.parametrize("k", [0.0, -0.1, 1.5, float("nan")])
def test_top_k_rejects_fractions_outside_0_1(k: float) -> None:
    a = np.zeros((4, 4))
    with pytest.raises(ValueError, match="k="):
        top_k_iou(a, a, k=k)


@pytest.mark.parametrize("metric", [rank_correlation, top_k_iou, cosine_similarity])
def test_maps_must_match_in_shape_and_be_finite(metric) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="same 2-D shape"):
        metric(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="same 2-D shape"):
        metric(np.zeros(16), np.zeros(16))
    broken = np.zeros((4, 4))
    broken[1, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        metric(broken, np.zeros((4, 4)))


def test_metrics_are_symmetric(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=(16, 16)), rng.normal(size=(16, 16))
    for metric in (rank_correlation, top_k_iou, cosine_similarity):
        assert metric(a, b) == pytest.approx(metric(b, a))


def test_rank_correlation_within_a_region_ignores_the_rest() -> None:
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[:2] = np.arange(8).reshape(2, 4)
    b[:2] = -np.arange(8).reshape(2, 4)  # reversed order inside the top half
    a[2:], b[2:] = 100.0, 100.0  # a shared "background", far above everything else
    inside = np.zeros((4, 4), dtype=bool)
    inside[:2] = True
    assert rank_correlation(a, b, inside) == pytest.approx(-1.0)
    assert rank_correlation(a, b) > rank_correlation(a, b, inside)
    with pytest.raises(ValueError, match="non-empty boolean mask"):
        rank_correlation(a, b, np.zeros((4, 4), dtype=bool))
