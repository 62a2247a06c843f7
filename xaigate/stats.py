"""Aggregation that does not flake: the mean with a seeded bootstrap bound."""

from __future__ import annotations

import hashlib

import numpy as np

from xaigate.checks.registry import Direction


def derived_seed(root: int, *labels: str) -> int:
    """A seed for one named random choice, stable across processes and Python versions."""
    text = ":".join((str(root), *labels)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "little")


def bootstrap_bound(
    values: np.ndarray, direction: Direction, *, resamples: int, confidence: float, seed: int
) -> float:
    """The pessimistic end of the percentile bootstrap interval of the mean (Efron 1979).

    For a higher-is-better metric this is the lower end of the two-sided `confidence` interval,
    for a lower-is-better one the upper end; a gate passes only when this bound clears the
    threshold, so one lucky image cannot carry a marginal model across the line.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("bootstrap of no values")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    quantile = tail if direction is Direction.HIGHER else 1.0 - tail
    return float(np.quantile(means, quantile))
