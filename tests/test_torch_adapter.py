"""TorchModel: loading each format safely, input conversion, outputs, scores and layers."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from model_zoo_for_tests import (
    SIZE,
    ZOO_FILE,
    Booby,
    BoobyCNN,
    DropoutCNN,
    GrayFlatMLP,
    NanCNN,
    NhwcCNN,
    SigmoidCNN,
    SmallCNN,
    SoftmaxCNN,
    images,
    save_weights,
    seeded,
    write_card,
)
from torch import nn

from xaigate.errors import ModelError, UsageError
from xaigate.models.adapter import ModelAdapter
from xaigate.models.capabilities import NotApplicable, RawOutput
from xaigate.models.card import load_card
from xaigate.models.loading import check_model_outputs, load_model
from xaigate.models.torch_adapter import TorchModel

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def build(folder: Path, module: nn.Module, **card: Any) -> TorchModel:
    """Save `module`'s state dict next to a card naming its class, and load it."""
    save_weights(module, folder)
    card.setdefault("architecture", f"{ZOO_FILE}:{type(module).__name__}")
    return TorchModel(load_card(write_card(folder, **card)))


def by_hand(module: nn.Module, batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(batch))).double().numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def nchw(batch: np.ndarray) -> np.ndarray:
    return batch.transpose(0, 3, 1, 2)


# --- state dict, NCHW RGB logits -----------------------------------------------------------


def test_logits_model_matches_softmax_of_its_logits(tmp_path: Path) -> None:
    module = seeded(SmallCNN)
    model = build(tmp_path, module)
    batch = images(7)

    probabilities = model.predict_proba(batch)

    assert probabilities.dtype == np.float64 and probabilities.shape == (7, 2)
    np.testing.assert_allclose(probabilities, softmax(by_hand(module, nchw(batch))), atol=1e-6)
    assert model.forward_seconds > 0


def test_adapter_surface(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN), name="smile-cnn")
    assert isinstance(model, ModelAdapter) and isinstance(model, RawOutput)
    assert model.name == "smile-cnn"
    assert model.classes == ["not_smile", "smile"]
    assert model.input_size == SIZE
    assert model.card.artifact == tmp_path.resolve() / "weights.pt"
    digest = hashlib.sha256((tmp_path / "weights.pt").read_bytes()).hexdigest()
    assert model.digest == digest
    assert type(model.module).__name__ == "SmallCNN" and not model.module.training
    assert model.supports_gradients and model.supports_layer_hooks


def test_batches_give_the_same_answer_as_one_pass(tmp_path: Path) -> None:
    module = seeded(SmallCNN)
    batch = images(7)
    whole = build(tmp_path, module).predict_proba(batch)
    batched = build(tmp_path, module, batch_size=3).predict_proba(batch)
    np.testing.assert_allclose(batched, whole, atol=1e-6)


def test_architecture_kwargs_build_the_module(tmp_path: Path) -> None:
    module = seeded(SmallCNN, num_classes=3, width=6)
    model = build(
        tmp_path,
        module,
        classes=["a", "b", "c"],
        architecture_kwargs={"width": 6, "num_classes": 3},
    )
    batch = images(3)
    np.testing.assert_allclose(
        model.predict_proba(batch), softmax(by_hand(module, nchw(batch))), atol=1e-6
    )


