"""ONNX models behind `ModelAdapter`: a black box run by onnxruntime on the CPU.

No gradients and no layers: LIME, SHAP and the perturbation checks apply; gradient explainers
and weight randomisation are reported not applicable. onnxruntime is imported only when a card
says `framework: onnx`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from xaigate.errors import ModelError, UsageError, XaigateError
from xaigate.models.adapter import CardFacts
from xaigate.models.card import ModelCard
from xaigate.models.preprocess import check_probe_shape, to_model_input, to_probabilities

NOT_DIFFERENTIABLE = "ONNX models are run as black boxes by onnxruntime: no gradients, no layers"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def expected_input_shape(card: ModelCard) -> tuple[int, ...]:
    """The card's input without the batch axis, in the card's layout."""
    height, width = card.input.size
    channels = card.input.channels
    if card.input.layout == "NCHW":
        return (channels, height, width)
    if card.input.layout == "NHWC":
        return (height, width, channels)
    return (channels * height * width,)


def input_shape_problem(card: ModelCard, shape: list[Any]) -> str | None:
    """Why the graph's declared input `shape` does not fit the card (None when it does).

    Symbolic dimensions (strings or None) fit anything; the batch axis must be symbolic, since
    the gate feeds batches of any size.
    """
    expected = expected_input_shape(card)
    if len(shape) != len(expected) + 1:
        return f"the model's input has shape {shape}, the card's input is (N, {expected})"
    if isinstance(shape[0], int):
        return (
            f"the model's input has a fixed batch size {shape[0]} (shape {shape}); export it with "
            "a dynamic batch axis"
        )
    for got, want in zip(shape[1:], expected, strict=True):
        if isinstance(got, int) and got != want:
            return (
                f"the model's input has shape {shape}, but input (size, channels, layout "
                f"{card.input.layout}) says (N, {', '.join(map(str, expected))})"
            )
    return None


class OnnxModel(CardFacts):
    """An ONNX classifier described by a model card; see `ModelAdapter`."""

    supports_gradients = False
    no_gradients_reason = NOT_DIFFERENTIABLE

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.session = _session(card)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(self.session.get_outputs()) != 1:
            raise UsageError(
                f"{card.path}: artifact: {card.artifact} has {len(inputs)} inputs and "
                f"{len(self.session.get_outputs())} outputs; the gate feeds one image tensor "
                "and reads one output"
            )
        problem = input_shape_problem(card, list(inputs[0].shape))
        if problem is not None:
            raise UsageError(f"{card.path}: input: {problem}")
        if inputs[0].type != "tensor(float)":
            raise UsageError(
                f"{card.path}: artifact: the model's input is {inputs[0].type}, not tensor(float)"
            )
        self.input_name = inputs[0].name
        self.forward_seconds = 0.0

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float RGB in [0, 1] -> (N, C) float64 probabilities."""
        return to_probabilities(self.card, self.raw_output(images))

    def raw_output(self, images: np.ndarray) -> np.ndarray:
        """The model's own output (logits, probabilities or sigmoid unit) as float64."""
        batch = check_probe_shape(self.card, images)
        if len(batch) == 0:
            return np.empty((0, self.card.output_units), dtype=np.float64)
        outputs = [
            self._forward(
                to_model_input(batch[start : start + self.card.batch_size], self.card.input)
            )
            for start in range(0, len(batch), self.card.batch_size)
        ]
        return np.concatenate(outputs).astype(np.float64)

    def _forward(self, model_input: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        try:
            (out,) = self.session.run(None, {self.input_name: model_input})
        except XaigateError:
            raise
        except Exception as exc:
            raise ModelError(
                f"{self.card.path}: the model failed on input of shape {model_input.shape}: "
                f"{_first_line(exc)}"
            ) from exc
        finally:
            self.forward_seconds += time.perf_counter() - started
        return np.asarray(out)


def _session(card: ModelCard) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise UsageError(
            f"{card.path}: framework: onnx needs onnxruntime (pip install -e '.[dev]')"
        ) from exc
    options = onnxruntime.SessionOptions()
    # One thread: the same reduction order on every machine, so maps repeat bit for bit; the
    # gate's parallelism is its xdist workers.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(
            str(card.artifact), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise UsageError(
            f"{card.path}: artifact: {card.artifact} is not an ONNX model onnxruntime can run: "
            f"{_first_line(exc)}"
        ) from exc
