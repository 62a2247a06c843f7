"""Grad-CAM++ (Chattopadhyay et al. 2018, "Grad-CAM++: Generalized gradient-based visual
explanations for deep convolutional networks").

captum has no Grad-CAM++, so it is written here on the target layer's activations A and the
gradients g of the class score S. We use the paper's closed form for an exponential output
Y = exp(S) (its eq. 19), in which second and third derivatives are powers of the first:

    alpha_kij = g_kij^2 / (2 g_kij^2 + sum_ab A_kab g_kij^3)
    w_k       = sum_ij alpha_kij relu(g_kij)
    map       = relu(sum_k w_k A_k), upsampled to the image

(the constant factor exp(S) cancels in alpha and only scales w, so it is dropped).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from xaigate.explainers.base import Explainer, ExplainerConfig, Explanation, register_explainer
from xaigate.explainers.frameworks import cam_layer, gradient_framework
from xaigate.explainers.torch_layers import (
    explain_in_batches,
    reason_not_applicable,
    scores_and_layer,
)
from xaigate.models.adapter import ModelAdapter


class GradCamPlusPlusConfig(ExplainerConfig):
    batch_size: int = Field(64, ge=1)


def gradcam_plus_plus_maps(
    scores: torch.nn.Module, layer: torch.nn.Module, batch: torch.Tensor, targets: list[int]
) -> torch.Tensor:
    """(N, h, w) Grad-CAM++ maps at the layer's resolution."""
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        with torch.enable_grad():
            output = scores(batch.requires_grad_(True))
            chosen = output.gather(1, torch.tensor(targets).view(-1, 1)).sum()
            activations = captured[-1]
            (gradients,) = torch.autograd.grad(chosen, activations)
    finally:
        handle.remove()
    activations = activations.detach()
    squared = gradients.pow(2)
    denominator = 2 * squared + activations.sum(dim=(2, 3), keepdim=True) * gradients.pow(3)
    alpha = squared / torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    weights = (alpha * F.relu(gradients)).sum(dim=(2, 3), keepdim=True)
    return F.relu((weights * activations).sum(dim=1))


@register_explainer("gradcam_pp")
class GradCamPlusPlusExplainer(Explainer):
    config_model = GradCamPlusPlusConfig
    config: GradCamPlusPlusConfig

    def not_applicable_reason(self, model: ModelAdapter) -> str | None:
        return reason_not_applicable(lambda: cam_layer(model))

    def explain(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, seeds: list[int]
    ) -> list[Explanation]:
        if gradient_framework(model) == "keras":
            return self._explain_keras(model, images, targets)
        scores, layer = scores_and_layer(model)
        size = images.shape[1:3]

        def maps_of(batch: torch.Tensor, batch_targets: list[int]) -> torch.Tensor:
            maps = gradcam_plus_plus_maps(scores, layer, batch, batch_targets)
            return F.interpolate(maps[:, None], size=size, mode="bilinear")[:, 0]

        return explain_in_batches(self, model, images, targets, self.config.batch_size, maps_of)

    def _explain_keras(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray
    ) -> list[Explanation]:
        from xaigate.explainers import keras_gradients

        def maps_of(batch: np.ndarray, batch_targets: list[int]) -> np.ndarray:
            return keras_gradients.gradcam_plus_plus_maps(model, batch, batch_targets)  # type: ignore[arg-type]

        return keras_gradients.explain_in_batches(
            self,
            model,
            images,
            targets,
            self.config.batch_size,
            maps_of,  # type: ignore[arg-type]
        )
