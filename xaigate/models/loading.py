"""Turn a model card into a `ModelAdapter`, and check that the model's outputs fit the card."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xaigate.errors import ModelError, UsageError, XaigateError
from xaigate.models.adapter import ModelAdapter
from xaigate.models.capabilities import RawOutput
from xaigate.models.card import ModelCard, output_shape_problem

SAMPLE_SIZE = 8
SUM_TOLERANCE = 1e-3  # probability rows must sum to 1 within this
REPEAT_TOLERANCE = 1e-5  # two passes over the same images must agree within this


def _load_torch(card: ModelCard) -> ModelAdapter:
    # Imported here so that a keras or onnx gate never pays for importing the torch adapter.
    from xaigate.models.torch_adapter import TorchModel

    return TorchModel(card)


def _load_keras(card: ModelCard) -> ModelAdapter:
    # TensorFlow is imported by the adapter, so only a keras card pays for it.
    from xaigate.models.keras_adapter import KerasModel

    return KerasModel(card)


def _load_onnx(card: ModelCard) -> ModelAdapter:
    from xaigate.models.onnx_adapter import OnnxModel

    return OnnxModel(card)


LOADERS: dict[str, Callable[[ModelCard], ModelAdapter]] = {
    "torch": _load_torch,
    "keras": _load_keras,
    "onnx": _load_onnx,
}


def load_model(card: ModelCard) -> ModelAdapter:
    """The adapter for the card's framework, with the artifact loaded."""
    loader = LOADERS.get(card.framework)
    if loader is None:
        raise UsageError(
            f"{card.path}: framework: framework {card.framework!r} is not supported yet "
            f"(supported: {', '.join(sorted(LOADERS))})"
        )
    return loader(card)


def check_model_outputs(model: ModelAdapter, images: np.ndarray) -> None:
    """Raise ModelError when the model's outputs on a few probe images do not fit its card.

    Catches a wrong output width, NaN/inf, probabilities that are not probabilities (or
    probabilities declared as logits), forward errors, and outputs that change between two
    passes (a model left in training mode).
    """
    card = model.card
    sample = images[:SAMPLE_SIZE]
    if len(sample) == 0:
        raise UsageError(f"{card.path}: no probe images to check the model's outputs on")
    try:
        if isinstance(model, RawOutput):
            _check_raw(card, model.raw_output(sample), len(sample))
        first = model.predict_proba(sample)
        second = model.predict_proba(sample)
    except XaigateError:
        raise
    except Exception as exc:
        lines = str(exc).strip().splitlines() or [""]
        raise ModelError(
            f"{card.path}: the model failed on {len(sample)} probe images: "
            f"{type(exc).__name__}: {lines[0]}"
        ) from exc
    _check_probabilities(card, first, len(sample))
    drift = float(np.max(np.abs(first - second), initial=0.0))
    if drift > REPEAT_TOLERANCE:
        raise ModelError(
            f"{card.path}: two passes over the same {len(sample)} images differ by up to "
            f"{drift:.3g}: the model is not deterministic (dropout left in training mode? "
            "save or export it after model.eval())"
        )


def _check_raw(card: ModelCard, raw: np.ndarray, count: int) -> None:
    problem = output_shape_problem(card, raw.shape)
    if problem is None and raw.shape[0] != count:
        problem = f"the model returned {raw.shape[0]} rows for {count} images"
    if problem is not None:
        raise ModelError(f"{card.path}: {problem}")
    _check_finite(card, raw)
    low, high = float(raw.min()), float(raw.max())
    values = raw.reshape(count, -1)
    if card.output == "sigmoid" and (low < 0.0 or high > 1.0):
        raise ModelError(
            f"{card.path}: card says output: sigmoid but the model returned values in "
            f"[{low:.3g}, {high:.3g}], outside [0, 1] (is the unit a logit, not a probability?)"
        )
    if card.output == "probabilities":
        _check_rows(card, values, "card says output: probabilities but ")
    if card.output == "logits" and count >= 2 and _looks_like_probabilities(values):
        raise ModelError(
            f"{card.path}: card says output: logits but every row of the model's output is in "
            "[0, 1] and sums to 1: set output: probabilities (softmax of probabilities "
            "flattens them)"
        )


def _check_probabilities(card: ModelCard, probabilities: np.ndarray, count: int) -> None:
    expected = (count, len(card.classes))
    if probabilities.shape != expected:
        raise ModelError(
            f"{card.path}: predict_proba returned shape {probabilities.shape}, expected {expected}"
        )
    _check_finite(card, probabilities)
    _check_rows(card, probabilities, "")


def _check_finite(card: ModelCard, values: np.ndarray) -> None:
    bad_rows = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if bad_rows.any():
        kinds = "NaN" if np.isnan(values).any() else "inf"
        raise ModelError(
            f"{card.path}: the model returned {kinds} for {int(bad_rows.sum())} of "
            f"{len(values)} probe images"
        )


def _check_rows(card: ModelCard, values: np.ndarray, prefix: str) -> None:
    low, high = float(values.min()), float(values.max())
    sums = values.sum(axis=1)
    if low < -1e-6 or high > 1.0 + 1e-6:
        raise ModelError(
            f"{card.path}: {prefix}values lie in [{low:.3g}, {high:.3g}], outside [0, 1] "
            "(are these logits?)"
        )
    if np.any(np.abs(sums - 1.0) > SUM_TOLERANCE):
        raise ModelError(
            f"{card.path}: {prefix}rows sum to {float(sums.min()):.4g}..{float(sums.max()):.4g}, "
            f"not 1 (within {SUM_TOLERANCE:g})"
        )


def _looks_like_probabilities(values: np.ndarray) -> bool:
    inside = values.min() >= 0.0 and values.max() <= 1.0
    return bool(inside and np.all(np.abs(values.sum(axis=1) - 1.0) < 1e-5))
