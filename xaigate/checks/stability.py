"""Stability of stochastic explainers (LIME, SHAP): the same seed gives the same map, and
another seed gives a similar one (top-k IoU and Spearman rank correlation)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from xaigate.cases import Case, Measurement, compare_maps
from xaigate.checks.listing import per_class
from xaigate.checks.registry import Direction, register_check
from xaigate.context import GateContext
from xaigate.metrics.similarity import rank_correlation, top_k_iou, top_k_iou_by_chance

DETERMINISTIC = "deterministic explainer: the same input always gives the same map"


class StabilityParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    images: int = Field(10, ge=2, description="probe images per class explained a second time")
    top_k: float = Field(0.1, gt=0, lt=1, description="share of pixels compared by top-k IoU")


def _stochastic_cases(context: GateContext, model: str, explainer: str, check: str) -> list[Case]:
    cases = per_class(lambda *_: "")(context, model, explainer, check)
    if context.explainers[explainer].stochastic:
        return cases
    return [Case(c.model, c.explainer, c.check, c.target, c.region, DETERMINISTIC) for c in cases]


def _pairs(context: GateContext, case: Case, params: StabilityParams, salt: str):  # noqa: ANN202
    probes = context.probes_of_class(case.model, case.target)[: params.images]
    first = context.explanations(case.model, case.explainer, probes, case.target)
    second = context.explanations(case.model, case.explainer, probes, case.target, salt)
    return probes, first, second


@register_check(
    "reproducibility",
    direction=Direction.HIGHER,
    category="stability",
    description="share of images whose map is identical when recomputed with the same seed",
    worst=0.0,
    cases=_stochastic_cases,
    params_model=StabilityParams,
)
def reproducibility(context: GateContext, case: Case) -> Measurement:
    params = context.thresholds.params(case.check)
    probes = context.probes_of_class(case.model, case.target)[: params.images]
    stored = context.explanations(case.model, case.explainer, probes, case.target)
    # Recomputed with the same seeds by a fresh explainer, outside memory: no memo may hide a
    # seed leak (an earlier run's recomputation of unchanged inputs is read from disk).
    fresh = context.recomputed(case.model, case.explainer, probes, case.target)
    return Measurement(
        compare_maps(probes, stored, fresh, lambda a, b: float(np.array_equal(a, b)))
    )


@register_check(
    "stability_rank",
    direction=Direction.HIGHER,
    category="stability",
    description="Spearman rank correlation between maps of one image under two seeds",
    worst=-1.0,
    cases=_stochastic_cases,
    params_model=StabilityParams,
)
def stability_rank(context: GateContext, case: Case) -> Measurement:
    params = context.thresholds.params(case.check)
    probes, first, second = _pairs(context, case, params, "second-seed")
    return Measurement(compare_maps(probes, first, second, rank_correlation))


@register_check(
    "stability_iou",
    direction=Direction.HIGHER,
    category="stability",
    description="IoU of the top-k pixels of the maps of one image under two seeds",
    worst=0.0,
    cases=_stochastic_cases,
    params_model=StabilityParams,
)
def stability_iou(context: GateContext, case: Case) -> Measurement:
    params = context.thresholds.params(case.check)
    probes, first, second = _pairs(context, case, params, "second-seed")
    return Measurement(
        compare_maps(probes, first, second, lambda a, b: top_k_iou(a, b, params.top_k)),
        {"chance": top_k_iou_by_chance(params.top_k)},
    )
