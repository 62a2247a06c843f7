"""Class contrast: which (model, explainer) pairs it cannot fail for, shown on the maps, and
how a gate reports them."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from gate_runner import REFERENCE_CARD
from model_zoo_for_tests import (
    SIZE,
    ZOO_FILE,
    GrayFlatMLP,
    SigmoidCNN,
    SmallCNN,
    save_weights,
    seeded,
    write_card,
)
from model_zoo_for_tests import images as sample_images
from test_context import fast_content, written

from xaigate.checks.contrast import contrast_explainers, opposite_by_construction
from xaigate.context import GateContext
from xaigate.errors import UsageError
from xaigate.explainers import EXPLAINERS, Explainer, ExplainerConfig
from xaigate.explainers.base import register_explainer
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
        (["a", "b"], "logits", {"lime", "shap", "gradcam", "integrated_gradients"}),
        (["a", "b"], "probabilities", {"lime", "shap", "gradcam"}),
        (["a", "b"], "sigmoid", {"lime", "shap", "integrated_gradients", "gradcam"}),
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
    is this one negated, on every image. Grad-CAM's maps on the logits are not negated; its
    contrast is ruled out on other grounds (d = l1 - l0, see the tests below)."""
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
        "gradcam_pp": {},
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
    """A two-class CNN could be contrasted by Grad-CAM++: a configuration that leaves only
    LIME and SHAP would pass by construction, so it is refused, naming Grad-CAM++."""
    path = _contrast_only(tmp_path, ("lime", "shap"))
    with pytest.raises(
        UsageError,
        match=r"checks\.class_contrast: configured but applies to nothing.*p and 1 - p.*"
        "gradcam_pp could measure it",
    ):
        Gate(GateContext.open(path, [REFERENCE_CARD], smile_probes))
    gated = Gate(
        GateContext.open(
            _contrast_only(tmp_path, ("lime", "gradcam", "gradcam_pp")),
            [REFERENCE_CARD],
            smile_probes,
        )
    )
    status = {case.explainer: case.not_applicable for case in gated.cases("class_contrast")}
    assert status["gradcam_pp"] is None and "p and 1 - p" in (status["lime"] or "")
    assert "d = l1 - l0" in (status["gradcam"] or "")
    assert not any(case.model_limit for case in gated.cases("class_contrast"))


def test_training_two_logits_leaves_their_sum_as_initialised() -> None:
    """Why IG's and Grad-CAM's two-class contrast on logits measures the initialisation:
    softmax cross-entropy gives the two logits opposite gradients, so Adam moves the last
    layer's two rows oppositely and w0 + w1 (and b0 + b1) keep their initial values (to float
    rounding), while w1 - w0 is learnt."""
    torch.manual_seed(0)
    module = SmallCNN()
    head = module.head
    before_sum = (head.weight[0] + head.weight[1]).detach().clone()
    before_bias = (head.bias[0] + head.bias[1]).detach().clone()
    before_difference = (head.weight[1] - head.weight[0]).detach().clone()
    optimiser = torch.optim.Adam(module.parameters(), lr=0.05)
    images, labels = torch.rand(32, 3, *SIZE), torch.randint(0, 2, (32,))
    for _ in range(20):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(module(images), labels).backward()
        optimiser.step()
    after_sum = head.weight[0] + head.weight[1]
    torch.testing.assert_close(after_sum, before_sum, rtol=0, atol=1e-6)
    torch.testing.assert_close(head.bias[0] + head.bias[1], before_bias, rtol=0, atol=1e-6)
    assert (head.weight[1] - head.weight[0] - before_difference).abs().max() > 0.1


