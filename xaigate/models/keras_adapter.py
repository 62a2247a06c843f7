"""Keras 3 models (a `.keras` file, TensorFlow backend) behind `ModelAdapter`.

Only this module and the Keras explainers import TensorFlow, and only when a card says
`framework: keras`: a PyTorch gate never pays for it. The file is loaded with
`safe_mode=True` (no lambda bytecode is deserialised) and `compile=False` (no optimiser or loss
is needed to explain). The model is called directly, never with `model.predict`, whose per-call
set-up dominates LIME's many small batches.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from xaigate.errors import ModelError, UsageError, XaigateError
from xaigate.models.adapter import CardFacts
from xaigate.models.capabilities import NotApplicable
from xaigate.models.card import ModelCard
from xaigate.models.preprocess import (
    LUMA,
    affine,
    check_probe_shape,
    to_model_input,
    to_probabilities,
)

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

# The first 3.13 release with the fix of CVE-2026-0897 (a crafted HDF5 weights file); earlier
# releases also lack later safe_mode hardening.
MIN_KERAS = (3, 13, 2)
THREADS_VAR = "XAIGATE_TF_THREADS"
CONVOLUTIONS = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def import_keras(card_path: object) -> Any:
    """Keras on the TensorFlow backend, configured once; UsageError naming what is missing."""
    # Before the first import: these are read when TensorFlow and Keras start.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    backend = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        raise UsageError(
            f"{card_path}: framework: keras needs KERAS_BACKEND=tensorflow (gradients are taken "
            f"with tf.GradientTape), but KERAS_BACKEND is {backend!r}"
        )
    try:
        import keras
        import tensorflow as tf
    except ImportError as exc:
        raise UsageError(
            f"{card_path}: framework: keras needs tensorflow-cpu and keras>=3.13.2 "
            f"(pip install -e '.[dev]'): {_first_line(exc)}"
        ) from exc
    installed = keras.__version__
    if _version_tuple(installed) < MIN_KERAS:
        raise UsageError(
            f"{card_path}: framework: keras needs Keras 3.13.2 or later (earlier releases load "
            f"crafted files unsafely); installed: keras {installed}"
        )
    _limit_threads(tf)
    return keras


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


_threads_set = False


def _limit_threads(tf: Any) -> None:
    # The machine is shared by gates and training; intra-op threads default to 2, or
    # $XAIGATE_TF_THREADS. They can only be set before TensorFlow's runtime starts.
    global _threads_set
    if _threads_set:
        return
    _threads_set = True
    threads = int(os.environ.get(THREADS_VAR, min(2, os.cpu_count() or 1)))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # the runtime already started (another Keras model in this process): keep it


def load_keras_model(card: ModelCard) -> keras.Model:
    """The card's `.keras` artifact, loaded safely and without compiling."""
    keras = import_keras(card.path)
    try:
        model = keras.saving.load_model(card.artifact, compile=False, safe_mode=True)
    except Exception as exc:
        raise UsageError(
            f"{card.path}: artifact: {card.artifact} could not be loaded as a Keras model "
            f"with safe_mode=True: {_first_line(exc)}"
        ) from exc
    if not isinstance(model, keras.Model):
        raise UsageError(
            f"{card.path}: artifact: {card.artifact} holds a {type(model).__name__}, not a model"
        )
    return model


def iter_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, layer) of every layer, nested models' layers too, in definition order; a nested
    layer's path is ``outer/inner``."""
    for layer in getattr(model, "layers", []):
        path = f"{prefix}{layer.name}"
        yield path, layer
        if hasattr(layer, "layers"):
            yield from iter_layers(layer, f"{path}/")


