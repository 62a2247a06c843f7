"""model.yaml: every key is validated, errors name the card, the line and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from model_zoo_for_tests import ZOO_FILE, card_data, write_card

from xaigate.errors import UsageError
from xaigate.models.card import ModelCard, load_card, output_shape_problem

FULL_CARD = """\
name: smile-cnn
framework: torch
format: state_dict
architecture: "arch.py:SmallCNN"
architecture_kwargs: {width: 8}
artifact: weights/w.pt
input:
  size: [64, 48]
  channels: 1
  layout: flat
  range: [-1, 1]
  mean: [0.5]
  std: [0.25]
output: sigmoid
classes: [not_smile, smile]
target_layer: features.6
batch_size: 16
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "weights.pt").write_bytes(b"")
    return tmp_path


def _error(folder: Path, **overrides: Any) -> str:
    with pytest.raises(UsageError) as caught:
        load_card(write_card(folder, **overrides))
    return str(caught.value)


def _error_text(folder: Path, text: str) -> str:
    path = folder / "model.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_card(path)
    return str(caught.value)


def test_every_key_is_read_and_paths_resolve_against_the_card_folder(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "w.pt").write_bytes(b"")
    (tmp_path / "arch.py").write_text("", encoding="utf-8")
    (tmp_path / "model.yaml").write_text(FULL_CARD, encoding="utf-8")

    card = load_card(str(tmp_path / "model.yaml"))

    assert card.path == (tmp_path / "model.yaml").resolve()
    assert card.folder == tmp_path.resolve()
    assert card.name == "smile-cnn"
    assert card.framework == "torch"
    assert card.format == "state_dict"
    assert card.architecture == f"{tmp_path.resolve() / 'arch.py'}:SmallCNN"
    assert card.architecture_parts() == (tmp_path.resolve() / "arch.py", "SmallCNN")
    assert card.architecture_kwargs == {"width": 8}
    assert card.artifact == tmp_path.resolve() / "weights" / "w.pt"
    assert card.input.size == (64, 48)
    assert card.input.channels == 1
    assert card.input.layout == "flat"
    assert card.input.range == (-1.0, 1.0)
    assert card.input.mean == [0.5]
    assert card.input.std == [0.25]
    assert card.output == "sigmoid"
    assert card.output_units == 1
    assert card.classes == ["not_smile", "smile"]
    assert card.target_layer == "features.6"
    assert card.batch_size == 16


def test_optional_keys_have_defaults(folder: Path) -> None:
    card = load_card(write_card(folder))
    assert card.input.channels == 3
    assert card.input.layout == "NCHW"
    assert card.input.mean is None and card.input.std is None
    assert card.architecture_kwargs == {}
    assert card.target_layer is None
    assert card.batch_size == 64
    assert card.output_units == 2


def test_module_form_architecture_is_kept(folder: Path) -> None:
    card = load_card(write_card(folder, architecture="model_zoo_for_tests:SmallCNN"))
    assert card.architecture_parts() == ("model_zoo_for_tests", "SmallCNN")


def test_absolute_architecture_file_is_kept(folder: Path) -> None:
    card = load_card(write_card(folder))
    assert card.architecture_parts() == (ZOO_FILE, "SmallCNN")


@pytest.mark.parametrize("fmt", ["torchscript", "exported"])
def test_self_contained_formats_need_no_architecture(folder: Path, fmt: str) -> None:
    card = load_card(write_card(folder, format=fmt, architecture=None))
    assert card.format == fmt and card.architecture is None


@pytest.mark.parametrize("value", [[0, 1], [-1, 1], [0, 255]])
def test_the_three_ranges_are_accepted(folder: Path, value: list[int]) -> None:
    card = load_card(write_card(folder, input={"range": value}))
    assert card.input.range == tuple(float(v) for v in value)


def test_misspelt_key_names_card_line_and_key(folder: Path) -> None:
    path = write_card(folder)
    text = path.read_text(encoding="utf-8").replace("output:", "outptu:")
    line = text.splitlines().index("outptu: logits") + 1
    message = _error_text(folder, text)
    assert message.startswith(f"{path}:{line}: outptu: unknown key")
    assert "did you mean 'output'" in message


def test_misspelt_nested_key_names_its_path(folder: Path) -> None:
    message = _error(folder, input={"sise": [16, 16]})
    assert ": input.sise: unknown key" in message
    assert "did you mean 'size'" in message


