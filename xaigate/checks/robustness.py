"""Occlusion and lighting robustness.

Occluders off the decisive region (glasses over the eyes for smile) and lighting changes must
leave the prediction and the explanation stable; occluding the decisive region (a mask over the
mouth) must lower the class probability. Variants come from the probe set: images tagged
`variant: <kind>` with `source: <id of the original>`.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from xaigate.cases import Case, Measurement, compare_maps
from xaigate.checks.registry import Direction, register_check
from xaigate.context import GateContext
from xaigate.errors import UsageError
from xaigate.metrics.similarity import rank_correlation
from xaigate.probes import Probe


class VariantParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    variants: list[str] = Field(min_length=1, description="probe `variant` tags this check uses")
    classes: list[str] | None = Field(None, description="classes gated (default: every class)")
    images: int = Field(20, ge=1, description="variant images per class (the first ones)")


def _variant_cases(context: GateContext, model: str, explainer: str, check: str) -> list[Case]:
    kinds = context.thresholds.params(check).variants
    pairs = context.variants(model, kinds)
    if not pairs:
        raise UsageError(
            f"{context.probes[model].root / 'manifest.jsonl'}: no probe image tagged variant "
            f"{' or '.join(kinds)}, which {check} in {context.thresholds.path} needs"
        )
    wanted = context.thresholds.params(check).classes
    classes = [
        class_
        for class_ in context.models[model].classes
        if any(source.label == class_ for _, source in pairs)
        and (wanted is None or class_ in wanted)
    ]
    return [Case(model, explainer, check, class_, "+".join(kinds)) for class_ in classes]


def _pairs_of(context: GateContext, case: Case) -> list[tuple[Probe, Probe]]:
    params = context.thresholds.params(case.check)
    pairs = context.variants(case.model, params.variants)
    return [(v, s) for v, s in pairs if s.label == case.target][: params.images]


def _predicted(context: GateContext, case: Case, probes: list[Probe]) -> np.ndarray:
    return context.predictions(case.model, np.stack([p.image for p in probes]))


def flip_rate(context: GateContext, case: Case) -> Measurement:
    pairs = _pairs_of(context, case)
    variants = _predicted(context, case, [v for v, _ in pairs]).argmax(1)
    sources = _predicted(context, case, [s for _, s in pairs]).argmax(1)
    return Measurement(
        {v.id: float(a != b) for (v, _), a, b in zip(pairs, variants, sources, strict=True)}
    )


def similarity(context: GateContext, case: Case) -> Measurement:
    """Rank correlation of variant and source maps, on pairs whose prediction did not change."""
    pairs = _pairs_of(context, case)
    variants = _predicted(context, case, [v for v, _ in pairs]).argmax(1)
    sources = _predicted(context, case, [s for _, s in pairs]).argmax(1)
    kept = [pair for pair, a, b in zip(pairs, variants, sources, strict=True) if a == b]
    variant_maps = context.explanations(
        case.model, case.explainer, [v for v, _ in kept], case.target
    )
    source_maps = context.explanations(
        case.model, case.explainer, [s for _, s in kept], case.target
    )
    return Measurement(
        compare_maps([v for v, _ in kept], variant_maps, source_maps, rank_correlation),
        {"pairs_flipped": float(len(pairs) - len(kept))},
    )


def _register(name: str, direction: Direction, description: str, worst: float, explained: bool):  # noqa: ANN202
    return register_check(
        name,
        direction=direction,
        category="robustness",
        description=description,
        worst=worst,
        cases=_variant_cases,
        params_model=VariantParams,
        per_explainer=explained,
    )


@_register(
    "occlusion_flip_rate",
    Direction.LOWER,
    "share of predictions that change under an occluder off the decisive region",
    1.0,
    explained=False,
)
def occlusion_flip_rate(context: GateContext, case: Case) -> Measurement:
    return flip_rate(context, case)


@_register(
    "occlusion_similarity",
    Direction.HIGHER,
    "rank correlation of maps with and without an occluder off the decisive region",
    -1.0,
    explained=True,
)
def occlusion_similarity(context: GateContext, case: Case) -> Measurement:
    return similarity(context, case)


@_register(
    "lighting_flip_rate",
    Direction.LOWER,
    "share of predictions that change under a lighting change",
    1.0,
    explained=False,
)
def lighting_flip_rate(context: GateContext, case: Case) -> Measurement:
    return flip_rate(context, case)


@_register(
    "lighting_similarity",
    Direction.HIGHER,
    "rank correlation of maps before and after a lighting change",
    -1.0,
    explained=True,
)
def lighting_similarity(context: GateContext, case: Case) -> Measurement:
    return similarity(context, case)


@_register(
    "decisive_occlusion_drop",
    Direction.HIGHER,
    "drop of the class probability when the decisive region is occluded",
    0.0,
    explained=False,
)
def decisive_occlusion_drop(context: GateContext, case: Case) -> Measurement:
    pairs = _pairs_of(context, case)
    index = context.class_index(case.model, case.target)
    variants = _predicted(context, case, [v for v, _ in pairs])[:, index]
    sources = _predicted(context, case, [s for _, s in pairs])[:, index]
    return Measurement(
        {v.id: float(b - a) for (v, _), a, b in zip(pairs, variants, sources, strict=True)}
    )
