"""Deterministic training of small reference classifiers on generated faces.

Used by the recipes in `models/recipes/`; every random choice comes from `seed`, so the same
recipe gives the same weights on the same machine and library versions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def train_classifier(
    module: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    learning_rate: float = 5e-3,
) -> nn.Module:
    """Fit `module` (NCHW in, logits out) with Adam and cross-entropy; returns it in eval mode.

    `images` are (N, H, W, 3) float32 in [0, 1]; `labels` (N,) class indices.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
    targets = torch.from_numpy(labels.astype(np.int64))
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser,
        max_lr=learning_rate,
        total_steps=epochs * int(np.ceil(len(inputs) / batch_size)),
    )
    loss_fn = nn.CrossEntropyLoss()
    module.train()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(inputs)))
        for start in range(0, len(inputs), batch_size):
            batch = order[start : start + batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(module(inputs[batch]), targets[batch])
            loss.backward()
            optimiser.step()
            schedule.step()
    return module.eval()


def accuracy(module: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of an NCHW-logits module on NHWC images."""
    with torch.inference_mode():
        inputs = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
        predicted = torch.cat([module(chunk).argmax(1) for chunk in inputs.split(256)])
    return float((predicted.numpy() == labels).mean())
