"""Randomisation sanity (Adebayo et al. 2018, "Sanity checks for saliency maps").

An explanation that survives re-initialising the model's weights explains the image, not the
model. Weights are re-initialised cascading from the top layer; the gate is on the rank
correlation between the trained model's maps and those of the fully randomised model, and the
top-layer-only step is reported beside it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from xaigate.cases import Case, Measurement, compare_maps
from xaigate.checks.listing import per_class
from xaigate.checks.registry import Direction, register_check
from xaigate.context import GateContext
from xaigate.metrics.similarity import rank_correlation
from xaigate.models.capabilities import NotApplicable
from xaigate.models.randomisation import cascading_randomisations
from xaigate.stats import derived_seed


class RandomisationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    images: int = Field(8, ge=2, description="probe images per class (the first ones)")
    within: str | None = Field(
        None,
        description="compare the maps only inside this probe region (the object, e.g. face); "
        "default the whole image. A random network's maps also separate object from background, "
        "which lifts a whole-image correlation without saying anything about the trained model",
    )


def _cases(context: GateContext, model: str, explainer: str, check: str) -> list[Case]:
    cases = per_class(lambda *_: "")(context, model, explainer, check)
    try:
        cascading_randomisations(context.models[model], 0, max_steps=1)
    except NotApplicable as exc:
        return [
            Case(c.model, c.explainer, c.check, c.target, c.region, str(exc), model_limit=True)
            for c in cases
        ]
    return cases


@register_check(
    "randomisation_sanity",
    direction=Direction.LOWER,
    category="randomisation",
    description="rank correlation of maps of the trained and the weight-randomised model",
    worst=1.0,
    cases=_cases,
    params_model=RandomisationParams,
)
def randomisation_sanity(context: GateContext, case: Case) -> Measurement:
    params: RandomisationParams = context.thresholds.params(case.check)
    probes = context.probes_of_class(case.model, case.target)[: params.images]
    trained = context.explanations(case.model, case.explainer, probes, case.target)
    seed = derived_seed(context.thresholds.seed, "randomisation", case.model)
    cascade = cascading_randomisations(context.models[case.model], seed)
    explainer = context.explainers[case.explainer]
    target = context.class_index(case.model, case.target)

    def correlations(step: int) -> dict[str, float]:
        layer, randomised = cascade[step]
        maps = context.store.get(randomised, explainer, probes, target, model_variant=f"~{layer}")
        return compare_maps(probes, trained, maps, rank_correlation, params.within)

    top = list(correlations(0).values())
    return Measurement(
        correlations(len(cascade) - 1),
        {"top_layer_only": float(sum(top) / len(top)), "layers": float(len(cascade))},
    )