def test_architecture_as_file_next_to_the_card(tmp_path: Path) -> None:
    (tmp_path / "arch.py").write_text(ZOO_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    model = build(tmp_path, seeded(SmallCNN), architecture="arch.py:SmallCNN")
    assert type(model.module).__name__ == "SmallCNN"
    assert type(model.module).__module__.startswith("xaigate_architecture_")


def test_two_cards_with_different_arch_py_files_do_not_collide(tmp_path: Path) -> None:
    loaded = []
    for width in (4, 6):
        folder = tmp_path / f"w{width}"
        folder.mkdir()
        source = (
            f"from torch import nn\nclass Net(nn.Linear):\n    def __init__(self):\n"
            f"        super().__init__({width}, 2)\n"
        )
        (folder / "arch.py").write_text(source, encoding="utf-8")
        torch.save(nn.Linear(width, 2).state_dict(), folder / "weights.pt")
        card = write_card(folder, architecture="arch.py:Net", input={"layout": "flat"})
        loaded.append(TorchModel(load_card(card)).module)
    assert [m.in_features for m in loaded] == [4, 6]


def test_architecture_in_an_importable_module(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.syspath_prepend(str(ZOO_FILE.parent))
    model = build(tmp_path, seeded(SmallCNN), architecture="model_zoo_for_tests:SmallCNN")
    assert type(model.module).__name__ == "SmallCNN"


@pytest.mark.parametrize(
    ("card", "fragments"),
    [
        ({"architecture": f"{ZOO_FILE}:Missing"}, ["architecture: Missing is not defined"]),
        ({"architecture": f"{ZOO_FILE}:write_marker"}, ["is not an nn.Module class"]),
        ({"architecture": "no_such_module_xyz:Net"}, ["architecture: cannot import"]),
        ({"architecture_kwargs": {"depth": 3}}, ["architecture_kwargs: SmallCNN", "depth"]),
    ],
)
def test_architecture_errors(tmp_path: Path, card: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(UsageError) as caught:
        build(tmp_path, seeded(SmallCNN), **card)
    message = str(caught.value)
    assert message.startswith(str(tmp_path.resolve() / "model.yaml"))
    for fragment in fragments:
        assert fragment in message, message


def test_wrong_input_shape_is_a_model_error(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN))
    with pytest.raises(ModelError, match=r"model.yaml: expected images of shape \(N, 16, 16, 3\)"):
        model.predict_proba(images(2, size=(8, 8)))


# --- target layer ---------------------------------------------------------------------------


def test_default_target_layer_is_the_last_convolution(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN))
    assert model.target_layer() is model.module.features[6]


def test_target_layer_from_the_card(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN), target_layer="features.3")
    assert model.target_layer() is model.module.features[3]


def test_unknown_target_layer_is_a_usage_error_listing_convolutions(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN), target_layer="features.9")
    with pytest.raises(UsageError) as caught:
        model.target_layer()
    message = str(caught.value)
    assert message.startswith(str(model.card.path)) and "target_layer" in message
    assert "'features.9'" in message and "features.0, features.3, features.6" in message


def test_hooks_on_the_target_layer_fire_through_scores_module(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN))
    seen: list[tuple[int, ...]] = []
    handle = model.target_layer().register_forward_hook(
        lambda _m, _i, out: seen.append(tuple(out.shape))
    )
    model.scores_module()(torch.rand(2, 3, *SIZE))
    handle.remove()
    assert seen == [(2, 8, 4, 4)]


# --- grayscale, flat, sigmoid ---------------------------------------------------------------

GRAY_CARD = {"input": {"channels": 1, "layout": "flat"}, "output": "sigmoid"}


def test_gray_flat_sigmoid_matches_a_manual_computation(tmp_path: Path) -> None:
    module = seeded(GrayFlatMLP)
    model = build(tmp_path, module, **GRAY_CARD)
    batch = images(5)

    gray = (batch @ LUMA).reshape(5, -1)  # luma, then (N, 1, H, W) flattened
    p = by_hand(module, gray)[:, 0]

    np.testing.assert_allclose(model.predict_proba(batch), np.stack([1 - p, p], 1), atol=1e-6)
    np.testing.assert_allclose(model.raw_output(batch), p[:, None], atol=1e-6)


def test_sigmoid_scores_softmax_to_the_probabilities(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(GrayFlatMLP), **GRAY_CARD)
    batch = images(5)
    with torch.no_grad():
        scores = model.scores_module()(torch.from_numpy(nchw(batch).copy()))
    assert scores.shape == (5, 2)
    torch.testing.assert_close(scores[:, 0], -scores[:, 1])
    np.testing.assert_allclose(
        softmax(scores.double().numpy()), model.predict_proba(batch), atol=1e-5
    )


def test_sigmoid_scores_stay_finite_when_saturated(tmp_path: Path) -> None:
    module = seeded(GrayFlatMLP)
    with torch.no_grad():
        module.body[2].bias.fill_(1e4)  # p == 1.0 exactly in float32
    model = build(tmp_path, module, **GRAY_CARD)
    scores = model.scores_module()(torch.rand(2, 3, *SIZE))
    assert torch.isfinite(scores).all()


