"""Explanation drift against the baseline: per probe image, how similar the candidate's map is
to the baseline model's (or snapshot's) map of the same image, explainer and class.

Configured under thresholds.yaml's `baseline: checks:`, in effect only with `--baseline`. Two
maps equal within `baseline.tolerance` have not drifted at all: they score exactly 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from xaigate.cases import Case, Measurement
from xaigate.checks.listing import per_class
from xaigate.checks.registry import Direction, register_check
from xaigate.context import GateContext
from xaigate.metrics.similarity import rank_correlation, top_k_iou, top_k_iou_by_chance

NO_DRIFT = 1.0  # what both similarities score for two equal maps


class DriftParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    images: int = Field(20, ge=2, description="probe images per class compared (the first ones)")
    top_k: float = Field(0.1, gt=0, lt=1, description="share of pixels compared by top-k IoU")


def _drift(
    context: GateContext, case: Case, similarity: Callable[[np.ndarray, np.ndarray], float]
) -> Measurement:
    baseline = context.baseline
    section = context.thresholds.schema.baseline
    if baseline is None or section is None:
        raise RuntimeError(f"{case.result_id}: drift is measured only against a baseline")
    params: DriftParams = context.thresholds.params(case.check)
    probes = context.probes_of_class(case.model, case.target)[: params.images]
    candidate = [
        e.attribution for e in context.explanations(case.model, case.explainer, probes, case.target)
    ]
    stored = baseline.maps(case, probes)
    tolerance = section.tolerance
    values: dict[str, float] = {}
    identical = 0
    for probe, ours, theirs in zip(probes, candidate, stored, strict=True):
        if ours.shape == theirs.shape and np.allclose(
            ours, theirs, rtol=tolerance.rtol, atol=tolerance.atol
        ):
            identical += 1
            values[probe.id] = NO_DRIFT
        else:
            values[probe.id] = similarity(ours, theirs)
    return Measurement(
        values,
        {"identical_share": identical / len(probes)},
        # For the report: candidate and baseline maps side by side, the most drifted first.
        evidence={
            "candidate_maps": dict(zip([p.id for p in probes], candidate, strict=True)),
            "baseline_maps": dict(zip([p.id for p in probes], stored, strict=True)),
        },
    )


@register_check(
    "explanation_drift_rank",
    direction=Direction.HIGHER,
    category="drift",
    description="Spearman rank correlation of the candidate's and the baseline's map of an image",
    worst=-1.0,
    cases=per_class(lambda *_: ""),
    params_model=DriftParams,
    needs_baseline=True,
)
def explanation_drift_rank(context: GateContext, case: Case) -> Measurement:
    return _drift(context, case, rank_correlation)


@register_check(
    "explanation_drift_iou",
    direction=Direction.HIGHER,
    category="drift",
    description="IoU of the top-k pixels of the candidate's and the baseline's map of an image",
    worst=0.0,
    cases=per_class(lambda *_: ""),
    params_model=DriftParams,
    needs_baseline=True,
)
def explanation_drift_iou(context: GateContext, case: Case) -> Measurement:
    params: DriftParams = context.thresholds.params(case.check)
    measurement = _drift(context, case, lambda a, b: top_k_iou(a, b, params.top_k))
    reference = {**measurement.reference, "chance": top_k_iou_by_chance(params.top_k)}
    return Measurement(measurement.values, reference, measurement.evidence)
