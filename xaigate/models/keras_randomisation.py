"""Cascading weight randomisation of Keras models (Adebayo et al. 2018), as randomisation.py
does for PyTorch: layers that own weights are re-initialised from the output backwards, each
with its own initialisers under a seed derived from the run's seed and the layer's path.

The order is the model's layer order, nested models' layers in place (Keras keeps functional
layers in topological order, which for the stacks of this project is the forward order).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import numpy as np

from xaigate.digests import randomised_model_digest
from xaigate.models.capabilities import NotApplicable
from xaigate.models.keras_adapter import KerasModel, iter_layers

# Batch norm's state at construction: what `reset_parameters` restores in PyTorch.
BATCH_NORM_INITIAL = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}


class RandomisedKerasModel(KerasModel):
    """A `KerasModel` whose top layers were re-initialised; says which, from which seed."""

    def __init__(self, trained: KerasModel, model: Any, layers: list[str], seed: int) -> None:
        super().__init__(trained.card, model=model)
        self.trained = trained
        self.randomised_layers = list(layers)
        self.seed = seed

    @cached_property
    def digest(self) -> str:
        return randomised_model_digest(self.trained.digest, self.seed, self.randomised_layers)


def weighted_layers(model: Any) -> list[str]:
    """Paths of the layers that own weights themselves (not nested models), in layer order."""
    return [
        path for path, layer in iter_layers(model) if not hasattr(layer, "layers") and layer.weights
    ]


def iter_keras_randomisations(
    model: KerasModel, seed: int, *, max_steps: int | None = None
) -> Iterator[tuple[str, RandomisedKerasModel]]:
    """For k = 1..L, a copy of `model` with its top k weighted layers re-initialised; each
    tuple names the layer that step randomised last. The original is never touched."""
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    keras = model.keras
    order = weighted_layers(model.model)
    if not order:
        raise NotApplicable("the model has no weights to randomise")
    current = keras.models.clone_model(model.model)
    current.set_weights(model.model.get_weights())
    layers = dict(iter_layers(current))
    top_down = order[::-1][: len(order) if max_steps is None else max_steps]
    for step, path in enumerate(top_down, start=1):
        _reinitialise(keras, layers[path], _derived_seed(seed, path))
        copy = keras.models.clone_model(current)
        copy.set_weights(current.get_weights())
        yield path, RandomisedKerasModel(model, copy, top_down[:step], seed)


def _derived_seed(seed: int, name: str) -> int:
    text = f"{seed}:{name}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "little")


def _reinitialise(keras: Any, layer: Any, seed: int) -> None:
    """Re-initialise the weights `layer` owns, with its own initialisers (a fresh seeded copy
    of each), batch norm to its initial state, anything else LeCun normal."""
    values = []
    for index, weight in enumerate(layer.weights):
        short = weight.name.split("/")[-1].split(":")[0]
        shape = tuple(weight.shape)
        if short in BATCH_NORM_INITIAL:
            values.append(np.full(shape, BATCH_NORM_INITIAL[short], dtype=np.float32))
            continue
        initializer = getattr(layer, f"{short}_initializer", None)
        if initializer is None:
            initializer = keras.initializers.LecunNormal()
        config = initializer.get_config()
        if "seed" in config:
            config["seed"] = seed + index
        fresh = type(initializer).from_config(config)
        values.append(np.asarray(fresh(shape, dtype="float32")))
    layer.set_weights(values)
