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


class _ResidualBlock(nn.Module):
    """Two 3x3 convolutions and an identity (or 1x1 projection) shortcut, He et al. 2016."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # The projection is registered first, so the block's last convolution is `body.3`.
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )
        self.body = nn.Sequential(
            *_block(in_channels, out_channels),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A stem convolution and three residual stages at 64, 32 and 16 px, global average pooling.

    Grad-CAM reads `stages.4`, the last block's output (after the residual sum): the block's
    last convolution alone misses what the shortcut carries.
    """

    def __init__(self, num_classes: int = 2, width: int = 8, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_block(in_channels, width))
        self.stages = nn.Sequential(
            _ResidualBlock(width, width),
            nn.MaxPool2d(2),
            _ResidualBlock(width, 2 * width),
            nn.MaxPool2d(2),
            _ResidualBlock(2 * width, 4 * width),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.stages(self.stem(x))).flatten(1))


class FlatMLP(nn.Module):
    """Two hidden layers on the flattened pixels (the seed project's MLP): no convolution, so
    no class activation map exists for it.

    Takes (N, C*H*W) in channel-first order, as a `layout: flat` card feeds it; NCHW batches
    (training) are flattened the same way.
    """

    def __init__(self, num_classes: int = 2, pixels: int = 3 * 64 * 64, hidden: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(pixels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(),
            nn.Linear(hidden // 2, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))
