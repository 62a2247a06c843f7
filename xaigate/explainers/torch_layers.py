"""Shared plumbing of the PyTorch gradient explainers: the scores module, the target layer,
and NHWC numpy batches as NCHW tensors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

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


def batches(
    images: np.ndarray, targets: np.ndarray, size: int
) -> Iterator[tuple[torch.Tensor, list[int]]]:
    """(N, H, W, 3) numpy images -> NCHW float tensors with their targets, `size` at a time."""
    for start in range(0, len(images), size):
        chunk = np.ascontiguousarray(images[start : start + size].transpose(0, 3, 1, 2))
        yield torch.from_numpy(chunk).float(), [int(t) for t in targets[start : start + size]]
