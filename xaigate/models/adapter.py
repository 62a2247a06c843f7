"""The one view of a model that the rest of the engine sees."""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from xaigate.models.card import ModelCard


@runtime_checkable
class ModelAdapter(Protocol):
    """A classifier seen as ``predict_proba`` on NHWC float RGB images in [0, 1].

    Framework adapters (torch, keras, onnx) convert to the model's own input
    (size is already the card's, so only channels, layout, range and normalisation), call it in
    batches, and turn its output (logits, probabilities or one sigmoid unit) into (N, C)
    probabilities in the card's class order.
    """

    card: ModelCard

    @property
    def name(self) -> str: ...

    @property
    def classes(self) -> list[str]: ...

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) that probe images are resized to."""
        ...

    @property
    def digest(self) -> str:
        """sha256 of the model's artifact file (weights), for provenance and caching."""
        ...

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float32 RGB in [0, 1] -> (N, C) float64 probabilities."""
        ...


class CardFacts:
    """What every framework adapter reads off its card and artifact: name, classes, input size
    and the artifact's digest. Adapters set `card` and inherit these."""

    card: ModelCard

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def classes(self) -> list[str]:
        return list(self.card.classes)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.card.input.size

    @cached_property
    def digest(self) -> str:
        sha = hashlib.sha256()
        with self.card.artifact.open("rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                sha.update(chunk)
        return sha.hexdigest()
