"""Control explainers: maps that know nothing of the model, as baselines for the real ones.

A real explainer that does not beat these on region focus explains nothing; a check that these
pass cannot tell good models from bad.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field
from scipy import ndimage

from xaigate.explainers.base import Explainer, ExplainerConfig, Explanation, register_explainer
from xaigate.models.adapter import ModelAdapter


class CentrePriorConfig(ExplainerConfig):
    sigma: float = Field(0.25, gt=0, description="Gaussian width, as a share of the image size")


class _Control(Explainer):
    def map_for(self, image: np.ndarray, seed: int) -> np.ndarray:
        raise NotImplementedError

    def explain(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, seeds: list[int]
    ) -> list[Explanation]:
        return [
            Explanation(
                self.map_for(image, seed).astype(np.float32),
                self.name,
                int(target),
                self.params(),
                seed if self.stochastic else None,
                0.0,
            )
            for image, target, seed in zip(images, targets, seeds, strict=True)
        ]


@register_explainer("random")
class RandomControl(_Control):
    """Uniform random values: scores a region's area share on relevance mass."""

    stochastic = True

    def map_for(self, image: np.ndarray, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).random(image.shape[:2])


@register_explainer("centre_prior")
class CentrePriorControl(_Control):
    """A Gaussian at the image centre: what 'the object is in the middle' alone scores."""

    config_model = CentrePriorConfig
    config: CentrePriorConfig

    def map_for(self, image: np.ndarray, seed: int) -> np.ndarray:
        height, width = image.shape[:2]
        rows = (np.arange(height) - (height - 1) / 2) / (self.config.sigma * height)
        cols = (np.arange(width) - (width - 1) / 2) / (self.config.sigma * width)
        return np.exp(-0.5 * (rows[:, None] ** 2 + cols[None, :] ** 2))


@register_explainer("edges")
class EdgeControl(_Control):
    """Sobel gradient magnitude of the grey image: what 'where the drawing is' alone scores."""

    def map_for(self, image: np.ndarray, seed: int) -> np.ndarray:
        grey = image.mean(axis=2)
        return np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1))