def test_model_without_convolution_has_no_cam_layer(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(GrayFlatMLP), **GRAY_CARD)
    with pytest.raises(NotApplicable, match="no convolution layer"):
        model.target_layer()


# --- layouts, ranges, normalisation ---------------------------------------------------------


def test_nhwc_model_gets_nhwc_input(tmp_path: Path) -> None:
    module = seeded(SmallCNN)
    nhwc = NhwcCNN()
    nhwc.load_state_dict(module.state_dict())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    batch = images(4)
    expected = build(tmp_path / "a", module).predict_proba(batch)
    got = build(tmp_path / "b", nhwc, input={"layout": "NHWC"}).predict_proba(batch)
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("input_spec", "convert"),
    [
        ({"range": [-1, 1]}, lambda x: x * 2 - 1),
        ({"range": [0, 255]}, lambda x: x * 255),
        (
            {"range": [0, 255], "mean": [120.0, 110.0, 100.0], "std": [60.0, 50.0, 40.0]},
            lambda x: (
                (x * 255 - np.array([120, 110, 100], np.float32)[:, None, None])
                / np.array([60, 50, 40], np.float32)[:, None, None]
            ),
        ),
        (
            {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            lambda x: (
                (x - np.array([0.485, 0.456, 0.406], np.float32)[:, None, None])
                / np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
            ),
        ),
    ],
    ids=["minus1-1", "0-255", "0-255-mean-std", "imagenet"],
)
def test_range_and_normalisation(tmp_path: Path, input_spec: dict[str, Any], convert: Any) -> None:
    module = seeded(SmallCNN)
    model = build(tmp_path, module, input=input_spec)
    batch = images(4)
    expected = softmax(by_hand(module, convert(nchw(batch)).astype(np.float32)))
    np.testing.assert_allclose(model.predict_proba(batch), expected, atol=1e-5)
    # The untouched [0, 1] input would give different answers: the conversion matters.
    assert not np.allclose(expected, softmax(by_hand(module, nchw(batch))), atol=1e-5)


def test_gray_with_mean_and_std(tmp_path: Path) -> None:
    module = seeded(SmallCNN, channels=1)
    card = {"input": {"channels": 1, "mean": [0.5], "std": [0.25]}}
    model = build(tmp_path, module, architecture_kwargs={"channels": 1}, **card)
    batch = images(3)
    gray = ((batch @ LUMA)[:, None] - 0.5) / 0.25
    np.testing.assert_allclose(
        model.predict_proba(batch), softmax(by_hand(module, gray)), atol=1e-5
    )


# --- probabilities output and scores --------------------------------------------------------


def test_probabilities_pass_through_and_score_as_log_probabilities(tmp_path: Path) -> None:
    module = seeded(SoftmaxCNN)
    model = build(tmp_path, module, output="probabilities")
    batch = images(4)
    expected = by_hand(module, nchw(batch))
    np.testing.assert_allclose(model.predict_proba(batch), expected, atol=1e-6)
    with torch.no_grad():
        scores = model.scores_module()(torch.from_numpy(nchw(batch).copy())).double().numpy()
    np.testing.assert_allclose(scores, np.log(expected), atol=1e-5)


def test_logit_scores_softmax_to_predict_proba(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN))
    batch = images(4)
    with torch.no_grad():
        scores = model.scores_module()(torch.from_numpy(nchw(batch).copy())).double().numpy()
    np.testing.assert_allclose(softmax(scores), model.predict_proba(batch), atol=1e-6)


# --- TorchScript and torch.export -----------------------------------------------------------


def _save_torchscript(module: nn.Module, path: Path, how: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = (
            torch.jit.script(module)
            if how == "script"
            else torch.jit.trace(module, torch.rand(2, 3, *SIZE))
        )
        scripted.save(str(path))


def _save_exported(module: nn.Module, path: Path) -> None:
    batch = torch.export.Dim("batch")
    program = torch.export.export(module, (torch.rand(2, 3, *SIZE),), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)


@pytest.fixture(scope="module")
def three_formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TorchModel]:
    folder = tmp_path_factory.mktemp("formats")
    module = seeded(SmallCNN)
    models = {"state_dict": build(folder, module)}
    _save_torchscript(module, folder / "script.pt", "script")
    _save_torchscript(module, folder / "trace.pt", "trace")
    _save_exported(module, folder / "model.pt2")
    for key, fmt, artifact in [
        ("script", "torchscript", "script.pt"),
        ("trace", "torchscript", "trace.pt"),
        ("exported", "exported", "model.pt2"),
    ]:
        sub = folder / key
        sub.mkdir()
        card = write_card(sub, format=fmt, architecture=None, artifact=f"../{artifact}")
        models[key] = TorchModel(load_card(card))
    return models


