"""What every bench script shares: the reference models, fixed probe images, the shipped
explainer parameters, a row-counting model wrapper and the forward-pass floor."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xaigate.explainers.base import ExplainerConfig
from xaigate.models.adapter import ModelAdapter
from xaigate.models.card import load_card
from xaigate.models.loading import load_model
from xaigate.probes import Probe, load_probe_set
from xaigate.thresholds import load_thresholds

ROOT = Path(__file__).resolve().parents[1]
# (model card, probe set) of every reference model.
REFERENCE_MODELS: dict[str, tuple[Path, Path]] = {
    "smile-cnn": (ROOT / "models/smile-cnn/model.yaml", ROOT / "probes/smile"),
    "emotion-cnn": (ROOT / "models/emotion-cnn/model.yaml", ROOT / "probes/emotion"),
}
THREADS = 2  # set once per process, before any torch work
BATCH_SIZES = (10, 25, 32, 50, 64, 100, 250)
LAYOUTS = ("contiguous", "channels_last")


def set_threads(threads: int = THREADS) -> None:
    """One `torch.set_num_threads` per process: every figure of a run uses the same pool."""
    torch.set_num_threads(threads)


def shipped_explainer_configs() -> dict[str, ExplainerConfig]:
    """The `explainers:` section of the repository's thresholds.yaml, validated."""
    return load_thresholds(ROOT / "thresholds.yaml").explainers


def faithfulness_steps() -> int:
    return load_thresholds(ROOT / "thresholds.yaml").params("deletion_ratio").steps


def load_reference(name: str) -> ModelAdapter:
    card, _ = REFERENCE_MODELS[name]
    return load_model(load_card(card))


def first_originals(name: str, per_class: int) -> list[Probe]:
    """The first `per_class` original (not variant) probes of every class, in manifest order."""
    _, probes_root = REFERENCE_MODELS[name]
    probes = [p for p in load_probe_set(probes_root).probes if "variant" not in p.tags]
    chosen: list[Probe] = []
    for class_ in dict.fromkeys(p.label for p in probes):
        chosen += [p for p in probes if p.label == class_][:per_class]
    return chosen


def arrays(model: ModelAdapter, probes: list[Probe]) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) float32 images and (N,) int64 label indices of `probes`."""
    images = np.stack([p.image for p in probes]).astype(np.float32)
    targets = np.array([model.classes.index(p.label) for p in probes], dtype=np.int64)
    return images, targets


class RowCounter:
    """A model adapter that counts the rows (images) passed to `predict_proba`."""

    def __init__(self, model: ModelAdapter) -> None:
        self._model = model
        self.rows = 0

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        self.rows += len(images)
        return self._model.predict_proba(images)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


@dataclass(frozen=True)
class FloorVariant:
    batch_size: int
    layout: str

    def __str__(self) -> str:
        return f"batch {self.batch_size}, {self.layout}"


class Floor:
    """Seconds per forward pass of the bare module at a batch size and memory layout.

    The module runs on ready-made float32 tensors under `torch.inference_mode()`: no numpy
    conversion, no softmax, no Python between batches beyond the loop itself. That is the least
    any explainer that needs the same number of forward passes can cost.
    """

    def __init__(self, model: ModelAdapter, images: np.ndarray, passes: int = 500) -> None:
        module = model.module  # type: ignore[attr-defined]
        repeats = -(-passes // len(images))
        batch = np.ascontiguousarray(np.tile(images, (repeats, 1, 1, 1))[:passes])
        nhwc = torch.from_numpy(batch)
        # Probes arrive NHWC, so NCHW-contiguous input costs a transpose (not timed here).
        self.inputs = {
            "contiguous": nhwc.permute(0, 3, 1, 2).contiguous(),
            "channels_last": nhwc.permute(0, 3, 1, 2),
        }
        self.modules = {
            "contiguous": module,
            "channels_last": copy.deepcopy(module).to(memory_format=torch.channels_last),
        }
        self.passes = passes

    def seconds_per_pass(self, variant: FloorVariant) -> float:
        module, inputs = self.modules[variant.layout], self.inputs[variant.layout]
        step = variant.batch_size
        with torch.inference_mode():
            module(inputs[:step])  # warm: oneDNN picks and caches its kernels per shape
            started = time.perf_counter()
            for start in range(0, self.passes, step):
                module(inputs[start : start + step])
            return (time.perf_counter() - started) / self.passes


def variants() -> list[FloorVariant]:
    return [FloorVariant(b, layout) for b in BATCH_SIZES for layout in LAYOUTS]


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def quiet_numpy() -> Iterator[None]:
    with np.errstate(all="ignore"):
        yield
