"""The model precondition: accuracy on the probe set, reported first.

The explanations of a model that cannot classify the probes mean nothing.
"""

from __future__ import annotations

import numpy as np

from xaigate.cases import Case, Measurement
from xaigate.checks.listing import one_case
from xaigate.checks.registry import Direction, register_check
from xaigate.context import GateContext, is_variant


@register_check(
    "model_accuracy",
    direction=Direction.HIGHER,
    category="precondition",
    description="top-1 accuracy on the original probe images",
    worst=0.0,
    cases=one_case,
    per_explainer=False,
)
def model_accuracy(context: GateContext, case: Case) -> Measurement:
    model = context.models[case.model]
    probes = [probe for probe in context.probes[case.model] if not is_variant(probe)]
    predicted = context.predictions(case.model, np.stack([p.image for p in probes])).argmax(1)
    labels = np.array([model.classes.index(probe.label) for probe in probes])
    return Measurement(
        {probe.id: float(hit) for probe, hit in zip(probes, predicted == labels, strict=True)},
        {"chance": 1.0 / len(model.classes)},
        evidence={"labels": labels, "predicted": predicted},
    )
