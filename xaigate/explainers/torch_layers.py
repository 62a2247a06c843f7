"""Shared plumbing of the PyTorch gradient explainers: the scores module, the target layer,
and NHWC numpy batches as NCHW tensors."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from xaigate.explainers.base import Explainer, Explanation
from xaigate.models.adapter import ModelAdapter
from xaigate.models.capabilities import NotApplicable


def scores_and_layer(model: ModelAdapter) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(scores module, CAM target layer) of a torch model, or NotApplicable with the reason."""
    scores = scores_of(model)
    return scores, model.target_layer()  # type: ignore[attr-defined]


def scores_of(model: ModelAdapter) -> torch.nn.Module:
    """The differentiable class-score module of a torch model, or NotApplicable."""
    if not getattr(model, "supports_gradients", False):
        raise NotApplicable(
            f"{model.name}: gradient explainers need a differentiable PyTorch model"
        )
    return model.scores_module()  # type: ignore[attr-defined]


def reason_not_applicable(probe) -> str | None:  # noqa: ANN001 - any zero-argument callable
    """Run `probe()`; return the NotApplicable reason it raises, or None."""
    try:
        probe()
    except NotApplicable as exc:
        return str(exc)
    return None


def explain_in_batches(
    explainer: Explainer,
    model: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    maps_of: Callable[[torch.Tensor, list[int]], torch.Tensor],
) -> list[Explanation]:
    """Run `maps_of(NCHW batch, targets) -> (n, H, W)` over NHWC numpy images, `batch_size` at a
    time, and wrap each map as an Explanation (deterministic: no seed) with its share of time."""
    explanations: list[Explanation] = []
    for start in range(0, len(images), batch_size):
        started = time.perf_counter()
        chunk = np.ascontiguousarray(images[start : start + batch_size].transpose(0, 3, 1, 2))
        batch_targets = [int(t) for t in targets[start : start + batch_size]]
        maps = maps_of(torch.from_numpy(chunk).float(), batch_targets).detach().numpy()
        elapsed = time.perf_counter() - started
        model.gradient_seconds = getattr(model, "gradient_seconds", 0.0) + elapsed
        seconds = elapsed / len(batch_targets)
        explanations.extend(
            Explanation(m.astype(np.float32), explainer.name, t, explainer.params(), None, seconds)
            for m, t in zip(maps, batch_targets, strict=True)
        )
    return explanations
