"""Explainers, registered by name; importing this package registers the built-in ones."""

from xaigate.explainers import (  # noqa: F401 - registration
    controls,
    gradcam,
    gradcam_plus_plus,
    integrated_gradients,
    lime_explainer,
    shap_explainer,
)
from xaigate.explainers.base import EXPLAINERS, Explainer, ExplainerConfig, Explanation

__all__ = ["EXPLAINERS", "Explainer", "ExplainerConfig", "Explanation"]
