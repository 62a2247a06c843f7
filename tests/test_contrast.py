"""Class contrast: which (model, explainer) pairs it cannot fail for, shown on the maps."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from gate_runner import REFERENCE_CARD

from xaigate.checks.contrast import opposite_by_construction
from xaigate.explainers import EXPLAINERS
from xaigate.explainers.lime_explainer import LimeConfig
from xaigate.metrics.similarity import rank_correlation
from xaigate.models.card import load_card
from xaigate.models.loading import load_model
from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces

EXPLAINER_NAMES = ("lime", "shap", "gradcam", "gradcam_pp", "integrated_gradients")


def _context(classes: list[str], output: str) -> SimpleNamespace:
    model = SimpleNamespace(classes=classes, card=SimpleNamespace(output=output))
    explainers = {
        name: EXPLAINERS[name](EXPLAINERS[name].config_model()) for name in EXPLAINER_NAMES
    }
    return SimpleNamespace(models={"m": model}, explainers=explainers)


@pytest.mark.parametrize(
    ("classes", "output", "opposite"),
    [
        (["a", "b"], "logits", {"lime", "shap"}),
        (["a", "b"], "probabilities", {"lime", "shap"}),
        (["a", "b"], "sigmoid", set(EXPLAINER_NAMES)),
        (["a", "b", "c"], "logits", set()),
        (["a", "b", "c"], "probabilities", set()),
    ],
)
def test_which_pairs_are_opposite_by_construction(
    classes: list[str], output: str, opposite: set[str]
) -> None:
    context = _context(classes, output)
    found = {
        name
        for name in EXPLAINER_NAMES
        if opposite_by_construction(context, "m", name)  # type: ignore[arg-type]
    }
    assert found == opposite


def test_two_class_lime_maps_are_negated_and_gradcam_maps_are_not() -> None:
    """What makes the contrast of LIME on a two-class model not applicable: the other class's
    map is this one negated (rank correlation -1 on every image), while Grad-CAM, on the
    logits, gives maps that could agree."""
    model = load_model(load_card(REFERENCE_CARD))
    images, labels = faces_to_arrays(generate_faces(3, seed=5), TASK_CLASSES["smile"])
    seeds = [11, 12, 13]
    for name, config in (("lime", LimeConfig(num_samples=200)), ("gradcam", None)):
        explainer = EXPLAINERS[name](config or EXPLAINERS[name].config_model())
        first = explainer.explain(model, images, labels, seeds)
        other = explainer.explain(model, images, 1 - labels, seeds)
        correlations = [
            rank_correlation(a.attribution, b.attribution)
            for a, b in zip(first, other, strict=True)
        ]
        if name == "lime":
            for a, b in zip(first, other, strict=True):
                np.testing.assert_allclose(a.attribution, -b.attribution, atol=1e-6)
            assert all(value < -0.999 for value in correlations), correlations
        else:
            assert not all(value < -0.999 for value in correlations), correlations
