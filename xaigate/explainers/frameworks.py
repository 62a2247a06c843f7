"""Which framework's gradients explain a model: the gradient explainers dispatch on it.

One explainer name (`gradcam`, `gradcam_pp`, `integrated_gradients`) covers every framework,
so thresholds.yaml says nothing about frameworks; each explainer keeps one map function per
framework it supports.
"""

from __future__ import annotations

from xaigate.explainers.torch_layers import scores_and_layer
from xaigate.models.adapter import ModelAdapter
from xaigate.models.capabilities import NotApplicable

GRADIENT_FRAMEWORKS = ("torch", "keras")


def gradient_framework(model: ModelAdapter) -> str:
    """`torch` or `keras`, or NotApplicable with the reason the model has no gradients."""
    framework = model.card.framework
    if framework not in GRADIENT_FRAMEWORKS or not getattr(model, "supports_gradients", False):
        why = getattr(model, "no_gradients_reason", f"a {framework} model gives no gradients")
        raise NotApplicable(f"{model.name}: gradient explainers need a differentiable model: {why}")
    return framework


def cam_layer(model: ModelAdapter) -> object:
    """The layer CAM methods read, of a torch or keras model; NotApplicable otherwise (an ONNX
    model, a TorchScript module, a model without convolutions)."""
    if gradient_framework(model) == "keras":
        return model.target_layer()  # type: ignore[attr-defined]
    return scores_and_layer(model)[1]
