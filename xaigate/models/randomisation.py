"""Cascading model parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

Layers are re-initialised one at a time from the output backwards; a map that still looks the
same once the layers it should depend on are random is explaining the input, not the model.
Each step is a deep copy wrapped as a `TorchModel`, so every explainer runs on it unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable, Iterator
from functools import cached_property

import numpy as np
import torch
from torch import nn

from xaigate.digests import randomised_model_digest
from xaigate.models.capabilities import NotApplicable
from xaigate.models.torch_adapter import TorchModel


class RandomisedTorchModel(TorchModel):
    """A `TorchModel` whose top layers were re-initialised; says which, from which seed.

    Its digest differs from the trained model's (whose artifact it shares), so nothing cached
    under the trained model's digest is ever served for it.
    """

    def __init__(
        self, trained: TorchModel, module: nn.Module, layers: list[str], seed: int
    ) -> None:
        super().__init__(trained.card, module=module)
        self.trained = trained
        self.randomised_layers = list(layers)
        self.seed = seed

    @cached_property
    def digest(self) -> str:
        return randomised_model_digest(self.trained.digest, self.seed, self.randomised_layers)


def parametrised_layers(module: nn.Module, example: torch.Tensor | None = None) -> list[str]:
    """Names of the modules that own parameters themselves, in forward order.

    Without `example` the order is definition order; with it, the order in which one forward
    pass on `example` first enters each layer (layers it never calls follow in definition
    order), for models whose `__init__` defines the head before the body. A container that
    owns parameters itself (a class token, a layer scale) is placed where it is entered,
    before its children: where inside it they are used cannot be seen from outside.
    """
    if example is None:
        return _owners(module)
    with torch.inference_mode():
        return _forward_order(module, lambda: module(example))


def _owners(module: nn.Module) -> list[str]:
    return [
        name
        for name, layer in module.named_modules()
        if next(layer.parameters(recurse=False), None) is not None
    ]


def _forward_order(module: nn.Module, run: Callable[[], object]) -> list[str]:
    """`_owners(module)` in the order in which `run()` first enters them."""
    owners = _owners(module)
    layers = dict(module.named_modules())
    entered: list[str] = []

    def record(name: str) -> Callable[[nn.Module, object], None]:
        def hook(_layer: nn.Module, _args: object) -> None:
            if name not in entered:
                entered.append(name)

        return hook

    handles = [layers[name].register_forward_pre_hook(record(name)) for name in owners]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return entered + [name for name in owners if name not in entered]


def iter_cascading_randomisations(
    model: TorchModel, seed: int, *, max_steps: int | None = None
) -> Iterator[tuple[str, RandomisedTorchModel]]:
    """`cascading_randomisations` one step at a time, so only one copy need be kept alive."""
    if model.card.framework == "keras":
        # Imported here: the Keras module reaches TensorFlow only through a loaded model.
        from xaigate.models.keras_randomisation import iter_keras_randomisations

        yield from iter_keras_randomisations(model, seed, max_steps=max_steps)  # type: ignore[arg-type, misc]
        return
    _check_applicable(model)
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    current = copy.deepcopy(model.module)
    # One prediction on a blank image through the adapter, which feeds the module what it
    # expects (channels, layout, range); only the order of the calls matters.
    blank = np.zeros((1, *model.card.input.size, 3), dtype=np.float32)
    order = _forward_order(
        current, lambda: TorchModel(model.card, module=current).predict_proba(blank)
    )
    if not order:
        raise NotApplicable("the model has no parameters to randomise")
    layers = dict(current.named_modules())
    top_down = order[::-1][: len(order) if max_steps is None else max_steps]
    for step, name in enumerate(top_down, start=1):
        _reinitialise(layers[name], _derived_seed(seed, name))
        # A copy per step: `current` goes on to lose its next layer.
        yield (
            name,
            RandomisedTorchModel(model, copy.deepcopy(current), top_down[:step], seed),
        )


def cascading_randomisations(
    model: TorchModel, seed: int, *, max_steps: int | None = None
) -> list[tuple[str, RandomisedTorchModel]]:
    """For k = 1..L, a copy of `model` with its top k parametrised layers re-initialised.

    Layers count from the output backwards (forward order, traced once on a blank input); each
    tuple names the layer that step randomised last. A layer is re-initialised with its own
    `reset_parameters()` under a seed derived from `seed` and its name, so the same seed gives
    identical weights and a layer's random weights are the same at every step. BatchNorm is
    reset to its initial state (running mean 0, variance 1, weight 1, bias 0). `max_steps`
    stops after that many layers. The original model is never touched. Raises NotApplicable
    for TorchScript and torch.export models, which have no re-initialisable layers, and for
    ONNX graphs. Keras models are randomised alike by keras_randomisation.py.
    """
    return list(iter_cascading_randomisations(model, seed, max_steps=max_steps))


def _check_applicable(model: TorchModel) -> None:
    if model.card.framework == "onnx":
        raise NotApplicable(
            "ONNX graphs are run as black boxes by onnxruntime; their weights cannot be "
            "re-initialised layer by layer"
        )
    module = getattr(model, "module", None)
    if not isinstance(model, TorchModel) or not isinstance(module, nn.Module):
        raise NotApplicable("parameter randomisation needs the model as a PyTorch module")
    if model.card.format == "torchscript":
        raise NotApplicable(
            "TorchScript modules cannot be copied and re-initialised layer by layer"
        )
    if model.card.format == "exported":
        raise NotApplicable(
            "torch.export programs are flattened graphs; their layers cannot be re-initialised"
        )
    if next(iter(module.named_parameters()), None) is None:
        raise NotApplicable("the model has no parameters to randomise")


def _derived_seed(seed: int, name: str) -> int:
    # Per layer and stable across processes (unlike hash()), so a layer is randomised alike
    # whichever step reaches it.
    text = f"{seed}:{name}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


@torch.no_grad()
def _reinitialise(layer: nn.Module, seed: int) -> None:
    """Re-initialise the parameters `layer` owns itself, as at construction."""
    # fork_rng: seeding must not shift the global stream that other seeded code relies on.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        has_children = next(iter(layer.children()), None) is not None
        reset = getattr(layer, "reset_parameters", None)
        # A parent's reset_parameters may also reset its children, which are other steps.
        if callable(reset) and not has_children:
            reset()  # BatchNorm's also resets its running statistics
            return
        for parameter in layer.parameters(recurse=False):
            _normal_init(parameter)


def _normal_init(parameter: torch.Tensor) -> None:
    # Scaled by fan-in so activations keep roughly the input's size (LeCun normal).
    fan_in = parameter[0].numel() if parameter.dim() >= 2 else parameter.numel()
    nn.init.normal_(parameter, 0.0, 1.0 / math.sqrt(max(fan_in, 1)))
