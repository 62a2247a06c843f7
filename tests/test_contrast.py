"""Class contrast: which (model, explainer) pairs it cannot fail for, shown on the maps, and
how a gate reports them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gate_runner import REFERENCE_CARD
from model_zoo_for_tests import (
    ZOO_FILE,
    GrayFlatMLP,
    SigmoidCNN,
    save_weights,
    seeded,
    write_card,
)
from model_zoo_for_tests import images as sample_images
from test_context import fast_content, written

from xaigate.checks.contrast import opposite_by_construction
from xaigate.context import GateContext
from xaigate.errors import UsageError
from xaigate.explainers import EXPLAINERS
from xaigate.explainers.lime_explainer import LimeConfig
from xaigate.explainers.shap_explainer import ShapConfig
from xaigate.gate import Gate
from xaigate.metrics.similarity import rank_correlation
from xaigate.models.card import load_card
from xaigate.models.loading import load_model
from xaigate.models.torch_adapter import TorchModel
from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces

EXPLAINER_NAMES = ("lime", "shap", "gradcam", "gradcam_pp", "integrated_gradients")


@pytest.mark.parametrize(
    ("classes", "output", "opposite"),
    [
        (["a", "b"], "logits", {"lime", "shap"}),
        (["a", "b"], "probabilities", {"lime", "shap"}),
        (["a", "b"], "sigmoid", {"lime", "shap", "integrated_gradients"}),
        (["a", "b", "c"], "logits", set()),
    ],
)
def test_which_explainers_are_opposite_by_construction(
    classes: list[str], output: str, opposite: set[str]
) -> None:
    explainers = {
        name: EXPLAINERS[name](EXPLAINERS[name].config_model()) for name in EXPLAINER_NAMES
    }
    model = SimpleNamespace(classes=classes, card=SimpleNamespace(output=output))
    context = SimpleNamespace(models={"m": model}, explainers=explainers)
    found = {n for n in EXPLAINER_NAMES if opposite_by_construction(context, "m", n)}  # type: ignore[arg-type]
    assert found == opposite


def test_integrated_gradients_maps_of_a_sigmoid_unit_are_negated(tmp_path: Path) -> None:
    """One sigmoid unit: IG follows the scores -z/2 and z/2, so the two classes' maps are each
    other's negation, as its contrast's not-applicable reason says."""
    module = seeded(GrayFlatMLP)
    save_weights(module, tmp_path)
    card = write_card(
        tmp_path,
        input={"channels": 1, "layout": "flat"},
        output="sigmoid",
        architecture=f"{ZOO_FILE}:GrayFlatMLP",
    )
    model = TorchModel(load_card(card))
    batch = sample_images(3)
    explainer = EXPLAINERS["integrated_gradients"](
        EXPLAINERS["integrated_gradients"].config_model()
    )
    first = explainer.explain(model, batch, np.zeros(3, dtype=np.int64), [0, 0, 0])
    other = explainer.explain(model, batch, np.ones(3, dtype=np.int64), [0, 0, 0])
    for a, b in zip(first, other, strict=True):
        assert np.abs(a.attribution).max() > 0
        np.testing.assert_array_equal(a.attribution, -b.attribution)


def test_two_class_probability_maps_are_negated_and_gradcam_maps_are_not() -> None:
    """Why LIME's and SHAP's contrast is not applicable on two classes: the other class's map
    is this one negated, on every image; Grad-CAM, on the logits, gives maps that are not."""
    model = load_model(load_card(REFERENCE_CARD))
    images, labels = faces_to_arrays(generate_faces(3, seed=5), TASK_CLASSES["smile"])
    seeds = [11, 12, 13]
    configs = {
        "lime": LimeConfig(num_samples=200),
        "shap": ShapConfig(max_evals=100),
        "gradcam": EXPLAINERS["gradcam"].config_model(),
    }
    for name, config in configs.items():
        explainer = EXPLAINERS[name](config)
        first = explainer.explain(model, images, labels, seeds)
        other = explainer.explain(model, images, 1 - labels, seeds)
        for a, b in zip(first, other, strict=True):
            negated = np.allclose(a.attribution, -b.attribution, atol=1e-6)
            assert negated == (name != "gradcam"), name
            if negated:
                assert rank_correlation(a.attribution, b.attribution) < -0.999


def _contrast_only(tmp_path: Path, explainers: tuple[str, ...]) -> Path:
    """The fast thresholds with `explainers` (SHAP cut to 100 evaluations) and, beside the
    precondition, class contrast alone."""
    content = fast_content(tmp_path)
    available = {
        "integrated_gradients": {},
        **content["explainers"],
        "shap": {"max_evals": 100},
    }
    content["explainers"] = {name: available[name] for name in explainers}
    checks = ("model_accuracy", "class_contrast")
    content["checks"] = {name: content["checks"][name] for name in checks}
    return written(tmp_path, content)


def test_contrast_gated_only_through_probabilities_is_a_usage_error(
    tmp_path: Path, smile_probes: Path
) -> None:
    """A two-class model that has gradients could be contrasted by a gradient explainer: a
    configuration that leaves only LIME and SHAP would pass by construction, so it is refused."""
    path = _contrast_only(tmp_path, ("lime", "shap"))
    with pytest.raises(
        UsageError, match=r"checks\.class_contrast: configured but applies to nothing.*p and 1 - p"
    ):
        Gate(GateContext.open(path, [REFERENCE_CARD], smile_probes))
    gated = Gate(
        GateContext.open(
            _contrast_only(tmp_path, ("lime", "gradcam")), [REFERENCE_CARD], smile_probes
        )
    )
    status = {case.explainer: case.not_applicable for case in gated.cases("class_contrast")}
    assert status["gradcam"] is None and "p and 1 - p" in (status["lime"] or "")
    assert not any(case.model_limit for case in gated.cases("class_contrast"))


def test_one_sigmoid_unit_without_convolutions_rules_contrast_out(
    tmp_path: Path, smile_probes: Path
) -> None:
    """A flat-pixel MLP with one sigmoid unit: LIME, SHAP and IG are opposite by construction
    and Grad-CAM has no convolution to hook, so no explainer could measure its contrast. The
    model rules the check out (reported, with the reasons), as a two-class ONNX graph does;
    a sigmoid CNN, which Grad-CAM can explain, is still refused LIME and IG alone."""
    save_weights(seeded(GrayFlatMLP), tmp_path)
    mlp = write_card(
        tmp_path,
        name="flat-mlp",
        input={"channels": 1, "layout": "flat"},
        output="sigmoid",
        architecture=f"{ZOO_FILE}:GrayFlatMLP",
    )
    thresholds = _contrast_only(tmp_path, ("lime", "gradcam", "integrated_gradients"))
    gate = Gate(GateContext.open(thresholds, [mlp], smile_probes))
    cases = {case.explainer: case for case in gate.cases("class_contrast")}
    assert set(cases) == {"lime", "gradcam", "integrated_gradients"}
    assert all(case.not_applicable for case in cases.values())
    assert "no explainer can measure" in (cases["lime"].not_applicable or "")
    assert "-z/2 and z/2" in (cases["integrated_gradients"].not_applicable or "")
    assert cases["lime"].model_limit and cases["integrated_gradients"].model_limit
    assert "convolution" in (cases["gradcam"].not_applicable or "")

    cnn_folder = tmp_path / "cnn"
    cnn_folder.mkdir()
    save_weights(seeded(SigmoidCNN, num_classes=1), cnn_folder)
    cnn = write_card(
        cnn_folder,
        name="sigmoid-cnn",
        output="sigmoid",
        architecture=f"{ZOO_FILE}:SigmoidCNN",
        architecture_kwargs={"num_classes": 1},
    )
    with pytest.raises(UsageError, match=r"checks\.class_contrast: configured but applies to"):
        Gate(
            GateContext.open(
                _contrast_only(tmp_path, ("lime", "integrated_gradients")), [cnn], smile_probes
            )
        )
