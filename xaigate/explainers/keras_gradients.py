"""Grad-CAM, Grad-CAM++ and Integrated Gradients of Keras models, on `tf.GradientTape`.

The same definitions as the PyTorch explainers (captum's LayerGradCam and IntegratedGradients
with Gauss-Legendre steps, and gradcam_plus_plus.py's closed form), on the same class scores
(`KerasModel.scores`), so a Keras twin of a PyTorch model gets the same maps. TensorFlow comes
from the model's adapter: this module imports it nowhere, so a PyTorch gate never loads it.

Maps are computed channels-last: activations (N, h, w, k), images (N, H, W, 3).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from xaigate.explainers.base import Explainer, Explanation

if TYPE_CHECKING:
    from xaigate.models.keras_adapter import KerasModel

# captum's interpolate_mode names -> tf.image.resize methods (half-pixel centres, as torch's
# align_corners=False).
RESIZE = {"bilinear": "bilinear", "nearest": "nearest", "bicubic": "bicubic"}


def activations_and_gradients(
    model: KerasModel, layer: Any, images: np.ndarray, targets: list[int]
) -> tuple[Any, Any]:
    """The layer's activations and the gradients of the targets' summed scores at them,
    channels-last (N, h, w, k). The layer's output is captured on its way through the call
    (a hook, like torch's), so a layer of a nested model works as well as a top-level one."""
    tf = model.tf
    captured: list[Any] = []
    original = layer.call

    def capture(*args: Any, **kwargs: Any) -> Any:
        output = original(*args, **kwargs)
        captured.append(output)
        return output

    object.__setattr__(layer, "call", capture)
    try:
        with tf.GradientTape() as tape:
            scores = model.scores(tf.constant(images))
            chosen = tf.reduce_sum(tf.gather(scores, targets, axis=1, batch_dims=1))
        if not captured:
            raise RuntimeError(f"layer {layer.name!r} was not called by the model's forward pass")
        activations = captured[-1]
        gradients = tape.gradient(chosen, activations)
    finally:
        del layer.__dict__["call"]
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        activations = tf.transpose(activations, (0, 2, 3, 1))
        gradients = tf.transpose(gradients, (0, 2, 3, 1))
    return activations, gradients


def _upsample(model: KerasModel, maps: Any, size: tuple[int, int], method: str) -> np.ndarray:
    tf = model.tf
    resized = tf.image.resize(maps[..., None], size, method=RESIZE[method], antialias=False)
    return resized[..., 0].numpy()


def gradcam_maps(
    model: KerasModel, images: np.ndarray, targets: list[int], interpolation: str
) -> np.ndarray:
    """(N, H, W) Grad-CAM: relu(sum_k mean_ij(g_kij) A_k), upsampled (as captum's
    LayerGradCam with relu_attributions=True and LayerAttribution.interpolate)."""
    tf = model.tf
    activations, gradients = activations_and_gradients(model, model.target_layer(), images, targets)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))
    return _upsample(model, maps, images.shape[1:3], interpolation)


def gradcam_plus_plus_maps(model: KerasModel, images: np.ndarray, targets: list[int]) -> np.ndarray:
    """(N, H, W) Grad-CAM++ by the closed form of gradcam_plus_plus.py, upsampled bilinearly."""
    tf = model.tf
    activations, gradients = activations_and_gradients(model, model.target_layer(), images, targets)
    squared = tf.square(gradients)
    denominator = 2 * squared + tf.reduce_sum(activations, axis=(1, 2), keepdims=True) * (
        squared * gradients
    )
    alpha = squared / tf.where(denominator != 0, denominator, tf.ones_like(denominator))
    weights = tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1))
    return _upsample(model, maps, images.shape[1:3], "bilinear")


def gauss_legendre(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas in (0, 1), weights summing to 1): captum's `gausslegendre` approximation."""
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    return 0.5 * (nodes + 1.0), 0.5 * weights


def integrated_gradients_maps(
    model: KerasModel,
    images: np.ndarray,
    baselines: np.ndarray,
    targets: list[int],
    n_steps: int,
    internal_batch_size: int,
) -> np.ndarray:
    """(N, H, W) Integrated Gradients summed over colour channels (signed: positive = for the
    class): (x - x') * sum_s w_s grad S(x' + a_s (x - x')), captum's Gauss-Legendre rule."""
    tf = model.tf
    alphas, weights = gauss_legendre(n_steps)
    delta = images - baselines
    # Step-major, as captum lays out its expanded batch: all images at step 0, then step 1, ...
    path = (baselines[None] + alphas[:, None, None, None, None] * delta[None]).astype(np.float32)
    path = path.reshape(-1, *images.shape[1:])
    path_targets = np.tile(np.asarray(targets), n_steps)
    grads = []
    for start in range(0, len(path), internal_batch_size):
        chunk = tf.constant(path[start : start + internal_batch_size])
        with tf.GradientTape() as tape:
            tape.watch(chunk)
            scores = model.scores(chunk)
            chosen = tf.gather(
                scores, path_targets[start : start + internal_batch_size], axis=1, batch_dims=1
            )
        grads.append(tape.gradient(chosen, chunk).numpy())
    gradients = np.concatenate(grads).reshape(n_steps, *images.shape)
    total = np.tensordot(weights.astype(np.float32), gradients, axes=1)
    return (delta * total).sum(axis=-1)


def explain_in_batches(
    explainer: Explainer,
    model: KerasModel,
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    maps_of: Callable[[np.ndarray, list[int]], np.ndarray],
) -> list[Explanation]:
    """Run `maps_of(NHWC batch, targets) -> (n, H, W)`, `batch_size` images at a time, and wrap
    each map as a deterministic Explanation with its share of the time (as torch_layers')."""
    explanations: list[Explanation] = []
    for start in range(0, len(images), batch_size):
        started = time.perf_counter()
        chunk = np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32)
        batch_targets = [int(t) for t in targets[start : start + batch_size]]
        maps = maps_of(chunk, batch_targets)
        elapsed = time.perf_counter() - started
        model.gradient_seconds += elapsed
        seconds = elapsed / len(batch_targets)
        explanations.extend(
            Explanation(m.astype(np.float32), explainer.name, t, explainer.params(), None, seconds)
            for m, t in zip(maps, batch_targets, strict=True)
        )
    return explanations
