"""Class contrast: the explanations of one image for two different classes must differ."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xaigate.cases import Case, Measurement, compare_maps
from xaigate.checks.registry import Direction, register_check
from xaigate.context import CONTROLS, GateContext
from xaigate.explainers import EXPLAINERS, Explainer
from xaigate.metrics.similarity import rank_correlation
from xaigate.models.adapter import ModelAdapter
from xaigate.thresholds import PAIR_JOIN as PAIR


class ContrastParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    within: str | None = Field(
        None,
        description="compare the maps only inside this probe region (the object, e.g. face); "
        "default the whole image. Both classes' maps are low on the background, which says "
        "nothing about the classes and lifts a whole-image correlation towards 1",
    )


def opposite_by_construction(context: GateContext, model: str, explainer: str) -> str | None:
    """Why `explainer`'s maps of `model`'s two classes are opposite whatever the model has
    learnt, so that their contrast cannot fail; None when they are not.

    A two-class model's probabilities are p and 1 - p (for every kind of output: logits,
    probabilities or one sigmoid unit), so an explainer of the probabilities (LIME, SHAP) gives
    one class the other's map negated: an exact rank correlation of -1 (tests/test_contrast.py;
    -1.000 for both on smile-cnn). With one sigmoid unit the class scores are -z/2 and z/2
    (`_Scores`), so an explainer linear in the score (IG) negates too. Those scores, and a
    two-class `probabilities` card's log p and log(1 - p), have gradients that are negative
    multiples of each other at every image, so Grad-CAM gives relu(M) and relu(-M): maps that
    overlap only where upsampling blends them, with a rank correlation of at most 0 before it
    (disjoint supports). On two logits, softmax reads only their difference d = l1 - l0, so
    a final linear layer trained through it (softmax cross-entropy, with or without label
    smoothing: every zoo model and the reference ones) gets opposite gradients on its two rows
    and keeps w0 + w1 and b0 + b1 as initialised (weight decay only shrinks them; smile-cnn's
    match a fresh SmallCNN of its seed to 4e-7, tested). l0 + l1 is then an untrained
    projection of the learnt features: IG's and Grad-CAM's maps of the two classes are those of
    d and -d plus that untrained part, and their contrast measures the initialisation, not what
    the model learnt (no trained two-class zoo model's per-image Grad-CAM contrast above 0, and
    IG's at about -0.88 or below). A model whose two logits are trained otherwise (a binary
    cross-entropy per logit) is not told apart by the card, so the rule assumes softmax
    training, as `output: logits` says. Grad-CAM++, which weights only positive gradients,
    stays gated: it tells the evidence for d from the evidence against it.
    """
    return _opposite(context.models[model], type(context.explainers[explainer]), explainer)


def _opposite(adapter: ModelAdapter, explainer: type[Explainer], name: str) -> str | None:
    """`opposite_by_construction` for an explainer class, configured or not."""
    if len(adapter.classes) != 2:
        return None
    if explainer.explains_probabilities:
        return (
            f"two classes: {name} explains probabilities, p and 1 - p, so one class's map "
            "is the other's negated and their contrast cannot fail"
        )
    output = adapter.card.output
    if output == "sigmoid" and explainer.linear_in_score:
        return (
            f"one sigmoid unit: the class scores are -z/2 and z/2 and {name} is linear in "
            "them, so one class's map is the other's negated and their contrast cannot fail"
        )
    if output in ("sigmoid", "probabilities") and explainer.rectified_linear_in_gradient:
        scores = "-z/2 and z/2" if output == "sigmoid" else "log p and log(1 - p)"
        return (
            f"two classes scored {scores}, whose gradients are negative multiples of each "
            f"other: {name} gives relu(M) and relu(-M), maps that overlap only where "
            "upsampling blends them (rank correlation at most 0), so their contrast cannot fail"
        )
    if output == "logits" and (explainer.linear_in_score or explainer.rectified_linear_in_gradient):
        return (
            "two logits: softmax reads only d = l1 - l0, so training through it leaves the "
            f"last layer's w0 + w1 as initialised and the two maps of {name} are those of d and "
            "-d plus that untrained part: their contrast measures the initialisation, not what "
            "the model learnt"
        )
    return None


def contrast_explainers(context: GateContext, model: str) -> list[str]:
    """The registered explainers (controls aside), configured or not, whose maps of `model`'s
    two or more classes could differ: those not opposite by construction on it that can
    explain it. Empty when the model itself rules the check out: a two-class model that
    Grad-CAM++ cannot explain (an ONNX graph, no gradients; an MLP, no convolution; a
    TorchScript module, no layer hooks)."""
    adapter = context.models[model]
    found: list[str] = []
    for name, explainer in EXPLAINERS.items():
        if name in CONTROLS or _opposite(adapter, explainer, name) is not None:
            continue
        if name in context.explainers:
            instance = context.explainers[name]
        else:
            try:
                instance = explainer(explainer.config_model())
            except ValidationError:
                # A plug-in whose parameters have no defaults: it might measure the contrast,
                # so the model is not taken to rule the check out (fail closed).
                found.append(name)
                continue
        if instance.not_applicable_reason(adapter) is None:
            found.append(name)
    return found


def _pair_cases(context: GateContext, model: str, explainer: str, check: str) -> list[Case]:
    adapter = context.models[model]
    classes = adapter.classes
    # An explainer that cannot explain the model at all keeps that reason (the gate gives it).
    explainable = context.explainers[explainer].not_applicable_reason(adapter) is None
    reason = opposite_by_construction(context, model, explainer) if explainable else None
    ruled_out_by_model = False
    if reason is not None:
        # When no explainer could give a contrast that can fail here, the model rules the
        # check out (reported, not a usage error); when one could, a configuration that
        # gates contrast only through opposite maps is refused, and the reason names it.
        measurers = contrast_explainers(context, model)
        ruled_out_by_model = not measurers
        reason += (
            f"; {', '.join(measurers)} could measure it"
            if measurers
            else "; no explainer can measure this model's contrast"
        )
    return [
        Case(model, explainer, check, f"{first}{PAIR}{second}", "", reason, ruled_out_by_model)
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