@pytest.mark.parametrize("key", ["script", "trace", "exported"])
def test_serialised_formats_match_the_state_dict_model(
    three_formats: dict[str, TorchModel], key: str
) -> None:
    batch = images(5)  # batch_size 64 -> one pass of 5; batch_size 2 below -> 2, 2, 1
    expected = three_formats["state_dict"].predict_proba(batch)
    np.testing.assert_allclose(three_formats[key].predict_proba(batch), expected, atol=1e-6)
    model = three_formats[key]
    small = TorchModel(model.card.model_copy(update={"batch_size": 2}), module=model.module)
    np.testing.assert_allclose(small.predict_proba(batch), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("key", "reason"),
    [("script", "TorchScript"), ("trace", "TorchScript"), ("exported", "torch.export")],
)
def test_serialised_formats_have_no_layer_hooks(
    three_formats: dict[str, TorchModel], key: str, reason: str
) -> None:
    assert not three_formats[key].supports_layer_hooks
    with pytest.raises(NotApplicable, match=reason):
        three_formats[key].target_layer()


@pytest.mark.parametrize("key", ["state_dict", "script", "trace", "exported"])
def test_gradients_flow_through_scores_module(
    three_formats: dict[str, TorchModel], key: str
) -> None:
    model = three_formats[key]
    assert model.supports_gradients
    x = torch.rand(2, 3, *SIZE, requires_grad=True)
    model.scores_module()(x)[:, 1].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_a_state_dict_is_not_a_torchscript_archive(tmp_path: Path) -> None:
    save_weights(seeded(SmallCNN), tmp_path)
    card = load_card(write_card(tmp_path, format="torchscript", architecture=None))
    with pytest.raises(UsageError, match="artifact: .*weights.pt is not a TorchScript archive"):
        TorchModel(card)


def test_a_state_dict_is_not_an_exported_program(tmp_path: Path) -> None:
    save_weights(seeded(SmallCNN), tmp_path)
    card = load_card(write_card(tmp_path, format="exported", architecture=None))
    with pytest.raises(UsageError, match="is not a torch.export program"):
        TorchModel(card)


# --- safe loading ---------------------------------------------------------------------------


def _refused(tmp_path: Path, payload: Any, marker: Path) -> str:
    torch.save(payload, tmp_path / "weights.pt")
    card = load_card(write_card(tmp_path))
    with pytest.raises(UsageError) as caught:
        TorchModel(card)
    assert not marker.exists(), "loading the checkpoint ran code from it"
    return str(caught.value)


def test_pickled_object_in_a_checkpoint_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    payload = {"w": Booby(marker)}
    message = _refused(tmp_path, payload, marker)
    assert message.startswith(str(tmp_path.resolve() / "model.yaml"))
    assert "artifact:" in message and "weights.pt" in message
    assert "torch.save(model.state_dict())" in message
    # Control: an unrestricted unpickle of the same file does run the payload.
    torch.load(tmp_path / "weights.pt", weights_only=False)
    assert marker.exists()


def test_whole_pickled_module_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    message = _refused(tmp_path, BoobyCNN(str(marker)), marker)
    assert "torch.save(model.state_dict())" in message
    torch.load(tmp_path / "weights.pt", weights_only=False)
    assert marker.exists()


def test_training_checkpoint_dict_is_refused_with_its_keys(tmp_path: Path) -> None:
    payload = {"model": seeded(SmallCNN).state_dict(), "epoch": 3}
    message = _refused(tmp_path, payload, tmp_path / "none")
    assert "holds a dict with keys model, epoch" in message


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda sd: sd.pop("head.bias"), "missing key 'head.bias'"),
        (lambda sd: sd.update({"extra.weight": torch.zeros(1)}), "unexpected key 'extra.weight'"),
        (lambda sd: sd.update({"head.bias": torch.zeros(5)}), "size mismatch for head.bias"),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_state_dict_that_does_not_fit_names_the_key(
    tmp_path: Path, edit: Any, fragment: str
) -> None:
    state = seeded(SmallCNN).state_dict()
    edit(state)
    message = _refused(tmp_path, state, tmp_path / "none")
    assert "does not fit architecture" in message and fragment in message, message


