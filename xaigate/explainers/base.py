"""The one explainer interface and the explanation type every explainer returns."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from xaigate.models.adapter import ModelAdapter
from xaigate.registry import Registry


class ExplainerConfig(BaseModel):
    """Parameters of an explainer, read from the `explainers:` section of thresholds.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Explanation:
    """An HxW float map in image coordinates (the model's input size) for one image and target."""

    attribution: np.ndarray
    method: str
    target: int
    params: dict[str, Any]
    seed: int | None
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)


class Explainer(ABC):
    """Explains a batch of images for given target classes.

    Subclasses register with ``@EXPLAINERS.register("name")`` and declare ``config_model``.
    ``stochastic`` explainers take the seed; deterministic ones ignore it and record None.
    """

    name: ClassVar[str]
    stochastic: ClassVar[bool] = False
    config_model: ClassVar[type[ExplainerConfig]] = ExplainerConfig
    # Whether explaining images for one class makes another class's maps cheaper in the same
    # process (LIME keeps the model's outputs on an image's samples), or the explainer is cheap
    # enough that one work group is best (gradient explainers). When not (SHAP), each class's
    # cases form a work group of their own, which can go to another worker.
    classes_share_work: ClassVar[bool] = True
    # Whether the map explains the probabilities of `predict_proba` (LIME, SHAP), not the
    # differentiable class scores that the gradient explainers follow. Of a two-class model's
    # probabilities one is one minus the other, so its two classes' maps are each other's
    # negation by construction (see the class_contrast check).
    explains_probabilities: ClassVar[bool] = False
    # Whether the map is linear in the class score it follows (Integrated Gradients: a path
    # integral of its gradient), so that a score negated gives the map negated.
    linear_in_score: ClassVar[bool] = False
    # Whether the map is the positive part of a map linear in the score's gradient at the image
    # (Grad-CAM: relu of the activations weighted by their mean gradients). A score whose
    # gradient is a negative multiple of another's then gets relu(-M) beside relu(M): maps with
    # disjoint supports (but where upsampling blends them), whose rank correlation is at most 0.
    rectified_linear_in_gradient: ClassVar[bool] = False

    def __init__(self, config: ExplainerConfig) -> None:
        self.config = config

    def not_applicable_reason(self, model: ModelAdapter) -> str | None:
        """Why this explainer cannot explain `model` (None when it can)."""
        return None

    def prepare(self, model: ModelAdapter, probe_images: np.ndarray) -> None:
        """See the model's (original) probe images once before explaining; most ignore them."""
        return None

    @abstractmethod
    def explain(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, seeds: list[int]
    ) -> list[Explanation]:
        """(N, H, W, 3) float32 images in [0, 1], (N,) class indices, one seed per image."""

    def params(self) -> dict[str, Any]:
        return self.config.model_dump()

    def fresh(self) -> Explainer:
        """This explainer as if just built: nothing kept from earlier explanations (what
        `prepare` set up stays). The reproducibility check recomputes maps with it, so that no
        memo can hide a map that depends on what was explained before."""
        clone = copy.copy(self)
        clone.forget()
        return clone

    def forget(self) -> None:
        """Drop what is kept from earlier explanations; explainers that keep nothing ignore it."""
        return None

    def passes_per_image(self) -> int:
        """About how many model passes one explanation takes: a cost hint for scheduling."""
        return 1

    def fingerprint(self, model: ModelAdapter) -> dict[str, Any]:
        """Everything of this explainer that determines its maps of `model`, as JSON values.

        The explanation cache keys on it: an explainer whose output also depends on state set in
        `prepare` (a baseline computed from the probe set) must add a digest of that state.
        """
        return {"params": self.params()}


class PerImageExplainer(Explainer):
    """An explainer that works one image at a time (LIME, SHAP): subclasses write `explain_one`."""

    def explain(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, seeds: list[int]
    ) -> list[Explanation]:
        return [
            self.explain_one(model, image, int(target), seed)
            for image, target, seed in zip(images, targets, seeds, strict=True)
        ]

    @abstractmethod
    def explain_one(
        self, model: ModelAdapter, image: np.ndarray, target: int, seed: int
    ) -> Explanation:
        """One (H, W, 3) image explained for class index `target` under `seed`."""


EXPLAINERS: Registry[type[Explainer]] = Registry("explainer")


def register_explainer(name: str):  # noqa: ANN201 - a class decorator
    """Register an Explainer subclass under `name` (the key used in thresholds.yaml)."""

    def decorate(cls: type[Explainer]) -> type[Explainer]:
        cls.name = name
        return EXPLAINERS.add(name, cls)

    return decorate
