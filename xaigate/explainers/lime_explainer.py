"""LIME on SLIC superpixels (Ribeiro et al. 2016, "Why should I trust you?")."""

from __future__ import annotations

import time
from contextlib import contextmanager
from unittest import mock

import numpy as np
from lime import lime_image
from pydantic import Field
from skimage.segmentation import slic

from xaigate.explainers.base import (
    ExplainerConfig,
    Explanation,
    PerImageExplainer,
    register_explainer,
)
from xaigate.models.adapter import ModelAdapter


class LimeConfig(ExplainerConfig):
    num_samples: int = Field(1000, ge=10)
    batch_size: int = Field(32, ge=1, description="images per classifier call; lime's is 10")
    n_segments: int = Field(50, ge=2, description="SLIC: approximate number of superpixels")
    compactness: float = Field(10.0, gt=0)
    sigma: float = Field(1.0, ge=0)
    kernel_width: float = Field(0.25, gt=0)
    hide_color: float | None = Field(None, description="fill of hidden segments; None: mean")


def segment(image: np.ndarray, config: LimeConfig) -> np.ndarray:
    """SLIC superpixels: quickshift, lime's default, yields only a handful at 64x64."""
    return slic(
        image.astype(np.float64),
        n_segments=config.n_segments,
        compactness=config.compactness,
        sigma=config.sigma,
        start_label=0,
        channel_axis=-1,
    )


@contextmanager
def _quiet_lime():
    # lime 0.2.0.1 always wraps its sampling loop in tqdm and has no switch to turn it off.
    with mock.patch.object(lime_image, "tqdm", lambda iterable, **_: iterable):
        yield


@register_explainer("lime")
class LimeExplainer(PerImageExplainer):
    stochastic = True
    config_model = LimeConfig
    config: LimeConfig

    def explain_one(
        self, model: ModelAdapter, image: np.ndarray, target: int, seed: int
    ) -> Explanation:
        started = time.perf_counter()
        segments = segment(image, self.config)
        # A fresh explainer per call: its random_state drives the perturbations and advances
        # between calls, so reusing one would make a map depend on what was explained before.
        explainer = lime_image.LimeImageExplainer(
            kernel_width=self.config.kernel_width, random_state=seed
        )
        with _quiet_lime():
            result = explainer.explain_instance(
                image.astype(np.float64),
                model.predict_proba,
                labels=(target,),
                top_labels=None,
                num_features=int(segments.max()) + 1,
                num_samples=self.config.num_samples,
                batch_size=self.config.batch_size,
                segmentation_fn=lambda _: segments,
                hide_color=self.config.hide_color,
                random_seed=seed,
            )
        weights = np.zeros(int(segments.max()) + 1, dtype=np.float64)
        for segment_id, weight in result.local_exp[target]:
            weights[segment_id] = weight
        return Explanation(
            attribution=weights[segments].astype(np.float32),
            method=self.name,
            target=target,
            params=self.params(),
            seed=seed,
            seconds=time.perf_counter() - started,
            extras={"segments": int(segments.max()) + 1, "score": float(result.score)},
        )
