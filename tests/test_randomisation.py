"""Cascading parameter randomisation: exactly the top k layers change, reproducibly, on copies."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from gate_runner import REFERENCE_CARD
from model_zoo_for_tests import SIZE, SmallCNN, images, save_weights, seeded, write_card
from torch import nn

from xaigate.models.capabilities import NotApplicable
from xaigate.models.card import load_card
from xaigate.models.randomisation import (
    RandomisedTorchModel,
    cascading_randomisations,
    iter_cascading_randomisations,
    parametrised_layers,
)
from xaigate.models.torch_adapter import TorchModel

SMALL_LAYERS = ["features.0", "features.3", "features.6", "head"]


class HeadFirstCNN(nn.Module):
    """Defines its head before its body: definition order is not forward order."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 2)
        self.body = nn.Conv2d(3, 4, 3, padding=1)
        self.scale = nn.Parameter(torch.ones(1))  # owned by the root, used first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x * self.scale).mean(dim=(2, 3)))


@pytest.fixture
def small(tmp_path: Path) -> TorchModel:
    module = seeded(SmallCNN)
    save_weights(module, tmp_path)
    return TorchModel(load_card(write_card(tmp_path)))


def state(model: TorchModel) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.module.state_dict().items()}


def changed_layers(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    """Names of the layers (the root's own parameters by their own name) whose tensors differ."""
    keys = [key for key in before if not torch.equal(before[key], after[key])]
    return {key.rsplit(".", 1)[0] if "." in key else key for key in keys}


def test_parametrised_layers_in_definition_and_forward_order() -> None:
    assert parametrised_layers(SmallCNN()) == SMALL_LAYERS
    module = HeadFirstCNN()
    assert parametrised_layers(module) == ["", "head", "body"]
    # A container owning parameters counts from where it is entered: before its children.
    assert parametrised_layers(module, torch.zeros(1, 3, *SIZE)) == ["", "body", "head"]


def test_the_original_model_is_untouched(small: TorchModel) -> None:
    batch = images(6)
    before_state, before_predictions = state(small), small.predict_proba(batch)
    rng_before = torch.random.get_rng_state()

    steps = cascading_randomisations(small, seed=0)

    assert len(steps) == len(SMALL_LAYERS)
    after = state(small)
    assert all(torch.equal(before_state[key], after[key]) for key in before_state)
    np.testing.assert_array_equal(small.predict_proba(batch), before_predictions)
    # Seeding each layer must not move the global stream other seeded code draws from.
    assert torch.equal(torch.random.get_rng_state(), rng_before)


def test_step_k_changes_exactly_the_top_k_layers(small: TorchModel) -> None:
    original = state(small)
    steps = cascading_randomisations(small, seed=1)
    names = [name for name, _ in steps]
    assert names == SMALL_LAYERS[::-1]
    for k, (_, randomised) in enumerate(steps, start=1):
        assert isinstance(randomised, TorchModel) and randomised.module is not small.module
        assert changed_layers(original, state(randomised)) == set(SMALL_LAYERS[-k:])
        assert randomised.randomised_layers == SMALL_LAYERS[::-1][:k]


def test_a_layer_gets_the_same_random_weights_at_every_step(small: TorchModel) -> None:
    steps = cascading_randomisations(small, seed=2)
    head = [state(model)["head.weight"] for _, model in steps]
    assert all(torch.equal(head[0], weights) for weights in head[1:])


def test_same_seed_same_weights_other_seed_other_weights(small: TorchModel) -> None:
    first = [state(model) for _, model in cascading_randomisations(small, seed=3)]
    again = [state(model) for _, model in cascading_randomisations(small, seed=3)]
    other = state(cascading_randomisations(small, seed=4)[-1][1])
    for one, two in zip(first, again, strict=True):
        assert all(torch.equal(one[key], two[key]) for key in one)
    assert not torch.equal(first[-1]["features.0.weight"], other["features.0.weight"])


def test_fully_randomised_model_predicts_differently(small: TorchModel) -> None:
    batch = images(8)
    _, randomised = cascading_randomisations(small, seed=5)[-1]
    assert np.abs(randomised.predict_proba(batch) - small.predict_proba(batch)).max() > 1e-3


def test_max_steps_and_lazy_iteration(small: TorchModel) -> None:
    assert [name for name, _ in cascading_randomisations(small, 0, max_steps=2)] == [
        "head",
        "features.6",
    ]
    lazy = iter_cascading_randomisations(small, 0)
    name, first = next(lazy)
    assert name == "head" and isinstance(first, RandomisedTorchModel)
    with pytest.raises(ValueError, match="max_steps"):
        cascading_randomisations(small, 0, max_steps=0)


def test_randomised_copies_have_their_own_digest(small: TorchModel) -> None:
    digests = {model.digest for _, model in cascading_randomisations(small, seed=6)}
    assert len(digests) == len(SMALL_LAYERS) and small.digest not in digests


def test_forward_order_decides_what_is_top(small: TorchModel) -> None:
    module = seeded(HeadFirstCNN).eval()
    model = TorchModel(small.card, module=module)
    steps = cascading_randomisations(model, seed=7)
    assert [name for name, _ in steps] == ["head", "body", ""]
    # The root's own parameter is drawn afresh without resetting its children again.
    assert changed_layers(state(steps[1][1]), state(steps[2][1])) == {"scale"}


def test_batch_norm_is_reset_to_its_initial_state() -> None:
    model = TorchModel(load_card(REFERENCE_CARD))
    layers = parametrised_layers(model.module)
    assert layers[-1] == "classifier" and len(layers) == 9  # 4 x (conv, bn) + linear
    _, randomised = cascading_randomisations(model, seed=8, max_steps=2)[1]
    norm = dict(randomised.module.named_modules())[layers[-2]]
    assert isinstance(norm, nn.BatchNorm2d)
    assert not norm.running_mean.any() and torch.equal(norm.running_var, torch.ones(32))
    assert torch.equal(norm.weight, torch.ones(32)) and not norm.bias.any()
    trained = dict(model.module.named_modules())[layers[-2]]
    assert trained.running_mean.any()


def test_torchscript_is_not_applicable(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(seeded(SmallCNN)).save(str(tmp_path / "script.pt"))
    card = write_card(tmp_path, format="torchscript", architecture=None, artifact="script.pt")
    model = TorchModel(load_card(card))
    with pytest.raises(NotApplicable, match="TorchScript"):
        cascading_randomisations(model, seed=0)


def test_a_model_without_parameters_is_not_applicable(small: TorchModel) -> None:
    model = TorchModel(small.card, module=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    with pytest.raises(NotApplicable, match="no parameters"):
        cascading_randomisations(model, seed=0)
