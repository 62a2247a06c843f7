"""Architectures of the reference models (model cards point here as `file.py:ClassName`)."""

from __future__ import annotations

import torch
from torch import nn


def _block(in_channels: int, out_channels: int) -> list[nn.Module]:
    # Batch norm: without it this net sits at chance for several epochs before it learns.
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


class SmallCNN(nn.Module):
    """Four 3x3 convolutions, global average pooling, one linear layer.

    The last convolution works at 1/4 of the input size (16x16 for 64x64 faces): fine enough for
    Grad-CAM to tell the mouth from the eyes. Its receptive field (26 px) spans a whole mouth.
    """

    def __init__(self, num_classes: int = 2, width: int = 8, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_block(in_channels, width),
            nn.MaxPool2d(2),
            *_block(width, 2 * width),
            nn.MaxPool2d(2),
            *_block(2 * width, 4 * width),
            *_block(4 * width, 4 * width),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))
