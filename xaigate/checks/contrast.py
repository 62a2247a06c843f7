"""Class contrast: the explanations of one image for two different classes must differ."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from xaigate.cases import Case, Measurement, compare_maps
from xaigate.checks.registry import Direction, register_check
from xaigate.context import GateContext
from xaigate.metrics.similarity import rank_correlation
from xaigate.thresholds import PAIR_JOIN as PAIR


class ContrastParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    within: str | None = Field(
        None,
        description="compare the maps only inside this probe region (the object, e.g. face); "
        "default the whole image. Both classes' maps are low on the background, which says "
        "nothing about the classes and lifts a whole-image correlation towards 1",
    )


def _pair_cases(context: GateContext, model: str, explainer: str, check: str) -> list[Case]:
    classes = context.models[model].classes
    return [
        Case(model, explainer, check, f"{first}{PAIR}{second}", "")
        for first, second in context.thresholds.schema.class_pairs
        if first in classes and second in classes
    ]


@register_check(
    "class_contrast",
    direction=Direction.LOWER,
    category="contrast",
    description="Spearman rank correlation between one image's maps for two classes",
    worst=1.0,
    cases=_pair_cases,
    params_model=ContrastParams,
)
def class_contrast(context: GateContext, case: Case) -> Measurement:
    first, second = case.target.split(PAIR)
    probes = context.probes_of_class(case.model, first) + context.probes_of_class(
        case.model, second
    )
    maps_first = context.explanations(case.model, case.explainer, probes, first)
    maps_second = context.explanations(case.model, case.explainer, probes, second)
    within = context.thresholds.params(case.check).within
    return Measurement(compare_maps(probes, maps_first, maps_second, rank_correlation, within))
