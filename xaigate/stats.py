"""Aggregation that does not flake: the mean with a seeded bootstrap bound; and the paired
comparison of a candidate with its baseline."""

from __future__ import annotations

import hashlib
import math

import numpy as np
from scipy import stats

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


def worsening(candidate: float, baseline: float, direction: Direction) -> float:
    """How much worse `candidate` is than `baseline` in the metric's own units: positive when
    worse, negative when better, 0 when equal (whichever way the metric points)."""
    difference = baseline - candidate if direction is Direction.HIGHER else candidate - baseline
    return float(difference)


def relative_worsening(candidate: float, baseline: float, direction: Direction) -> float:
    """`worsening` as a share of the baseline's magnitude; 0 when neither changed, infinite when
    a baseline of 0 got worse."""
    change = worsening(candidate, baseline, direction)
    if baseline == 0.0:
        return 0.0 if change <= 0.0 else math.inf
    return change / abs(baseline)


def paired_worse_p_value(
    candidate: np.ndarray, baseline: np.ndarray, direction: Direction
) -> float:
    """One-sided p-value that the candidate is worse than the baseline on paired images.

    The Wilcoxon signed-rank test (Wilcoxon 1945) on the per-image differences, alternative
    "the candidate is worse"; zero differences are dropped (Wilcoxon's own treatment). Lower
    means stronger evidence of a regression. When every difference is zero (a candidate
    identical to the baseline) there is nothing to test: the p-value is 1.0, not scipy's error.
    """
    candidate = np.asarray(candidate, dtype=np.float64)
    baseline = np.asarray(baseline, dtype=np.float64)
    if candidate.shape != baseline.shape or candidate.ndim != 1:
        raise ValueError(f"paired samples {candidate.shape} and {baseline.shape} differ")
    worse = baseline - candidate if direction is Direction.HIGHER else candidate - baseline
    if not np.all(np.isfinite(worse)):
        raise ValueError("paired samples must be finite")
    if not np.any(worse != 0.0):
        return 1.0
    result = stats.wilcoxon(worse, zero_method="wilcox", alternative="greater")
    return float(result.pvalue)


def smallest_wilcoxon_p_value(differing: int) -> float:
    """The smallest one-sided p-value the exact Wilcoxon signed-rank test can give on
    `differing` non-zero paired differences: 0.5**n, when every one points the same way.

    With zero differences dropped, 4 or fewer differing images can never reach p < 0.05
    (0.5**4 = 0.0625): the test cannot tell a regression from noise there, whatever its size.
    """
    return 0.5 ** max(int(differing), 0)