# (overrides, fragments the one-line message must contain)
BAD_CARDS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "name missing": ({"name": None}, ["name: required key is missing"]),
    "name pattern": ({"name": "Smile CNN"}, ["name:", "Smile CNN"]),
    "name not a string": ({"name": 12}, ["name:"]),
    "framework unknown": ({"framework": "tensorflow"}, ["framework:", "tensorflow"]),
    "format unknown": ({"format": "onnx"}, ["format:", "onnx"]),
    "architecture missing": ({"architecture": None}, ["architecture: required for format"]),
    "architecture form": ({"architecture": "arch.py"}, ["architecture:", "ClassName"]),
    "architecture file missing": ({"architecture": "nope.py:Net"}, ["architecture:", "nope.py"]),
    "architecture with torchscript": ({"format": "torchscript"}, ["architecture: only used"]),
    "kwargs not a mapping": ({"architecture_kwargs": [1, 2]}, ["architecture_kwargs:"]),
    "kwargs without architecture": (
        {"format": "exported", "architecture": None, "architecture_kwargs": {"a": 1}},
        ["architecture_kwargs: given without architecture"],
    ),
    "artifact missing": ({"artifact": "nope.pt"}, ["artifact: file not found", "nope.pt"]),
    "input missing": ({"input": None}, ["input: required key is missing"]),
    "size length": ({"input": {"size": [16]}}, ["input.size"]),
    "size zero": ({"input": {"size": [16, 0]}}, ["input.size.1"]),
    "channels": ({"input": {"channels": 2}}, ["input.channels"]),
    "layout": ({"input": {"layout": "CHW"}}, ["input.layout"]),
    "range missing": ({"input": {"range": None}}, ["input.range: required key is missing"]),
    "range unknown": ({"input": {"range": [0, 2]}}, ["input.range", "[0, 1] | [-1, 1]"]),
    "mean without std": ({"input": {"mean": [0.5] * 3}}, ["input.mean: mean needs std"]),
    "std without mean": ({"input": {"std": [0.5] * 3}}, ["input.std: std needs mean"]),
    "mean length": (
        {"input": {"mean": [0.5], "std": [0.2] * 3}},
        ["input.mean: has 1 values but channels is 3"],
    ),
    "std length for gray": (
        {"input": {"channels": 1, "mean": [0.5], "std": [0.2] * 3}},
        ["input.std: has 3 values but channels is 1"],
    ),
    "std not positive": ({"input": {"mean": [0.5] * 3, "std": [0.2, 0, 0.2]}}, ["input.std.1"]),
    "output unknown": ({"output": "softmax"}, ["output:", "softmax"]),
    "one class": ({"classes": ["smile"]}, ["classes:"]),
    "repeated class": ({"classes": ["a", "b", "a"]}, ["classes:", "repeated: a"]),
    "empty class name": ({"classes": ["a", ""]}, ["classes.1"]),
    "sigmoid with 3 classes": (
        {"output": "sigmoid", "classes": ["a", "b", "c"]},
        ["classes: output: sigmoid needs exactly 2 classes", "got 3"],
    ),
    "target_layer not a string": ({"target_layer": ["features"]}, ["target_layer:"]),
    "target_layer empty": ({"target_layer": ""}, ["target_layer:"]),
    "batch_size zero": ({"batch_size": 0}, ["batch_size:"]),
    "batch_size not int": ({"batch_size": "many"}, ["batch_size:"]),
}


@pytest.mark.parametrize("case", BAD_CARDS, ids=list(BAD_CARDS))
def test_bad_card_is_a_usage_error_naming_card_and_key(folder: Path, case: str) -> None:
    overrides, fragments = BAD_CARDS[case]
    message = _error(folder, **overrides)
    assert message.startswith(f"{folder / 'model.yaml'}:"), message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_error_points_at_the_line_of_the_key(folder: Path) -> None:
    path = write_card(folder, input={"range": [0, 2]})
    line = path.read_text(encoding="utf-8").splitlines().index("  range:") + 1
    assert _error(folder, input={"range": [0, 2]}).startswith(f"{path}:{line}: input.range")


def test_missing_card_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="model card not found"):
        load_card(tmp_path / "model.yaml")


def test_malformed_yaml_names_card_and_line(folder: Path) -> None:
    text = "name: x\ninput: [1, 2\noutput: logits\n"
    message = _error_text(folder, text)
    assert message.startswith(f"{folder / 'model.yaml'}:")
    assert "malformed YAML" in message


def test_card_that_is_not_a_mapping(folder: Path) -> None:
    assert "must be a YAML mapping" in _error_text(folder, "- name: x\n")


def test_card_built_in_code_validates_too() -> None:
    data = card_data(output="sigmoid", classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="exactly 2 classes"):
        ModelCard.model_validate(data)


@pytest.mark.parametrize(
    ("output", "shape", "fits"),
    [
        ("logits", (8, 2), True),
        ("logits", (8, 3), False),
        ("logits", (8,), False),
        ("probabilities", (8, 2), True),
        ("sigmoid", (8,), True),
        ("sigmoid", (8, 1), True),
        ("sigmoid", (8, 2), False),
    ],
)
def test_output_shape_problem(output: str, shape: tuple[int, ...], fits: bool) -> None:
    card = ModelCard.model_validate(card_data(output=output))
    problem = output_shape_problem(card, shape)
    assert (problem is None) == fits, problem
    if not fits:
        assert f"output: {output}" in problem and str(shape) in problem
