"""Tiny architectures and card-writing helpers for the model card and torch adapter tests.

Cards refer to this file by absolute path ("/.../model_zoo_for_tests.py:SmallCNN"), so the
adapter imports it the way it imports a user's `arch.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

ZOO_FILE = Path(__file__).resolve()
SIZE = (16, 16)


class SmallCNN(nn.Module):
    """Three convolutions, NCHW input, logits out; `features.6` is the last convolution."""

    def __init__(self, num_classes: int = 2, channels: int = 3, width: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class NhwcCNN(SmallCNN):
    """SmallCNN that takes NHWC input (same state-dict keys, so the same weights fit)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 3, 1, 2))


class SoftmaxCNN(SmallCNN):
    """SmallCNN returning probabilities."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(super().forward(x), dim=1)


class SigmoidCNN(SmallCNN):
    """SmallCNN squashed by a sigmoid per unit: with 2 classes, a wrong card for `sigmoid`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(x))


class GrayFlatMLP(nn.Module):
    """Flattened grayscale pixels in, one sigmoid unit out; no convolution at all."""

    def __init__(self, pixels: int = SIZE[0] * SIZE[1], hidden: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(pixels, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(x))


class NanCNN(SmallCNN):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * float("nan")


class DropoutCNN(SmallCNN):
    """Dropout that stays on in eval mode, like a model exported in training mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.dropout(x, 0.5, training=True))


def write_marker(path: str) -> None:
    """Evidence that unpickling ran code: the security tests assert this never happens."""
    Path(path).write_text("unpickling ran code", encoding="utf-8")


class Booby:
    """Unpickling this calls write_marker, as a malicious checkpoint would call os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return write_marker, (self.marker,)


class BoobyCNN(SmallCNN):
    """A whole module saved with torch.save(model); restoring it would write the marker."""

    def __init__(self, marker: str = "") -> None:
        super().__init__()
        self.marker = marker

    def __setstate__(self, state: dict[str, Any]) -> None:
        write_marker(state["marker"])
        super().__setstate__(state)


def seeded(cls: type[nn.Module], seed: int = 0, **kwargs: Any) -> nn.Module:
    torch.manual_seed(seed)
    return cls(**kwargs).eval()


def images(count: int = 5, size: tuple[int, int] = SIZE, seed: int = 0) -> np.ndarray:
    """(count, H, W, 3) float32 RGB in [0, 1], as probes arrive."""
    return np.random.default_rng(seed).random((count, *size, 3), dtype=np.float32)


def card_data(**overrides: Any) -> dict[str, Any]:
    """A valid state_dict card for SmallCNN with keys overridden (None drops a key).

    `input` overrides are merged into the default `input` mapping.
    """
    data: dict[str, Any] = {
        "name": "small-cnn",
        "framework": "torch",
        "format": "state_dict",
        "architecture": f"{ZOO_FILE}:SmallCNN",
        "artifact": "weights.pt",
        "input": {"size": list(SIZE), "range": [0, 1]},
        "output": "logits",
        "classes": ["not_smile", "smile"],
    }
    if "input" in overrides and overrides["input"] is not None:
        overrides["input"] = _without_none({**data["input"], **overrides["input"]})
    return _without_none({**data, **overrides})


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def write_card(folder: Path, **overrides: Any) -> Path:
    """Write `model.yaml` (see card_data; a value of None drops the key) into `folder`."""
    path = folder / "model.yaml"
    path.write_text(yaml.safe_dump(card_data(**overrides), sort_keys=False), encoding="utf-8")
    return path


def save_weights(module: nn.Module, folder: Path, name: str = "weights.pt") -> Path:
    path = folder / name
    torch.save(module.state_dict(), path)
    return path
