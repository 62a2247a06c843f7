"""Integrated Gradients through captum (Sundararajan et al. 2017, "Axiomatic attribution for
deep networks").

The baseline is configurable and recorded: a black baseline on a light-background image
attributes to the background and would fail a good model, so `blur` (a blurred copy of the
image, which keeps the background's colour) is the default; `mean` is the probe set's mean
image (of the model's original probes).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from scipy import ndimage

from xaigate.digests import array_digest
from xaigate.explainers.base import Explainer, ExplainerConfig, Explanation, register_explainer
from xaigate.explainers.frameworks import gradient_framework
from xaigate.explainers.torch_layers import explain_in_batches, reason_not_applicable, scores_of
from xaigate.models.adapter import ModelAdapter


class IntegratedGradientsConfig(ExplainerConfig):
    baseline: Literal["black", "white", "blur", "mean"] = "blur"
    blur_sigma: float = Field(5.0, gt=0, description="pixels, for baseline: blur")
    n_steps: int = Field(32, ge=2)
    batch_size: int = Field(16, ge=1, description="images per call")
    internal_batch_size: int = Field(256, ge=1, description="interpolated images per pass")


def baseline_images(
    images: np.ndarray, config: IntegratedGradientsConfig, mean: np.ndarray | None = None
) -> np.ndarray:
    """The baseline of each NHWC image under the configured rule (`mean`: an HWC image); the
    one definition for every framework."""
    if config.baseline == "mean":
        if mean is None:
            raise ValueError("baseline 'mean' needs the probe set's mean image (prepare first)")
        return np.broadcast_to(mean.astype(images.dtype), images.shape).copy()
    if config.baseline == "black":
        return np.zeros_like(images)
    if config.baseline == "white":
        return np.ones_like(images)
    sigma = (0, config.blur_sigma, config.blur_sigma, 0)
    return ndimage.gaussian_filter(images, sigma=sigma, mode="nearest")


def baselines(
    images: torch.Tensor, config: IntegratedGradientsConfig, mean: np.ndarray | None = None
) -> torch.Tensor:
    """`baseline_images` of NCHW tensors."""
    nhwc = images.detach().permute(0, 2, 3, 1).numpy()
    chosen = baseline_images(nhwc, config, mean)
    return torch.from_numpy(np.ascontiguousarray(chosen.transpose(0, 3, 1, 2))).to(images.dtype)


def _check_differentiable(model: ModelAdapter) -> None:
    if gradient_framework(model) == "torch":
        scores_of(model)


@register_explainer("integrated_gradients")
class IntegratedGradientsExplainer(Explainer):
    linear_in_score = True
    config_model = IntegratedGradientsConfig
    config: IntegratedGradientsConfig

    def __init__(self, config: IntegratedGradientsConfig) -> None:
        super().__init__(config)
        self.mean_images: dict[str, np.ndarray] = {}

    def passes_per_image(self) -> int:
        return self.config.n_steps

    def not_applicable_reason(self, model: ModelAdapter) -> str | None:
        return reason_not_applicable(lambda: _check_differentiable(model))

    def prepare(self, model: ModelAdapter, probe_images: np.ndarray) -> None:
        self.mean_images[model.name] = probe_images.mean(axis=0)

    def fingerprint(self, model: ModelAdapter) -> dict[str, Any]:
        fingerprint = super().fingerprint(model)
        if self.config.baseline == "mean":
            # The mean image comes from the probe set seen in `prepare`, not from the params.
            mean = self.mean_images.get(model.name)
            fingerprint["mean_baseline"] = None if mean is None else array_digest(mean)
        return fingerprint

    def explain(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, seeds: list[int]
    ) -> list[Explanation]:
        if gradient_framework(model) == "keras":
            return self._explain_keras(model, images, targets)
        from captum.attr import IntegratedGradients  # when used, as in gradcam.py

        method = IntegratedGradients(scores_of(model))
        mean = self.mean_images.get(model.name)

        def maps_of(batch: torch.Tensor, batch_targets: list[int]) -> torch.Tensor:
            attributions = method.attribute(
                batch,
                baselines=baselines(batch, self.config, mean),
                target=batch_targets,
                n_steps=self.config.n_steps,
                internal_batch_size=self.config.internal_batch_size,
            )
            # Signed sum over colour channels: one value per pixel, positive = for the class.
            return attributions.sum(dim=1)

        return explain_in_batches(self, model, images, targets, self.config.batch_size, maps_of)

    def _explain_keras(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray
    ) -> list[Explanation]:
        from xaigate.explainers import keras_gradients

        mean = self.mean_images.get(model.name)

        def maps_of(batch: np.ndarray, batch_targets: list[int]) -> np.ndarray:
            return keras_gradients.integrated_gradients_maps(
                model,  # type: ignore[arg-type]
                batch,
                baseline_images(batch, self.config, mean),
                batch_targets,
                self.config.n_steps,
                self.config.internal_batch_size,
            )

        return keras_gradients.explain_in_batches(
            self,
            model,
            images,
            targets,
            self.config.batch_size,
            maps_of,  # type: ignore[arg-type]
        )
