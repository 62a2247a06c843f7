"""Framework-neutral pieces of every adapter: probes to the model's input, output to probabilities.

Probes arrive as NHWC float RGB in [0, 1]; the card says what the model wants (channels, range,
normalisation, layout). The PyTorch adapter does the same arithmetic as a module (so that
gradients flow through it); these numpy and array-API forms serve Keras and ONNX.
"""

from __future__ import annotations

import numpy as np

from xaigate.errors import ModelError
from xaigate.models.card import InputSpec, ModelCard, output_shape_problem

# ITU-R BT.601 luma, the usual RGB -> grayscale conversion (PIL's "L" mode uses it too).
LUMA = (0.299, 0.587, 0.114)


def affine(spec: InputSpec) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, shift) per channel such that model input = x * scale + shift; None for identity.

    Range scaling and (x - mean) / std folded into one map.
    """
    low, high = spec.range
    mean = spec.mean or [0.0] * spec.channels
    std = spec.std or [1.0] * spec.channels
    scale = np.array([(high - low) / s for s in std], dtype=np.float32)
    shift = np.array([(low - m) / s for m, s in zip(mean, std, strict=True)], dtype=np.float32)
    if np.all(scale == 1.0) and np.all(shift == 0.0):
        return None
    return scale, shift


def check_probe_shape(card: ModelCard, images: object) -> np.ndarray:
    """`images` as contiguous float32 (N, H, W, 3) at the card's size, or ModelError."""
    height, width = card.input.size
    if not isinstance(images, np.ndarray) or images.shape[1:] != (height, width, 3):
        got = getattr(images, "shape", type(images).__name__)
        raise ModelError(
            f"{card.path}: expected images of shape (N, {height}, {width}, 3), got {got}"
        )
    return np.ascontiguousarray(images, dtype=np.float32)


def to_model_input(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """NHWC RGB in [0, 1] -> the model's own input as float32 (channels, range, layout)."""
    x = images
    if spec.channels == 1:
        x = (x @ np.asarray(LUMA, dtype=np.float32))[..., None]
    folded = affine(spec)
    if folded is not None:
        x = x * folded[0] + folded[1]
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    elif spec.layout == "flat":
        # Flattened as torch flattens NCHW, the layout the card's flat models were built on.
        x = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    return np.ascontiguousarray(x, dtype=np.float32)


def to_probabilities(card: ModelCard, raw: np.ndarray) -> np.ndarray:
    """The model's raw output (logits, probabilities or a sigmoid unit) -> (N, C) float64."""
    problem = output_shape_problem(card, tuple(raw.shape))
    if problem is not None:
        raise ModelError(f"{card.path}: {problem}")
    out = raw.astype(np.float64)
    if card.output == "logits":
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    if card.output == "sigmoid":
        p = out.reshape(len(out))
        return np.stack([1.0 - p, p], axis=1)
    return out
