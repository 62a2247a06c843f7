"""KerasModel: safe loading, refusals, input conversion, target layers, and parity with PyTorch.

The parity twin is the committed PyTorch reference (models/smile-cnn) with its weights copied
into the same layers in Keras (models/recipes/keras_cnn.py): the same function in two
frameworks, so probabilities and gradient maps must agree.
"""

from __future__ import annotations

import os

os.environ.setdefault("XAIGATE_TF_THREADS", "1")  # a shared machine: one TensorFlow thread

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from model_zoo_for_tests import images

from models.recipes.keras_cnn import copy_torch_weights, keras_small_cnn
from xaigate.errors import UsageError
from xaigate.explainers import EXPLAINERS
from xaigate.metrics.similarity import rank_correlation
from xaigate.models import keras_adapter
from xaigate.models.capabilities import NotApplicable
from xaigate.models.card import load_card
from xaigate.models.keras_adapter import KerasModel
from xaigate.models.loading import check_model_outputs, load_model
from xaigate.models.randomisation import cascading_randomisations
from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces

ROOT = Path(__file__).resolve().parents[1]
TORCH_CARD = ROOT / "models" / "smile-cnn" / "model.yaml"
KERAS_CARD = ROOT / "models" / "smile-keras" / "model.yaml"
SIZE = (64, 64)


def keras_card(folder: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "name": "twin",
        "framework": "keras",
        "format": "keras",
        "artifact": "model.keras",
        "input": {"size": list(SIZE), "layout": "NHWC", "range": [0, 1]},
        "output": "logits",
        "classes": ["not_smile", "smile"],
    }
    data.update(overrides)
    path = folder / "model.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not None}))
    return path


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    return faces_to_arrays(generate_faces(16, seed=21), TASK_CLASSES["smile"])


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, KerasModel]:
    """(the PyTorch reference, its Keras twin loaded from a saved .keras file)."""
    torch_model = load_model(load_card(TORCH_CARD))
    folder = tmp_path_factory.mktemp("twin")
    copy_torch_weights(torch_model.module, keras_small_cnn()).save(folder / "model.keras")
    return torch_model, KerasModel(load_card(keras_card(folder, target_layer="conv4")))


def test_twin_gives_the_same_probabilities(twins: tuple[Any, KerasModel], faces: Any) -> None:
    torch_model, keras_model = twins
    batch, labels = faces
    expected = torch_model.predict_proba(batch)
    got = keras_model.predict_proba(batch)
    assert got.shape == (16, 2) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert (got.argmax(1) == labels).mean() == 1.0


@pytest.mark.parametrize("explainer", ["gradcam", "gradcam_pp", "integrated_gradients"])
def test_twin_gives_the_same_gradient_maps(
    twins: tuple[Any, KerasModel], faces: Any, explainer: str
) -> None:
    torch_model, keras_model = twins
    batch, labels = faces
    method = EXPLAINERS[explainer](EXPLAINERS[explainer].config_model())
    for model in twins:
        method.prepare(model, batch)
    seeds = [0] * len(batch)
    expected = method.explain(torch_model, batch, labels, seeds)
    got = method.explain(keras_model, batch, labels, seeds)
    for torch_map, keras_map in zip(expected, got, strict=True):
        assert keras_map.attribution.shape == SIZE and keras_map.attribution.dtype == np.float32
        assert keras_map.target == torch_map.target and keras_map.seed is None
        correlation = rank_correlation(torch_map.attribution, keras_map.attribution)
        assert correlation >= 0.99, (explainer, correlation)
        # Same sign convention: Grad-CAM maps are rectified, IG's are signed sums.
        assert np.sign(keras_map.attribution.sum()) == np.sign(torch_map.attribution.sum())


def test_integrated_gradients_mean_baseline_matches_torch(
    twins: tuple[Any, KerasModel], faces: Any
) -> None:
    batch, labels = faces
    config = EXPLAINERS["integrated_gradients"].config_model(baseline="mean", n_steps=8)
    method = EXPLAINERS["integrated_gradients"](config)
    maps = []
    for model in twins:
        method.prepare(model, batch)
        maps.append(method.explain(model, batch[:4], labels[:4], [0] * 4))
    for torch_map, keras_map in zip(*maps, strict=True):
        assert rank_correlation(torch_map.attribution, keras_map.attribution) >= 0.99


