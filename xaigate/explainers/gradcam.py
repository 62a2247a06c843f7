"""Grad-CAM through captum (Selvaraju et al. 2017, "Grad-CAM: Visual explanations from deep
networks via gradient-based localization")."""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from xaigate.explainers.base import Explainer, ExplainerConfig, Explanation, register_explainer
from xaigate.explainers.frameworks import cam_layer, gradient_framework
from xaigate.explainers.torch_layers import (
    explain_in_batches,
    reason_not_applicable,
    scores_and_layer,
)
from xaigate.models.adapter import ModelAdapter


class GradCamConfig(ExplainerConfig):
    batch_size: int = Field(64, ge=1, description="images per forward/backward pass")
    interpolation: str = Field("bilinear", pattern="^(bilinear|nearest|bicubic)$")


@register_explainer("gradcam")
class GradCamExplainer(Explainer):
    config_model = GradCamConfig
    config: GradCamConfig
    rectified_linear_in_gradient = True

    def not_applicable_reason(self, model: ModelAdapter) -> str | None:
        return reason_not_applicable(lambda: cam_layer(model))

    def explain(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, seeds: list[int]
    ) -> list[Explanation]:
        if gradient_framework(model) == "keras":
            return self._explain_keras(model, images, targets)
        # captum is imported when used: it costs a gate process 0.4 s it may never need.
        from captum.attr import LayerAttribution, LayerGradCam

        scores, layer = scores_and_layer(model)
        cam = LayerGradCam(scores, layer)
        size = images.shape[1:3]

        def maps_of(batch: torch.Tensor, batch_targets: list[int]) -> torch.Tensor:
            layer_maps = cam.attribute(batch, target=batch_targets, relu_attributions=True)
            return LayerAttribution.interpolate(
                layer_maps, size, interpolate_mode=self.config.interpolation
            )[:, 0]

        return explain_in_batches(self, model, images, targets, self.config.batch_size, maps_of)

    def _explain_keras(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray
    ) -> list[Explanation]:
        from xaigate.explainers import keras_gradients

        def maps_of(batch: np.ndarray, batch_targets: list[int]) -> np.ndarray:
            return keras_gradients.gradcam_maps(
                model,
                batch,
                batch_targets,
                self.config.interpolation,  # type: ignore[arg-type]
            )

        return keras_gradients.explain_in_batches(
            self,
            model,
            images,
            targets,
            self.config.batch_size,
            maps_of,  # type: ignore[arg-type]
        )
