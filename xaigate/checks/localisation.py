"""Localisation checks: region focus, and border and background dominance.

Each case explains the probe images of one class for that class, and measures where the
positive attribution lands.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xaigate.cases import Case, Measurement
from xaigate.checks.registry import Direction, register_check
from xaigate.context import FACE_REGION, GateContext
from xaigate.metrics.localisation import area_share, relevance_mass

MaskOf = Callable[[GateContext, Case, dict[str, np.ndarray]], np.ndarray]


def _per_class(check: str, region_of: Callable[[GateContext, str], str]):  # noqa: ANN202
    """A case lister: one case per class of the model, measured against `region_of(class)`."""

    def cases(context: GateContext, model: str, explainer: str) -> list[Case]:
        return [
            Case(model, explainer, check, class_, region_of(context, class_))
            for class_ in context.models[model].classes
        ]

    return cases


def _mass_in(context: GateContext, case: Case, mask_of: MaskOf) -> Measurement:
    probes = context.probes_of_class(case.model, case.target)
    maps = context.explanations(case.model, case.explainer, probes, case.target)
    values: dict[str, float] = {}
    shares: list[float] = []
    for probe, explanation in zip(probes, maps, strict=True):
        mask = mask_of(context, case, probe.regions)
        values[probe.id] = relevance_mass(explanation.attribution, mask)
        shares.append(area_share(mask))
    return Measurement(values, {"area_share": float(np.mean(shares))})


@register_check(
    "region_focus",
    direction=Direction.HIGHER,
    category="localisation",
    description="share of positive attribution inside the class's decisive region",
    worst=0.0,
    references=("area_share",),
    cases=_per_class("region_focus", lambda context, class_: context.thresholds.regions[class_]),
)
def region_focus(context: GateContext, case: Case) -> Measurement:
    return _mass_in(context, case, lambda _, case, regions: regions[case.region])


@register_check(
    "border_dominance",
    direction=Direction.LOWER,
    category="localisation",
    description="share of positive attribution in the outer border band",
    worst=1.0,
    references=("area_share",),
    cases=_per_class("border_dominance", lambda *_: "border"),
)
def border_dominance(context: GateContext, case: Case) -> Measurement:
    return _mass_in(context, case, lambda context, case, _: context.border(case.model))


@register_check(
    "background_dominance",
    direction=Direction.LOWER,
    category="localisation",
    description="share of positive attribution outside the face",
    worst=1.0,
    references=("area_share",),
    cases=_per_class("background_dominance", lambda *_: "background"),
)
def background_dominance(context: GateContext, case: Case) -> Measurement:
    return _mass_in(context, case, lambda _, __, regions: ~regions[FACE_REGION])
