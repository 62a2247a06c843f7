"""Regression against the baseline: how much worse the candidate's mean is, and whether the
probe images agree that it is worse (a paired Wilcoxon signed-rank test)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xaigate.checks.registry import CheckSpec
from xaigate.stats import (
    paired_worse_p_value,
    relative_worsening,
    smallest_wilcoxon_p_value,
    worsening,
)
from xaigate.thresholds import MaxRegression


@dataclass(frozen=True)
class Regression:
    """The candidate's mean against the baseline's on one case.

    `worsening` is in the check's units (positive: worse), `relative` a share of the baseline's
    value. The case regressed when it is worse by more than a `max_regression` bound allows and
    the paired test finds it worse beyond chance (`p_value` below `significance`). When the test
    cannot reach `significance` at all (too few images differ between the two: `differing` of
    the `paired` ones, see `smallest_wilcoxon_p_value`; or none can be paired) the bounds alone
    decide (fail closed): a large worsening on 3 images is not let through as "not significant".
    `unpaired` counts images valued on one side only (a check that leaves images out).
    """

    baseline_value: float
    worsening: float
    relative: float
    p_value: float | None
    paired: int
    max_regression: MaxRegression
    significance: float
    differing: int = 0
    unpaired: int = 0

    @property
    def exceeds(self) -> bool:
        bound = self.max_regression
        return (bound.absolute is not None and self.worsening > bound.absolute) or (
            bound.relative is not None and self.relative > bound.relative
        )

    @property
    def test_decides(self) -> bool:
        """Whether the paired test could reach `significance` on these images at all."""
        return (
            self.p_value is not None
            and smallest_wilcoxon_p_value(self.differing) < self.significance
        )

    @property
    def regressed(self) -> bool:
        if not self.exceeds:
            return False
        return not self.test_decides or (
            self.p_value is not None and self.p_value < self.significance
        )

    @property
    def decided_by(self) -> str:
        if self.test_decides:
            return "bound and test"
        return (
            f"bound alone: {self.differing} differing image(s) cannot reach "
            f"p < {self.significance:g}"
        )

    def describe(self) -> str:
        """E.g. ``0.210 vs baseline 0.520: 0.310 worse (60%), p=0.0001; allowed 0.05``."""
        bound = self.max_regression
        allowed = " and ".join(
            text
            for text in (
                None if bound.absolute is None else f"{bound.absolute:g}",
                None if bound.relative is None else f"{bound.relative:.0%}",
            )
            if text
        )
        p_value = "n/a" if self.p_value is None else f"{self.p_value:.2g}"
        state = "REGRESSED" if self.regressed else "within bounds or not significant"
        unpaired = f", {self.unpaired} unpaired" if self.unpaired else ""
        return (
            f"baseline {self.baseline_value:.3f}, worse by {self.worsening:.3f} "
            f"({_percent(self.relative)}), Wilcoxon p={p_value} (n={self.paired}, "
            f"{self.differing} differing{unpaired}); allowed {allowed}, decided by "
            f"{self.decided_by}: {state}"
        )

    def to_json(self) -> dict[str, Any]:
        bound = self.max_regression
        return {
            "value": _number(self.baseline_value),
            "regression": _number(self.worsening),
            "relative_regression": _number(self.relative),
            "max_regression": {"absolute": bound.absolute, "relative": bound.relative},
            "p_value": _number(self.p_value),
            "test": "wilcoxon signed-rank, paired over probe images, one-sided (worse)",
            "paired": self.paired,
            "differing": self.differing,
            "unpaired": self.unpaired,
            "decided_by": self.decided_by,
            "significance": self.significance,
            "regressed": self.regressed,
        }


def _number(value: float | None) -> float | None:
    # Infinite (a baseline of 0 that got worse) has no JSON number: the string says it.
    if value is None:
        return None
    return round(float(value), 6) if math.isfinite(value) else None


def _percent(value: float) -> str:
    return "inf" if not math.isfinite(value) else f"{value:+.0%}"


def _finite(values: dict[str, float], worst: float) -> dict[str, float]:
    """Undefined values count as the check's worst, as the gate judges them."""
    return {key: value if math.isfinite(value) else worst for key, value in values.items()}


def compare(
    spec: CheckSpec,
    candidate: dict[str, float],
    baseline: dict[str, float],
    max_regression: MaxRegression,
    significance: float,
) -> Regression:
    """The candidate's per-image values against the baseline's, paired by probe id."""
    if not baseline:
        raise ValueError(f"{spec.name}: the baseline has no value to compare with")
    candidate = _finite(candidate, spec.worst)
    baseline = _finite(baseline, spec.worst)
    candidate_mean = float(np.mean(list(candidate.values())))
    baseline_mean = float(np.mean(list(baseline.values())))
    common = [key for key in candidate if key in baseline]
    ours = np.array([candidate[key] for key in common], dtype=np.float64)
    theirs = np.array([baseline[key] for key in common], dtype=np.float64)
    p_value = paired_worse_p_value(ours, theirs, spec.direction) if common else None
    return Regression(
        baseline_value=baseline_mean,
        worsening=worsening(candidate_mean, baseline_mean, spec.direction),
        relative=relative_worsening(candidate_mean, baseline_mean, spec.direction),
        p_value=p_value,
        paired=len(common),
        max_regression=max_regression,
        significance=significance,
        differing=int(np.count_nonzero(ours != theirs)),
        unpaired=len(set(candidate) ^ set(baseline)),
    )