def test_reference_keras_model_loads_and_fits_its_card(faces: Any) -> None:
    model = load_model(load_card(KERAS_CARD))
    assert isinstance(model, KerasModel) and model.name == "smile-keras"
    batch, labels = faces
    check_model_outputs(model, batch)
    assert (model.predict_proba(batch).argmax(1) == labels).mean() == 1.0
    assert model.target_layer().name == "conv4"
    assert len(model.digest) == 64


def test_legacy_h5_is_refused_with_how_to_convert(tmp_path: Path) -> None:
    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n")
    with pytest.raises(UsageError, match=r"model\.yaml:\d+: artifact: .*model\.h5 is a legacy"):
        load_card(keras_card(tmp_path, artifact="model.h5"))
    with pytest.raises(UsageError, match=r"\.save\(\"model\.keras\"\)"):
        load_card(keras_card(tmp_path, artifact="model.h5"))


def test_format_must_be_the_frameworks(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(b"")
    with pytest.raises(UsageError, match="format: 'state_dict' is not a keras format"):
        load_card(keras_card(tmp_path, format="state_dict"))


def test_old_keras_is_refused_naming_the_installed_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    monkeypatch.setattr(keras, "__version__", "3.13.1")
    with pytest.raises(UsageError, match=r"Keras 3\.13\.2 or later.*installed: keras 3\.13\.1"):
        keras_adapter.import_keras(tmp_path / "model.yaml")


def test_other_keras_backend_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(UsageError, match="needs KERAS_BACKEND=tensorflow.*'jax'"):
        keras_adapter.import_keras(tmp_path / "model.yaml")


def test_file_that_is_not_a_keras_archive(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(
        UsageError, match=r"artifact: .*model\.keras could not be loaded .*safe_mode"
    ):
        load_model(load_card(keras_card(tmp_path)))


def test_unknown_target_layer_lists_the_convolutions(tmp_path: Path) -> None:
    keras_small_cnn().save(tmp_path / "model.keras")
    model = load_model(load_card(keras_card(tmp_path, target_layer="conv9")))
    with pytest.raises(UsageError, match="target_layer: the model has no layer 'conv9'.*conv4"):
        model.target_layer()
    reason = EXPLAINERS["gradcam"](EXPLAINERS["gradcam"].config_model())
    with pytest.raises(UsageError):
        reason.not_applicable_reason(model)


def nested_model() -> Any:
    """A convolutional body as a nested functional model inside the classifier."""
    keras = keras_adapter.import_keras("test")
    layers = keras.layers
    inner_in = keras.Input((*SIZE, 3))
    inner_out = layers.Conv2D(4, 3, padding="same", name="inner_conv")(inner_in)
    body = keras.Model(inner_in, layers.ReLU()(inner_out), name="body")
    outer_in = keras.Input((*SIZE, 3))
    pooled = layers.GlobalAveragePooling2D()(body(outer_in))
    return keras.Model(outer_in, layers.Dense(2, name="head")(pooled), name="outer")


def test_last_convolution_is_found_inside_nested_models(tmp_path: Path) -> None:
    nested_model().save(tmp_path / "model.keras")
    model = load_model(load_card(keras_card(tmp_path)))
    assert model.target_layer().name == "inner_conv"
    named = load_model(load_card(keras_card(tmp_path, target_layer="body/inner_conv")))
    assert named.target_layer().name == "inner_conv"
    batch = images(3, SIZE)
    gradcam = EXPLAINERS["gradcam"](EXPLAINERS["gradcam"].config_model())
    maps = gradcam.explain(model, batch, np.array([0, 1, 1]), [0, 0, 0])
    assert all(m.attribution.shape == SIZE and np.all(m.attribution >= 0) for m in maps)
    # The capture is undone: the layer is called as before.
    assert "call" not in model.target_layer().__dict__


def test_model_without_convolution_is_not_applicable_for_cam(tmp_path: Path) -> None:
    keras = keras_adapter.import_keras("test")
    flat = keras.Sequential(
        [keras.Input((*SIZE, 3)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    flat.save(tmp_path / "model.keras")
    model = load_model(load_card(keras_card(tmp_path)))
    with pytest.raises(NotApplicable, match="no convolution layer"):
        model.target_layer()
    gradcam = EXPLAINERS["gradcam"](EXPLAINERS["gradcam"].config_model())
    assert "no convolution layer" in (gradcam.not_applicable_reason(model) or "")
    ig = EXPLAINERS["integrated_gradients"](EXPLAINERS["integrated_gradients"].config_model())
    assert ig.not_applicable_reason(model) is None


@pytest.mark.parametrize(
    ("input_spec", "output", "keras_head"),
    [
        ({"channels": 1}, "logits", None),
        ({"layout": "NCHW"}, "logits", None),
        ({"range": [0, 255], "mean": [1, 2, 3], "std": [2, 2, 2]}, "logits", None),
        ({}, "probabilities", "softmax"),
        ({}, "sigmoid", "sigmoid"),
    ],
)
def test_input_conversion_and_outputs_match_the_torch_conventions(
    tmp_path: Path, input_spec: dict[str, Any], output: str, keras_head: str | None
) -> None:
    keras = keras_adapter.import_keras("test")
    channels = input_spec.get("channels", 3)
    layout = input_spec.get("layout", "NHWC")
    shape = (channels, *SIZE) if layout == "NCHW" else (*SIZE, channels)
    units = 1 if output == "sigmoid" else 2
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation=keras_head),
        ]
    )
    model.save(tmp_path / "model.keras")
    spec = {"size": list(SIZE), "layout": layout, "range": [0, 1], **input_spec}
    adapter = load_model(load_card(keras_card(tmp_path, input=spec, output=output)))
    batch = images(4, SIZE)
    converted = adapter.model_input(adapter.tf.constant(batch)).numpy()
    from xaigate.models.preprocess import to_model_input

    np.testing.assert_allclose(converted, to_model_input(batch, adapter.card.input), rtol=1e-6)
    probabilities = adapter.predict_proba(batch)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    # Scores are the log of the probabilities up to a per-row constant (softmax of scores = p).
    scores = adapter.scores(adapter.tf.constant(batch)).numpy().astype(np.float64)
    from_scores = np.exp(scores - scores.max(1, keepdims=True))
    from_scores /= from_scores.sum(1, keepdims=True)
    np.testing.assert_allclose(from_scores, probabilities, atol=1e-5)
    check_model_outputs(adapter, batch)


def test_weight_randomisation_cascades_from_the_top(faces: Any) -> None:
    model = load_model(load_card(KERAS_CARD))
    batch, _ = faces
    before = model.predict_proba(batch)
    cascade = cascading_randomisations(model, seed=3)
    assert [name for name, _ in cascade][:3] == ["classifier", "bn4", "conv4"]
    assert [name for name, _ in cascade][-1] == "conv1"
    for _, randomised in cascade:
        assert randomised.digest != model.digest
        assert not np.allclose(randomised.predict_proba(batch), before)
    np.testing.assert_array_equal(model.predict_proba(batch), before)  # untouched
    again = cascading_randomisations(model, seed=3, max_steps=2)
    np.testing.assert_array_equal(
        again[1][1].predict_proba(batch), cascade[1][1].predict_proba(batch)
    )


def test_integration_steps_are_captums() -> None:
    from captum.attr._utils.approximation_methods import approximation_parameters

    from xaigate.explainers.keras_gradients import gauss_legendre

    step_sizes, alphas = approximation_parameters("gausslegendre")
    got_alphas, got_weights = gauss_legendre(32)
    np.testing.assert_allclose(got_alphas, alphas(32), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got_weights, step_sizes(32), rtol=0, atol=1e-12)
    assert abs(got_weights.sum() - 1.0) < 1e-12
