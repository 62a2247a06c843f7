"""Localisation checks: region focus (three metrics), border and background dominance.

Each case explains the original probe images of one class for that class and measures where the
attribution lands. Beside the value, each reports what the control explainers (random, centre
prior, edges) score on the same images, so a threshold can be relative to them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from xaigate.cases import Case, Measurement
from xaigate.checks.intervention import intervention_agreement
from xaigate.checks.listing import decisive_region, per_class
from xaigate.checks.registry import Direction, register_check
from xaigate.context import CONTROLS, FACE_REGION, GateContext, region_mask
from xaigate.metrics.localisation import (
    area_share,
    pointing_game,
    relevance_mass,
    relevance_rank_accuracy,
)
from xaigate.probes import Probe

MaskOf = Callable[[GateContext, Case, Probe], np.ndarray]
Metric = Callable[[np.ndarray, np.ndarray], float]
REFERENCES = ("area_share", *(f"control_{name}" for name in CONTROLS))


class PointingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tolerance: int = Field(2, ge=0, description="pixels around the region that still count")
    classes: list[str] | None = Field(
        None,
        description="classes gated (default: every class); a class told by the absence of a "
        "feature (neutral, not_smile) has no single place for a map's peak to point at",
    )


def _decisive_mask(_: GateContext, case: Case, probe: Probe) -> np.ndarray:
    return region_mask(probe, case.region)


def _border_mask(context: GateContext, case: Case, _: Probe) -> np.ndarray:
    return context.border(case.model)


def _background_mask(_: GateContext, __: Case, probe: Probe) -> np.ndarray:
    return ~probe.regions[FACE_REGION]


def measure_maps(
    context: GateContext,
    case: Case,
    mask_of: MaskOf,
    metric: Metric,
    share_of: MaskOf | None = None,
) -> Measurement:
    """`metric(map, mask)` per probe image of the case's class, with area share and controls."""
    probes = context.probes_of_class(case.model, case.target)
    maps = context.explanations(case.model, case.explainer, probes, case.target)
    masks = [mask_of(context, case, probe) for probe in probes]
    values = {
        probe.id: metric(explanation.attribution, mask)
        for probe, explanation, mask in zip(probes, maps, masks, strict=True)
    }
    share_masks = masks if share_of is None else [share_of(context, case, p) for p in probes]
    reference = {"area_share": float(np.mean([area_share(mask) for mask in share_masks]))}
    for control in CONTROLS:
        control_maps = context.control_maps(case.model, control, probes, case.target)
        scores = [
            metric(explanation.attribution, mask)
            for explanation, mask in zip(control_maps, masks, strict=True)
        ]
        reference[f"control_{control}"] = float(np.nanmean(scores))
    return Measurement(values, reference)


def _register(name: str, direction: Direction, description: str, worst: float, **kwargs):  # noqa: ANN003, ANN202
    return register_check(
        name,
        direction=direction,
        category="localisation",
        description=description,
        worst=worst,
        references=REFERENCES,
        **kwargs,
    )


@_register(
    "region_focus",
    Direction.HIGHER,
    "relevance mass: share of positive attribution inside the class's decisive region",
    0.0,
    cases=per_class(decisive_region),
)
def region_focus(context: GateContext, case: Case) -> Measurement:
    return measure_maps(context, case, _decisive_mask, relevance_mass)


@_register(
    "region_rank",
    Direction.HIGHER,
    "relevance rank accuracy: share of the top-|R| pixels that fall in the decisive region R",
    0.0,
    cases=per_class(decisive_region),
)
def region_rank(context: GateContext, case: Case) -> Measurement:
    return measure_maps(context, case, _decisive_mask, relevance_rank_accuracy)


@_register(
    "pointing_game",
    Direction.HIGHER,
    "share of images whose map peaks inside the decisive region (within a pixel tolerance)",
    0.0,
    cases=per_class(decisive_region),
    params_model=PointingParams,
)
def pointing(context: GateContext, case: Case) -> Measurement:
    tolerance = context.thresholds.params("pointing_game").tolerance

    def metric(attribution: np.ndarray, mask: np.ndarray) -> float:
        return pointing_game(attribution, mask, tolerance)

    def dilated(context: GateContext, case: Case, probe: Probe) -> np.ndarray:
        # A random peak hits the region grown by the tolerance: that is its area share.
        mask = _decisive_mask(context, case, probe)
        return ndimage.binary_dilation(mask, iterations=tolerance) if tolerance else mask

    return measure_maps(context, case, _decisive_mask, metric, share_of=dilated)


@_register(
    "border_dominance",
    Direction.LOWER,
    "share of positive attribution in the outer border band",
    1.0,
    cases=per_class(lambda *_: "border"),
)
def border_dominance(context: GateContext, case: Case) -> Measurement:
    measured = measure_maps(context, case, _border_mask, relevance_mass)
    measured.reference.update(intervention_agreement(context, case, "border"))
    return measured


@_register(
    "background_dominance",
    Direction.LOWER,
    "share of positive attribution outside the face",
    1.0,
    cases=per_class(lambda *_: "background"),
)
def background_dominance(context: GateContext, case: Case) -> Measurement:
    measured = measure_maps(context, case, _background_mask, relevance_mass)
    measured.reference.update(intervention_agreement(context, case, "background"))
    return measured