# --- load_model -----------------------------------------------------------------------------


def test_load_model_gives_a_torch_adapter(tmp_path: Path) -> None:
    save_weights(seeded(SmallCNN), tmp_path)
    model = load_model(load_card(write_card(tmp_path)))
    assert isinstance(model, TorchModel)


@pytest.mark.parametrize("framework", ["keras", "onnx"])
def test_torch_formats_under_another_framework_are_refused(tmp_path: Path, framework: str) -> None:
    save_weights(seeded(SmallCNN), tmp_path)
    with pytest.raises(
        UsageError, match=f"format: 'state_dict' is not a {framework} format .*{framework}"
    ):
        load_card(write_card(tmp_path, framework=framework, architecture=None))


# --- check_model_outputs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "card"),
    [
        (SmallCNN, {}),
        (SoftmaxCNN, {"output": "probabilities"}),
        (GrayFlatMLP, GRAY_CARD),
    ],
)
def test_good_models_pass_the_output_check(
    tmp_path: Path, module: type[nn.Module], card: dict[str, Any]
) -> None:
    check_model_outputs(build(tmp_path, seeded(module), **card), images(10))


def _check_error(model: TorchModel, batch: np.ndarray | None = None) -> str:
    with pytest.raises(ModelError) as caught:
        check_model_outputs(model, images(10) if batch is None else batch)
    message = str(caught.value)
    assert message.startswith(f"{model.card.path}: ") and "\n" not in message
    return message


def test_nan_output_is_caught(tmp_path: Path) -> None:
    assert "NaN for 8 of 8 probe images" in _check_error(build(tmp_path, seeded(NanCNN)))


def test_wrong_class_count_is_caught_before_softmax(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN, num_classes=3), architecture_kwargs={"num_classes": 3})
    message = _check_error(model)
    assert "2 classes" in message and "(8, 3)" in message
    with pytest.raises(ModelError, match=r"\(4, 3\)"):
        model.predict_proba(images(4))


def test_sigmoid_card_with_a_two_unit_model_is_caught(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SigmoidCNN), output="sigmoid")
    message = _check_error(model)
    assert "card says output: sigmoid (1 unit) but the model returned shape (8, 2)" in message


def test_sigmoid_card_with_a_logit_unit_is_caught(tmp_path: Path) -> None:
    module = seeded(SmallCNN, num_classes=1)
    model = build(tmp_path, module, output="sigmoid", architecture_kwargs={"num_classes": 1})
    assert "outside [0, 1]" in _check_error(model)


def test_probabilities_card_with_a_logits_model_is_caught(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN), output="probabilities")
    message = _check_error(model)
    assert "card says output: probabilities but" in message


def test_logits_card_with_a_probabilities_model_is_caught(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SoftmaxCNN))
    assert "set output: probabilities" in _check_error(model)


def test_forward_error_is_caught_with_its_first_line(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN), input={"layout": "NHWC"})
    message = _check_error(model)
    assert "the model failed on input of shape (8, 16, 16, 3)" in message
    assert "RuntimeError" in message


def test_nondeterministic_model_is_caught(tmp_path: Path) -> None:
    assert "not deterministic" in _check_error(build(tmp_path, seeded(DropoutCNN)))


def test_only_a_few_images_are_checked(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(SmallCNN))
    check_model_outputs(model, images(40))
    calls = []
    original = model.module.forward
    model.module.forward = lambda x: calls.append(len(x)) or original(x)  # type: ignore[method-assign]
    check_model_outputs(model, images(40))
    assert calls and max(calls) == 8


def test_scores_module_cannot_switch_the_model_to_training(tmp_path: Path) -> None:
    model = build(tmp_path, seeded(DropoutCNN))
    scores = model.scores_module()
    scores.train()
    assert not model.module.training
    scores.eval()
    assert not scores.training
