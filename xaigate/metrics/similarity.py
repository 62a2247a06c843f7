"""Similarity of two attribution maps: how much an explanation changed.

Used to compare the maps of one image under another seed, another model (randomised weights)
or a perturbed input. Each takes two finite HxW maps of the same shape (else ValueError) and is
symmetric in a and b.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def _flat_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"maps {a.shape} and {b.shape} must be the same 2-D shape")
    flat_a = np.asarray(a, dtype=np.float64).ravel()
    flat_b = np.asarray(b, dtype=np.float64).ravel()
    if not (np.isfinite(flat_a).all() and np.isfinite(flat_b).all()):
        raise ValueError("maps must be finite")
    return flat_a, flat_b


def _constant(values: np.ndarray) -> bool:
    return bool(values.min() == values.max())


def rank_correlation(a: np.ndarray, b: np.ndarray, within: np.ndarray | None = None) -> float:
    """Spearman rank correlation of the two maps' pixels, ties given their average rank.

    Adebayo et al. 2018, "Sanity checks for saliency maps", compare maps of a trained and a
    randomised model this way. Higher means more similar; in [-1, 1], invariant to any strictly
    increasing transform of either map. Spearman is undefined when a map is constant (zero rank
    variance); here two constant maps score 1.0 if equal and 0.0 if not, and a constant map
    against a varying one scores 0.0: a flat map orders nothing, so it agrees with no ordering.
    `within`, an HxW boolean mask, restricts the comparison to its pixels (e.g. the object).
    """
    flat_a, flat_b = _flat_pair(a, b)
    if within is not None:
        if within.shape != a.shape or within.dtype != bool or not within.any():
            raise ValueError(f"within must be a non-empty boolean mask of shape {a.shape}")
        flat_a, flat_b = flat_a[within.ravel()], flat_b[within.ravel()]
    if _constant(flat_a) or _constant(flat_b):
        return float(_constant(flat_a) and _constant(flat_b) and flat_a[0] == flat_b[0])
    return float(stats.spearmanr(flat_a, flat_b).statistic)


def top_k_mask(attribution: np.ndarray, k: float) -> np.ndarray:
    """Boolean mask of the round(k * size) highest pixels (at least one).

    Ties at the cut-off go to the earlier pixel in row-major order (a stable sort), so the
    result is deterministic.
    """
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k={k} is not a fraction in (0, 1]")
    flat = np.asarray(attribution, dtype=np.float64).ravel()
    count = max(1, round(k * flat.size))
    mask = np.zeros(flat.size, dtype=bool)
    mask[np.argsort(-flat, kind="stable")[:count]] = True
    return mask.reshape(np.shape(attribution))


def top_k_iou(a: np.ndarray, b: np.ndarray, k: float = 0.1) -> float:
    """Intersection over union of the top-k fraction of pixels of each map.

    Ghorbani et al. 2019 ("Interpretation of neural networks is fragile") measure how an
    explanation moves under perturbation by the overlap of the top-k features; this is that
    overlap as IoU. Higher means more similar; in [0, 1]. Two independent maps score about
    k / (2 - k) (0.053 at k = 0.1), not 0.
    """
    _flat_pair(a, b)
    top_a, top_b = top_k_mask(a, k), top_k_mask(b, k)
    return float((top_a & top_b).sum() / (top_a | top_b).sum())


def top_k_iou_by_chance(k: float) -> float:
    """The top-k IoU two independent maps score in expectation, k / (2 - k): the chance level
    `top_k_iou` is read against (0.053 at k = 0.1)."""
    return k / (2 - k)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between the two maps as vectors; signs and magnitudes count.

    The similarity Alvarez-Melis & Jaakkola 2018 ("On the robustness of interpretability
    methods") bound under input perturbation, in its scale-free form. Higher means more
    similar; in [-1, 1]. A zero map has no direction: two zero maps score 1.0, one zero map
    against a non-zero one 0.0.
    """
    flat_a, flat_b = _flat_pair(a, b)
    norm_a, norm_b = np.linalg.norm(flat_a), np.linalg.norm(flat_b)
    if norm_a == 0.0 or norm_b == 0.0:
        return float(norm_a == norm_b)
    return float(np.clip(flat_a @ flat_b / (norm_a * norm_b), -1.0, 1.0))
