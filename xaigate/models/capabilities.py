"""What a model can and cannot do for an explainer or check."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class NotApplicable(Exception):
    """An explainer or check cannot apply to this model; the message is the reason."""


@runtime_checkable
class RawOutput(Protocol):
    """An adapter that can show the model's own output before conversion to probabilities."""

    def raw_output(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float RGB in [0, 1] -> the model's output (logits, probabilities or
        the sigmoid unit) as float64, whatever its shape."""
        ...