def test_the_reference_models_head_sum_is_its_initialisation() -> None:
    """The same on the shipped smile-cnn, trained by its recipe (OneCycle Adam, seed 0): its
    last layer's w0 + w1 and b0 + b1 are a fresh SmallCNN's of that seed, while w1 - w0 moved;
    and IG's two maps of it are near-negations (the contrast the rule rules out)."""
    from models.recipes.architectures import SmallCNN as ReferenceCNN

    torch.manual_seed(0)  # as models.recipes.face_cnn.train_face_cnn does before building it
    fresh = ReferenceCNN(num_classes=2).classifier
    state = torch.load(REFERENCE_CARD.parent / "weights.pt", weights_only=True)
    weight, bias = state["classifier.weight"], state["classifier.bias"]
    with torch.no_grad():
        torch.testing.assert_close(
            weight[0] + weight[1], fresh.weight[0] + fresh.weight[1], rtol=0, atol=1e-5
        )
        torch.testing.assert_close(bias.sum(), fresh.bias.sum(), rtol=0, atol=1e-5)
        assert (weight[1] - weight[0] - (fresh.weight[1] - fresh.weight[0])).abs().max() > 0.1
    model = load_model(load_card(REFERENCE_CARD))
    images, labels = faces_to_arrays(generate_faces(4, seed=5), TASK_CLASSES["smile"])
    explainer = EXPLAINERS["integrated_gradients"](
        EXPLAINERS["integrated_gradients"].config_model()
    )
    first = explainer.explain(model, images, labels, [0] * 4)
    other = explainer.explain(model, images, 1 - labels, [0] * 4)
    for a, b in zip(first, other, strict=True):
        assert rank_correlation(a.attribution, b.attribution) < -0.9


@pytest.mark.parametrize(
    ("architecture", "output", "num_classes"),
    [("SigmoidCNN", "sigmoid", 1), ("SoftmaxCNN", "probabilities", 2)],
)
def test_gradcam_maps_of_complementary_scores_never_overlap(
    tmp_path: Path, architecture: str, output: str, num_classes: int
) -> None:
    """One sigmoid unit (scores -z/2, z/2) or two probabilities (log p, log(1 - p)): the two
    classes' gradients are negative multiples of each other, so Grad-CAM's maps are relu(M)
    and relu(-M). Upsampled without blending (nearest), they never overlap and their rank
    correlation is at most 0 on every image, as the not-applicable reason says; Grad-CAM++'s
    are not so bound."""
    save_weights(seeded(SmallCNN, num_classes=num_classes), tmp_path)
    card = write_card(
        tmp_path,
        output=output,
        architecture=f"{ZOO_FILE}:{architecture}",
        architecture_kwargs={"num_classes": num_classes},
    )
    model = TorchModel(load_card(card))
    batch = sample_images(6, seed=2)
    gradcam = EXPLAINERS["gradcam"](EXPLAINERS["gradcam"].config_model(interpolation="nearest"))
    first = gradcam.explain(model, batch, np.zeros(6, dtype=np.int64), [0] * 6)
    other = gradcam.explain(model, batch, np.ones(6, dtype=np.int64), [0] * 6)
    for a, b in zip(first, other, strict=True):
        assert np.abs(a.attribution).max() + np.abs(b.attribution).max() > 0
        assert not ((a.attribution > 0) & (b.attribution > 0)).any()
        assert rank_correlation(a.attribution, b.attribution) <= 0


def _contrast_measurers(folder: Path, card: Path, smile_probes: Path) -> list[str]:
    folder.mkdir(exist_ok=True)
    context = GateContext.open(_contrast_only(folder, ("gradcam",)), [card], smile_probes)
    return contrast_explainers(context, next(iter(context.models)))


def _sigmoid_cnn(folder: Path) -> Path:
    """The card of a seeded SigmoidCNN with one output unit, written into `folder`."""
    save_weights(seeded(SigmoidCNN, num_classes=1), folder)
    return write_card(
        folder,
        name="sigmoid-cnn",
        output="sigmoid",
        architecture=f"{ZOO_FILE}:SigmoidCNN",
        architecture_kwargs={"num_classes": 1},
    )