class KerasModel(CardFacts):
    """A Keras classifier described by a model card; see `ModelAdapter`."""

    def __init__(self, card: ModelCard, model: keras.Model | None = None) -> None:
        """Load the card's artifact, or wrap `model` (built in code) when it is given."""
        self.card = card
        self.keras = import_keras(card.path)
        import tensorflow as tf

        self.tf = tf
        self.model = model if model is not None else load_keras_model(card)
        self.forward_seconds = 0.0
        self.gradient_seconds = 0.0

    @property
    def supports_gradients(self) -> bool:
        return True

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float RGB in [0, 1] -> (N, C) float64 probabilities."""
        return to_probabilities(self.card, self.raw_output(images))

    def raw_output(self, images: np.ndarray) -> np.ndarray:
        """The model's own output (logits, probabilities or sigmoid unit) as float64."""
        batch = check_probe_shape(self.card, images)
        if len(batch) == 0:
            return np.empty((0, self.card.output_units), dtype=np.float64)
        outputs = []
        for start in range(0, len(batch), self.card.batch_size):
            model_input = to_model_input(
                batch[start : start + self.card.batch_size], self.card.input
            )
            outputs.append(self._forward(model_input))
        return np.concatenate(outputs).astype(np.float64)

    def _forward(self, model_input: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        try:
            # predict_on_batch runs one compiled call; model.predict would set up a dataset and
            # callbacks per call (5.5x slower inside LIME).
            out = self.model.predict_on_batch(model_input)
        except XaigateError:
            raise
        except Exception as exc:
            raise ModelError(
                f"{self.card.path}: the model failed on input of shape {model_input.shape}: "
                f"{_first_line(exc)}"
            ) from exc
        finally:
            self.forward_seconds += time.perf_counter() - started
        if isinstance(out, list | tuple | dict):
            raise ModelError(
                f"{self.card.path}: the model returned {type(out).__name__} of outputs, not one "
                "tensor"
            )
        return np.asarray(out)

    def model_input(self, images: tf.Tensor) -> tf.Tensor:
        """Canonical NHWC RGB in [0, 1] -> the model's input, differentiably."""
        tf = self.tf
        spec = self.card.input
        x = images
        if spec.channels == 1:
            x = tf.reduce_sum(x * tf.constant(LUMA, dtype=x.dtype), axis=-1, keepdims=True)
        folded = affine(spec)
        if folded is not None:
            x = x * folded[0] + folded[1]
        if spec.layout == "NCHW":
            x = tf.transpose(x, (0, 3, 1, 2))
        elif spec.layout == "flat":
            x = tf.reshape(tf.transpose(x, (0, 3, 1, 2)), (tf.shape(x)[0], -1))
        return x

    def scores(self, images: tf.Tensor) -> tf.Tensor:
        """Canonical images -> (N, C) differentiable class scores whose softmax is the
        probability: the same convention as the PyTorch adapter's scores module (logits;
        log-probabilities; [-z/2, z/2] with z = logit(p) for one sigmoid unit)."""
        tf = self.tf
        out = self.model(self.model_input(images), training=False)
        if self.card.output == "probabilities":
            return tf.math.log(tf.maximum(out, 1e-12))
        if self.card.output == "sigmoid":
            p = tf.clip_by_value(tf.reshape(out, (-1,)), 1e-7, 1 - 1e-7)
            z = tf.math.log(p) - tf.math.log1p(-p)
            return tf.stack([-z / 2, z / 2], axis=1)
        return out

    def target_layer(self) -> Any:
        """The layer CAM methods read: the card's `target_layer` (a name, or ``outer/inner``
        for a layer of a nested model), else the last 2-D convolution, nested models too."""
        layers = list(iter_layers(self.model))
        convs = [path for path, layer in layers if type(layer).__name__ in CONVOLUTIONS]
        wanted = self.card.target_layer
        if wanted is not None:
            found = [layer for path, layer in layers if wanted in (path, path.rsplit("/", 1)[-1])]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise UsageError(
                    f"{self.card.path}: target_layer: {wanted!r} names {len(found)} layers of "
                    "nested models; give its path as outer/inner"
                )
            names = ", ".join((convs or [path for path, _ in layers])[-6:]) or "none"
            raise UsageError(
                f"{self.card.path}: target_layer: the model has no layer {wanted!r}; "
                f"{'convolution ' if convs else ''}layers include: {names}"
            )
        if not convs:
            raise NotApplicable(
                "model has no convolution layer (Grad-CAM needs one); set target_layer in the "
                "card to choose another layer"
            )
        return dict(layers)[convs[-1]]
