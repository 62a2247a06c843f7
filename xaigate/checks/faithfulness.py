"""Faithfulness: deletion and insertion (Petsiuk et al. 2018), gated on the ratio of the
explainer's AUC to that of a random order, per image, both measured above the probability
of the baseline image where the two curves meet. Pixels move in square patches (region
perturbation, Samek et al. 2017), so the random order does not sprinkle noise of its own."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from xaigate.cases import Case, Measurement, NotMeasurable
from xaigate.checks.listing import per_class
from xaigate.checks.registry import Direction, register_check
from xaigate.context import GateContext
from xaigate.metrics.faithfulness import (
    GAIN_FLOOR,
    area_under_curve,
    deletion_curves,
    deletion_ratio,
    evident_baselines,
    insertion_curves,
    insertion_ratio,
    patch_orders,
    random_maps,
)
from xaigate.stats import derived_seed


class FaithfulnessParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: int = Field(20, ge=2)
    patch: int = Field(
        4, ge=1, description="side in pixels (at the model's input size) of the squares moved"
    )
    baseline: Literal["blur", "black", "mean"] | list[Literal["blur", "black", "mean"]] = Field(
        "blur",
        description="what moved pixels become; a list: per image, the first that the model "
        "reads with `min_evidence` less of the class than the intact image (a model may read "
        "a blurred face as the class itself)",
    )
    min_evidence: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="an image enters only when the model gives its class this much more "
        "probability than the baseline image: below it there is no evidence for the orders to "
        "move, and the ratio of two near-zero areas is noise (left out, counted in the result; "
        "with fewer than `min_measured` of the images left, the case is not applicable)",
    )
    min_measured: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="share of the images that must have evidence and a random-order reference; "
        "below it the model reads the baselines as the class itself and the case is not "
        "applicable, with the counts (a case that measures a few images is noise)",
    )
    images: int = Field(30, ge=2, description="probe images per class (the first ones)")
    classes: list[str] | None = Field(
        None,
        description="classes gated (default: every class); a class with no evidence of its own "
        "to remove (not_smile is the absence of a smile) has nothing for deletion to find",
    )


def _measure(context: GateContext, case: Case, deleting: bool) -> Measurement:
    params: FaithfulnessParams = context.thresholds.params(case.check)
    probes = context.probes_of_class(case.model, case.target)[: params.images]
    maps = np.stack(
        [
            e.attribution
            for e in context.explanations(case.model, case.explainer, probes, case.target)
        ]
    )
    images = np.stack([probe.image for probe in probes])
    targets = np.full(len(probes), context.class_index(case.model, case.target))
    curves = deletion_curves if deleting else insertion_curves
    ratio = deletion_ratio if deleting else insertion_ratio
    predict = context.models[case.model].predict_proba
    candidates = (params.baseline,) if isinstance(params.baseline, str) else params.baseline
    baselines, chosen = evident_baselines(
        predict, images, targets, tuple(candidates), params.min_evidence
    )
    seed = derived_seed(context.thresholds.seed, "faithfulness", case.model, case.target)
    orders = patch_orders(maps, params.patch)
    random_orders = patch_orders(random_maps(len(probes), maps.shape[1:], seed), params.patch)

    def curves_of(order: np.ndarray) -> np.ndarray:
        # Model outputs: an earlier run's curves of the same inputs are read from disk.
        return context.model_outputs(
            case.model,
            curves,
            images=images,
            maps=order,
            targets=targets,
            steps=params.steps,
            baseline=baselines,
        )

    explained = curves_of(orders)
    random_curves = curves_of(random_orders)
    auc = area_under_curve(explained)
    random_auc = area_under_curve(random_curves)
    # Both curves meet at the baseline image (deletion's end, insertion's start) and at the
    # intact image (the other end).
    level = explained[:, -1] if deleting else explained[:, 0]
    intact = explained[:, 0] if deleting else explained[:, -1]
    ratios = ratio(auc, random_auc, level=level, floor=GAIN_FLOOR)
    evident = intact - level >= params.min_evidence
    # NaN: the random order leaves no area above the baseline's level (any patch it moves
    # already destroys the class), so there is no reference to beat. It depends on the model
    # and the random order only, never on the map, so leaving it out cannot favour a map.
    referenced = np.isfinite(ratios)
    kept = evident & referenced
    if kept.sum() < params.min_measured * len(probes):
        raise NotMeasurable(
            f"{int(kept.sum())} of {len(probes)} images measurable ({int((~evident).sum())} "
            f"without evidence over the baselines, {int((evident & ~referenced).sum())} without "
            f"a random-order reference): the model gives {case.target} "
            f"{float(level.mean()):.2f} on the baseline images themselves"
        )
    return Measurement(
        {probe.id: float(r) for probe, r, keep in zip(probes, ratios, kept, strict=True) if keep},
        {
            "auc": float(auc.mean()),
            "random_auc": float(random_auc.mean()),
            "baseline_probability": float(level.mean()),
            "images_without_evidence": float((~evident).sum()),
            "images_without_reference": float((evident & ~referenced).sum()),
            # Images measured against a later candidate: the model reads the first as the class.
            "images_on_later_baseline": float((chosen > 0).sum()),
            "random_seed": seed,
        },
        # Mean curves over the case's images, for the report's plot.
        evidence={"explained": explained.mean(axis=0), "random": random_curves.mean(axis=0)},
    )


@register_check(
    "deletion_ratio",
    direction=Direction.LOWER,
    category="faithfulness",
    description="deletion AUC of the class probability over a random order's (below 1: faithful)",
    worst=float("inf"),
    cases=per_class(lambda *_: ""),
    params_model=FaithfulnessParams,
)
def deletion(context: GateContext, case: Case) -> Measurement:
    return _measure(context, case, deleting=True)


@register_check(
    "insertion_ratio",
    direction=Direction.HIGHER,
    category="faithfulness",
    description="insertion AUC of the class probability over a random order's (above 1: faithful)",
    worst=0.0,
    cases=per_class(lambda *_: ""),
    params_model=FaithfulnessParams,
)
def insertion(context: GateContext, case: Case) -> Measurement:
    return _measure(context, case, deleting=False)