def test_which_explainers_could_measure_a_models_contrast(
    tmp_path: Path, smile_probes: Path
) -> None:
    """Registered explainers, configured or not, that are not opposite by construction and
    can explain the model; a plug-in whose parameters have no defaults counts (fail closed)."""
    reference = _contrast_measurers(tmp_path / "r", REFERENCE_CARD, smile_probes)
    assert reference == ["gradcam_pp"]
    sigmoid = _sigmoid_cnn(tmp_path)
    assert _contrast_measurers(tmp_path / "s", sigmoid, smile_probes) == ["gradcam_pp"]
    # The same sigmoid CNN as TorchScript: no layer hooks, so Grad-CAM++ cannot explain it.
    scripted = tmp_path / "ts"
    scripted.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated
        module = seeded(SigmoidCNN, num_classes=1)
        torch.jit.trace(module, torch.rand(2, 3, *SIZE)).save(str(scripted / "model.pt"))
    card = write_card(
        scripted, output="sigmoid", format="torchscript", artifact="model.pt", architecture=None
    )
    assert _contrast_measurers(tmp_path / "t", card, smile_probes) == []

    class Required(ExplainerConfig):
        strength: float

    @register_explainer("needs_parameters")
    class NeedsParameters(Explainer):
        config_model = Required

        def explain(self, model, images, targets, seeds):  # noqa: ANN001, ANN201
            raise NotImplementedError

    try:
        found = _contrast_measurers(tmp_path / "p", sigmoid, smile_probes)
    finally:
        del EXPLAINERS["needs_parameters"]
    assert found == ["gradcam_pp", "needs_parameters"]


def test_one_sigmoid_unit_without_convolutions_rules_contrast_out(
    tmp_path: Path, smile_probes: Path
) -> None:
    """A flat-pixel MLP with one sigmoid unit: LIME, SHAP, IG and Grad-CAM are opposite by
    construction and Grad-CAM++ has no convolution to hook, so no explainer could measure its
    contrast. The model rules the check out (reported, with the reasons), as a two-class ONNX
    graph does; a sigmoid CNN, which Grad-CAM++ can explain, is refused the others alone, and
    the error names Grad-CAM++."""
    save_weights(seeded(GrayFlatMLP), tmp_path)
    mlp = write_card(
        tmp_path,
        name="flat-mlp",
        input={"channels": 1, "layout": "flat"},
        output="sigmoid",
        architecture=f"{ZOO_FILE}:GrayFlatMLP",
    )
    thresholds = _contrast_only(tmp_path, ("lime", "gradcam_pp", "integrated_gradients"))
    gate = Gate(GateContext.open(thresholds, [mlp], smile_probes))
    cases = {case.explainer: case for case in gate.cases("class_contrast")}
    assert set(cases) == {"lime", "gradcam_pp", "integrated_gradients"}
    assert all(case.not_applicable for case in cases.values())
    assert "no explainer can measure" in (cases["lime"].not_applicable or "")
    assert "-z/2 and z/2" in (cases["integrated_gradients"].not_applicable or "")
    assert cases["lime"].model_limit and cases["integrated_gradients"].model_limit
    assert "convolution" in (cases["gradcam_pp"].not_applicable or "")

    cnn_folder = tmp_path / "cnn"
    cnn_folder.mkdir()
    cnn = _sigmoid_cnn(cnn_folder)
    refused = _contrast_only(tmp_path, ("lime", "gradcam", "integrated_gradients"))
    with pytest.raises(
        UsageError,
        match=r"checks\.class_contrast: configured but applies to nothing.*gradcam_pp could "
        "measure it",
    ):
        Gate(GateContext.open(refused, [cnn], smile_probes))


def test_a_model_whose_contrast_only_opposite_maps_gate_is_refused_beside_another(
    tmp_path: Path, smile_probes: Path
) -> None:
    """Gated together, a two-class `probabilities` CNN (whose IG contrast is measured) and
    smile-cnn (two logits: IG's contrast there is ruled out, Grad-CAM++ could measure it): the
    check applies to one model, but the run is refused for the other rather than dropping its
    contrast."""
    save_weights(seeded(SmallCNN), tmp_path)
    softmax = write_card(
        tmp_path,
        name="softmax-cnn",
        output="probabilities",
        architecture=f"{ZOO_FILE}:SoftmaxCNN",
    )
    thresholds = _contrast_only(tmp_path, ("integrated_gradients",))
    with pytest.raises(
        UsageError,
        match=r"checks\.class_contrast: configured but applies to nothing for model "
        r"'smile-cnn' \(two logits.*gradcam_pp could measure it\)",
    ):
        Gate(GateContext.open(thresholds, [REFERENCE_CARD, softmax], smile_probes))
    alone = Gate(GateContext.open(thresholds, [softmax], smile_probes))
    assert [case.not_applicable for case in alone.cases("class_contrast")] == [None]
