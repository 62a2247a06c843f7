"""Where LIME's and SHAP's time per image goes, beside the model's forward passes.

    .venv/bin/python -m bench.breakdown [--models smile-cnn] [--per-class 8] [--rounds 3]

Wraps the parts of one explanation with timers (the wrappers cost a few microseconds per call)
and prints milliseconds per image, median over rounds, next to the floor of the same passes:

- forward: inside the model's forward (`TorchModel.forward_seconds`), at the batch sizes the
  explainer asks for; `floor` is the same number of passes at the best batch size and layout;
- adapter: the rest of `predict_proba` (numpy to torch, softmax, back to numpy);
- images: building the perturbed images (`MaskedImages.images` and, for LIME, the gather of
  each sample's hidden segments);
- lime regression: lime's distances and ridge fits (`LimeBase.explain_instance_with_data`
  plus the cosine distances); SLIC: segmentation;
- the rest: the library's own loop (lime's sampling and bookkeeping, shap's Owen recursion,
  masking calls and credit assignment) and ours.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

import numpy as np
import sklearn.metrics
from lime import lime_base

from bench.common import (
    REFERENCE_MODELS,
    Floor,
    arrays,
    first_originals,
    load_reference,
    median,
    set_threads,
    shipped_explainer_configs,
    variants,
)
from xaigate.explainers import EXPLAINERS, lime_explainer
from xaigate.explainers.masking import MaskedImages


class Timers:
    """Seconds accumulated per part, and the rows handed to the model."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.rows = 0

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed

    def wrap_predict(self, predict: Callable[[np.ndarray], np.ndarray]) -> Callable[..., Any]:
        timed = self.wrap("predict", predict)

        def counted(images: np.ndarray) -> np.ndarray:
            self.rows += len(images)
            return timed(images)

        return counted


@contextmanager
def instrumented(timers: Timers, model: Any) -> Iterator[None]:
    """Timers around the parts (see the module docstring); undone on exit."""
    patches = [
        (MaskedImages, "images", MaskedImages.images, "images"),
        (
            lime_explainer._LimeImageExplainer,
            "data_labels",
            lime_explainer._LimeImageExplainer.data_labels,
            "lime sampling",
        ),
        (
            lime_base.LimeBase,
            "explain_instance_with_data",
            lime_base.LimeBase.explain_instance_with_data,
            "lime regression",
        ),
        (sklearn.metrics, "pairwise_distances", sklearn.metrics.pairwise_distances, "distances"),
        (lime_explainer, "segment", lime_explainer.segment, "SLIC"),
    ]
    with ExitStack() as stack:
        for owner, attribute, function, part in patches:
            stack.enter_context(mock.patch.object(owner, attribute, timers.wrap(part, function)))
        stack.enter_context(
            mock.patch.object(model, "predict_proba", timers.wrap_predict(model.predict_proba))
        )
        yield


def parts_per_image(timers: Timers, total: float, forward: float, per_pass: float) -> dict:
    """Milliseconds per image of each part, the nested ones taken out of their callers."""
    seconds = dict(timers.seconds)
    predict = seconds.pop("predict", 0.0)
    parts = {"total": total, "floor": timers.rows * per_pass, "forward": forward}
    parts["adapter"] = predict - forward
    images = seconds.pop("images", 0.0)
    if "lime sampling" in seconds:  # data_labels holds the image building and the model calls
        images = seconds.pop("lime sampling") - predict
    parts["images"] = images
    regression = seconds.pop("lime regression", 0.0) + seconds.pop("distances", 0.0)
    if regression:
        parts["lime regression"] = regression
    parts.update(seconds)
    parts["rest"] = total - sum(v for k, v in parts.items() if k not in ("total", "floor"))
    return parts


def breakdown(name: str, per_class: int, rounds: int) -> None:
    model = load_reference(name)
    images, targets = arrays(model, first_originals(name, per_class))
    seeds = [100 + i for i in range(len(images))]
    configs = shipped_explainer_configs()
    floor = Floor(model, images)
    for explainer in ("lime", "shap"):
        EXPLAINERS[explainer](configs[explainer]).explain(model, images[:1], targets[:1], [0])
    rows: dict[str, dict[str, list[float]]] = {"lime": defaultdict(list), "shap": defaultdict(list)}
    for _ in range(rounds):
        per_pass = min(floor.seconds_per_pass(v) for v in variants())
        for explainer in ("lime", "shap"):
            timers = Timers()
            model.forward_seconds = 0.0
            started = time.perf_counter()
            with instrumented(timers, model):
                EXPLAINERS[explainer](configs[explainer]).explain(model, images, targets, seeds)
            total = time.perf_counter() - started
            parts = parts_per_image(timers, total, model.forward_seconds, per_pass)
            for part, seconds in parts.items():
                rows[explainer][part].append(1e3 * seconds / len(images))
    order = ["total", "floor", "forward", "adapter", "images", "lime regression", "SLIC", "rest"]
    print(f"\n{name}: milliseconds per image (median of {rounds} rounds)")
    print("| part | " + " | ".join(rows) + " |")
    print("| --- | " + " | ".join("---:" for _ in rows) + " |")
    for part in order:
        cells = [f"{median(rows[e][part]):.1f}" if part in rows[e] else "-" for e in rows]
        print(f"| {part} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(REFERENCE_MODELS))
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    set_threads()
    for name in args.models:
        breakdown(name, args.per_class, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
