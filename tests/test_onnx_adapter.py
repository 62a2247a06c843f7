"""OnnxModel: the export of the PyTorch reference, run as a black box by onnxruntime.

LIME only calls `predict_proba`, and under one seed it draws the same superpixels and the same
perturbations for both models; the export's probabilities differ from PyTorch's only by float
rounding (about 1e-8: other kernels, other summation orders), so the ridge fits, and the maps,
agree to float tolerance rather than bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from gate_runner import fast_thresholds

from models.recipes.onnx_export import export_onnx
from xaigate.context import GateContext
from xaigate.errors import UsageError
from xaigate.explainers import EXPLAINERS
from xaigate.gate import Gate
from xaigate.models.card import load_card
from xaigate.models.loading import check_model_outputs, load_model
from xaigate.models.onnx_adapter import OnnxModel
from xaigate.models.randomisation import cascading_randomisations
from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces

ROOT = Path(__file__).resolve().parents[1]
TORCH_CARD = ROOT / "models" / "smile-cnn" / "model.yaml"
ONNX_CARD = ROOT / "models" / "smile-onnx" / "model.yaml"
GRADIENT_EXPLAINERS = ("gradcam", "gradcam_pp", "integrated_gradients")


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    return faces_to_arrays(generate_faces(8, seed=22), TASK_CLASSES["smile"])


@pytest.fixture(scope="module")
def models() -> tuple[Any, OnnxModel]:
    onnx_model = load_model(load_card(ONNX_CARD))
    assert isinstance(onnx_model, OnnxModel)
    return load_model(load_card(TORCH_CARD)), onnx_model


def onnx_card(folder: Path, **input_spec: Any) -> Path:
    card = yaml.safe_load(ONNX_CARD.read_text())
    card["input"].update(input_spec)
    card["artifact"] = str(ONNX_CARD.parent / "model.onnx")
    path = folder / "model.yaml"
    path.write_text(yaml.safe_dump(card))
    return path


def test_export_gives_the_torch_probabilities(models: tuple[Any, OnnxModel], faces: Any) -> None:
    torch_model, onnx_model = models
    batch, labels = faces
    check_model_outputs(onnx_model, batch)
    got = onnx_model.predict_proba(batch)
    np.testing.assert_allclose(got, torch_model.predict_proba(batch), atol=1e-6, rtol=0)
    assert (got.argmax(1) == labels).all()


def test_export_gives_the_torch_lime_maps_under_the_same_seed(
    models: tuple[Any, OnnxModel], faces: Any
) -> None:
    batch, labels = faces
    lime = EXPLAINERS["lime"](EXPLAINERS["lime"].config_model(num_samples=200))
    seeds = [5, 6]
    torch_maps, onnx_maps = (lime.explain(m, batch[:2], labels[:2], seeds) for m in models)
    for expected, got in zip(torch_maps, onnx_maps, strict=True):
        scale = np.abs(expected.attribution).max()
        np.testing.assert_allclose(got.attribution, expected.attribution, atol=1e-5 * scale)
        assert got.seed == expected.seed


def test_gradient_explainers_and_randomisation_are_not_applicable(
    models: tuple[Any, OnnxModel],
) -> None:
    _, onnx_model = models
    for name in GRADIENT_EXPLAINERS:
        reason = EXPLAINERS[name](EXPLAINERS[name].config_model()).not_applicable_reason(onnx_model)
        assert reason is not None and "black boxes" in reason, (name, reason)
    for name in ("lime", "shap"):
        assert (
            EXPLAINERS[name](EXPLAINERS[name].config_model()).not_applicable_reason(onnx_model)
            is None
        )
    from xaigate.models.capabilities import NotApplicable

    with pytest.raises(NotApplicable, match="ONNX graphs .* cannot be re-initialised"):
        cascading_randomisations(onnx_model, 0)


def test_input_shape_that_does_not_fit_the_card_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(
        UsageError, match=r"model\.yaml: input: .*\[.*3, 64, 64\].*\(N, 1, 64, 64\)"
    ):
        load_model(load_card(onnx_card(tmp_path, channels=1)))
    with pytest.raises(UsageError, match=r"input: .*layout NHWC\) says \(N, 64, 64, 3\)"):
        load_model(load_card(onnx_card(tmp_path, layout="NHWC")))


def test_fixed_batch_export_is_refused(tmp_path: Path) -> None:
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64 * 64, 2)).eval()
    torch.onnx.export(module, (torch.zeros(1, 3, 64, 64),), str(tmp_path / "m.onnx"), dynamo=False)
    card = yaml.safe_load(ONNX_CARD.read_text())
    card["artifact"] = "m.onnx"
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(card))
    with pytest.raises(UsageError, match="fixed batch size 1 .* dynamic batch axis"):
        load_model(load_card(tmp_path / "model.yaml"))


def test_file_that_is_not_onnx(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"nonsense")
    card = yaml.safe_load(ONNX_CARD.read_text())
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(card))
    with pytest.raises(UsageError, match=r"artifact: .*model\.onnx is not an ONNX model"):
        load_model(load_card(tmp_path / "model.yaml"))


def test_export_recipe_is_reproducible(tmp_path: Path) -> None:
    export_onnx(load_card(TORCH_CARD), tmp_path / "model.onnx")
    assert (tmp_path / "model.onnx").read_bytes() == (ONNX_CARD.parent / "model.onnx").read_bytes()


def gate_thresholds(tmp_path: Path, **changes: Any) -> Path:
    content = yaml.safe_load(fast_thresholds(tmp_path).read_text())
    content["explainers"]["integrated_gradients"] = {}
    content["checks"]["randomisation_sanity"] = {"max": 0.7, "params": {"images": 2}}
    for check, override in changes.items():
        content["checks"][check].setdefault("overrides", []).append(override)
    path = tmp_path / "thresholds-onnx.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def test_gradient_explainers_are_reported_not_applicable_in_the_gate(
    tmp_path: Path, smile_probes: Path
) -> None:
    gate = Gate(GateContext.open(gate_thresholds(tmp_path), [ONNX_CARD], smile_probes))
    gradcam = [case for case in gate.cases("region_focus") if case.explainer == "gradcam"]
    assert gradcam and all(case.not_applicable for case in gradcam)
    assert all("black boxes" in (case.not_applicable or "") for case in gradcam)
    lime = [case for case in gate.cases("region_focus") if case.explainer == "lime"]
    assert lime and all(case.not_applicable is None for case in lime)
    # Randomisation applies to nothing on an ONNX graph: reported, not an error.
    randomised = gate.cases("randomisation_sanity")
    assert randomised and all(case.model_limit for case in randomised)
    # Nor does class contrast on this two-class model: LIME's maps of its two classes are
    # each other's negation, and the gradient explainers cannot run.
    contrast = gate.cases("class_contrast")
    explainers = {"lime", "gradcam", "gradcam_pp", "integrated_gradients"}
    assert {case.explainer for case in contrast} == explainers
    assert all(case.not_applicable for case in contrast)
    [lime] = [case for case in contrast if case.explainer == "lime"]
    assert lime.model_limit and "p and 1 - p" in (lime.not_applicable or "")


def test_override_demanding_a_gradient_explainer_for_onnx_is_a_usage_error(
    tmp_path: Path, smile_probes: Path
) -> None:
    demand = {"model": "smile-onnx", "explainer": "gradcam", "min": 3.0}
    path = gate_thresholds(tmp_path, region_focus=demand)
    with pytest.raises(
        UsageError,
        match=r"checks\.region_focus\.overrides\.\d+: sets a threshold for model 'smile-onnx' and "
        r"explainer 'gradcam', which cannot run: .*black boxes",
    ):
        Gate(GateContext.open(path, [ONNX_CARD], smile_probes))


def test_override_demanding_randomisation_of_onnx_is_a_usage_error(
    tmp_path: Path, smile_probes: Path
) -> None:
    path = gate_thresholds(tmp_path, randomisation_sanity={"model": "smile-onnx", "max": 0.5})
    with pytest.raises(UsageError, match=r"randomisation_sanity\.overrides\.0: .*cannot be re-"):
        Gate(GateContext.open(path, [ONNX_CARD], smile_probes))


def test_override_for_an_explainer_that_runs_is_fine(tmp_path: Path, smile_probes: Path) -> None:
    demand = {"model": "smile-onnx", "explainer": "lime", "min": 3.0}
    gate = Gate(
        GateContext.open(gate_thresholds(tmp_path, region_focus=demand), [ONNX_CARD], smile_probes)
    )
    lime = [case for case in gate.cases("region_focus") if case.explainer == "lime"]
    assert lime and all(case.not_applicable is None for case in lime)


def test_thresholds_whose_explainers_all_need_gradients_are_a_usage_error(
    tmp_path: Path, smile_probes: Path
) -> None:
    content = yaml.safe_load(fast_thresholds(tmp_path).read_text())
    content["explainers"] = {"gradcam": {}}
    content["checks"] = {
        name: content["checks"][name] for name in ("model_accuracy", "region_focus")
    }
    path = tmp_path / "gradcam-only.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(
        UsageError, match=r"checks\.region_focus: configured but applies to nothing .*black boxes"
    ):
        Gate(GateContext.open(path, [ONNX_CARD], smile_probes))
