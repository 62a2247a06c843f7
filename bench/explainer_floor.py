"""LIME, SHAP and deletion/insertion per image, against the model's forward-pass floor.

    .venv/bin/python -m bench.explainer_floor [--rounds 5] [--per-class 8] [--models smile-cnn]

For every reference model this prints

(a) the floor: seconds per forward pass of the bare module, scanned over batch sizes and memory
    layouts (contiguous NCHW vs channels_last module and input), and the best of them;
(b) LIME per image over (its forward passes at the floor + SLIC segmentation of that image);
(c) SHAP per image over its forward passes at the floor (the rows it passes to the model,
    counted);
(d) deletion + insertion per image, as the faithfulness checks run them (the explainer's map
    and a random order, `steps + 1` passes per curve), over their forward passes at the floor:
    for the first explainer of a gate run (LIME's maps, caches empty) and for the next one
    (SHAP's maps; the blurred images and the random orders are then cached);

with the issue's targets (1.1, 1.1, 1.25). The explainers run with the parameters shipped in
thresholds.yaml, on the first `--per-class` original probes of every class, with fixed seeds.
The machine is shared, so each round measures the floor right before and after each explainer
and a round's ratio uses those two; the table shows the median over rounds and its range.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version

import numpy as np
import torch
import yaml
from threadpoolctl import threadpool_limits

from bench.common import (
    REFERENCE_MODELS,
    THREADS,
    Floor,
    FloorVariant,
    RowCounter,
    arrays,
    faithfulness_steps,
    first_originals,
    load_reference,
    median,
    set_threads,
    shipped_explainer_configs,
    timed,
    variants,
)
from xaigate.explainers import EXPLAINERS
from xaigate.explainers.base import ExplainerConfig
from xaigate.explainers.lime_explainer import LimeConfig, segment
from xaigate.metrics import faithfulness
from xaigate.models.adapter import ModelAdapter

TARGETS = {"lime": 1.1, "shap": 1.1, "deletion+insertion": 1.25, "deletion+insertion, next": 1.25}
SCAN_ROUNDS = 2  # rounds of the full floor scan that choose the best variant


@dataclass
class Sample:
    """One round of one measure: seconds per image and the floor it is compared with."""

    seconds: float
    floor: float
    per_pass: float  # floor seconds per forward pass (mean of the two around the measure)
    extra: float  # seconds per image in the floor besides forward passes (SLIC for LIME)

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor


@dataclass
class ModelResult:
    name: str
    best: FloorVariant
    scan: dict[FloorVariant, list[float]]
    passes: dict[str, float] = field(default_factory=dict)  # forward passes per image
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def run_faithfulness(
    model: ModelAdapter, images: np.ndarray, targets: np.ndarray, maps: np.ndarray, steps: int
) -> int:
    """Deletion and insertion of `maps` and of a random order, per class, as the checks call
    them (xaigate.checks.faithfulness); returns the number of forward passes."""
    passes = 0
    for class_index in np.unique(targets):
        rows = targets == class_index
        reference = faithfulness.random_maps(int(rows.sum()), images.shape[1:3], seed=7)
        for curves in (faithfulness.deletion_curves, faithfulness.insertion_curves):
            for class_maps in (maps[rows], reference):
                curve = curves(
                    model.predict_proba, images[rows], class_maps, targets[rows], steps=steps
                )
                faithfulness.area_under_curve(curve)
                passes += (steps + 1) * int(rows.sum())
    return passes


def configured(settings: list[str]) -> dict[str, ExplainerConfig]:
    """The shipped explainer parameters, with `explainer.param=value` settings applied."""
    configs = shipped_explainer_configs()
    for setting in settings:
        key, _, value = setting.partition("=")
        explainer, _, param = key.partition(".")
        if explainer not in configs or not param or not value:
            raise SystemExit(f"--set {setting!r}: expected EXPLAINER.PARAM=VALUE")
        config = configs[explainer]
        update = {**config.model_dump(), param: yaml.safe_load(value)}
        configs[explainer] = type(config).model_validate(update)
    return configs


def bench_model(
    name: str, per_class: int, rounds: int, configs: dict[str, ExplainerConfig]
) -> ModelResult:
    model = load_reference(name)
    images, targets = arrays(model, first_originals(name, per_class))
    count = len(images)
    seeds = [100 + i for i in range(count)]
    lime_config = configs["lime"]
    assert isinstance(lime_config, LimeConfig)
    steps = faithfulness_steps()
    floor = Floor(model, images)

    # Warm-up: shap's partition tree per image shape, oneDNN kernel choice per shape, lazy imports.
    EXPLAINERS["shap"](configs["shap"]).explain(model, images[:1], targets[:1], seeds[:1])
    EXPLAINERS["lime"](lime_config).explain(model, images[:1], targets[:1], seeds[:1])
    scan: dict[FloorVariant, list[float]] = {v: [] for v in variants()}
    for _ in range(SCAN_ROUNDS):
        for variant in scan:
            scan[variant].append(floor.seconds_per_pass(variant))
    best = min(scan, key=lambda v: median(scan[v]))
    result = ModelResult(name, best, scan)

    def bracketed(measure: str, run: Callable[[], tuple[float, int, float]]) -> None:
        """Floor, measure, floor: the ratio uses the mean of the two floors around it."""
        before = floor.seconds_per_pass(best)
        seconds, passes, extra = run()
        after = floor.seconds_per_pass(best)
        per_pass = (before + after) / 2
        result.passes[measure] = passes / count
        sample = Sample(
            seconds / count, (passes * per_pass + extra) / count, per_pass, extra / count
        )
        result.samples.setdefault(measure, []).append(sample)

    maps: dict[str, np.ndarray] = {}  # this round's maps, for deletion and insertion

    def lime() -> tuple[float, int, float]:
        # SLIC at its fastest: on one BLAS thread (its colour conversion is a matrix product).
        with threadpool_limits(1, user_api="blas"):
            slic, _ = timed(lambda: [segment(image, lime_config) for image in images])
        counter = RowCounter(model)
        explainer = EXPLAINERS["lime"](lime_config)  # a cold segmentation cache
        seconds, found = timed(lambda: explainer.explain(counter, images, targets, seeds))
        maps["lime"] = np.stack([m.attribution for m in found])
        return seconds, counter.rows, slic

    def shap() -> tuple[float, int, float]:
        counter = RowCounter(model)
        explainer = EXPLAINERS["shap"](configs["shap"])
        seconds, found = timed(lambda: explainer.explain(counter, images, targets, seeds))
        maps["shap"] = np.stack([m.attribution for m in found])
        return seconds, counter.rows, 0.0

    def curves() -> tuple[float, int, float]:
        # Cold, as for the first explainer of a gate run (older code has no caches).
        getattr(faithfulness, "clear_caches", lambda: None)()
        lime = maps["lime"]
        seconds, passes = timed(lambda: run_faithfulness(model, images, targets, lime, steps))
        return seconds, passes, 0.0

    def next_curves() -> tuple[float, int, float]:
        # Another explainer's maps right after: the blurred images and random orders are kept.
        shap = maps["shap"]
        seconds, passes = timed(lambda: run_faithfulness(model, images, targets, shap, steps))
        return seconds, passes, 0.0

    for _ in range(rounds):
        for variant in scan:
            scan[variant].append(floor.seconds_per_pass(variant))
        bracketed("lime", lime)
        bracketed("shap", shap)
        bracketed("deletion+insertion", curves)
        bracketed("deletion+insertion, next", next_curves)
    return result


def print_scan(result: ModelResult) -> None:
    print(f"\n{result.name}: forward-pass floor, microseconds per pass (median over rounds)")
    layouts = sorted({v.layout for v in result.scan})
    sizes = sorted({v.batch_size for v in result.scan})
    print("| batch | " + " | ".join(layouts) + " |")
    print("| ---: | " + " | ".join("---:" for _ in layouts) + " |")
    for size in sizes:
        cells = []
        for layout in layouts:
            variant = FloorVariant(size, layout)
            cell = f"{1e6 * median(result.scan[variant]):.1f}"
            cells.append(f"**{cell}**" if variant == result.best else cell)
        print(f"| {size} | " + " | ".join(cells) + " |")
    print(f"best: {result.best}")


def print_table(results: list[ModelResult]) -> None:
    print(
        "\n| model | measure | passes/img | floor us/pass | SLIC ms/img | floor ms/img | ms/img "
        "| ratio (range) | target | met |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |")
    for result in results:
        for measure, samples in result.samples.items():
            ratios = [s.ratio for s in samples]
            ratio = median(ratios)
            target = TARGETS[measure]
            print(
                f"| {result.name} | {measure} | {result.passes[measure]:.0f} "
                f"| {1e6 * median([s.per_pass for s in samples]):.1f} "
                f"| {1e3 * median([s.extra for s in samples]):.1f} "
                f"| {1e3 * median([s.floor for s in samples]):.1f} "
                f"| {1e3 * median([s.seconds for s in samples]):.1f} "
                f"| {ratio:.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | {target:.2f} "
                f"| {'yes' if ratio <= target else 'NO'} |"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(REFERENCE_MODELS))
    parser.add_argument("--per-class", type=int, default=8, help="first original probes per class")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="EXPLAINER.PARAM=VALUE",
        help="measure another parameter than thresholds.yaml's, e.g. lime.batch_size=125",
    )
    args = parser.parse_args(argv)
    set_threads(THREADS)
    versions = ", ".join(f"{p} {version(p)}" for p in ("torch", "lime", "shap", "numpy"))
    print(
        f"{versions}, Python {platform.python_version()}, {torch.get_num_threads()} torch "
        f"threads, {os.cpu_count()} cores; {args.rounds} rounds, first {args.per_class} "
        f"originals per class; load average {os.getloadavg()[0]:.2f} at the start"
        + (f"; parameters changed: {', '.join(args.set)}" if args.set else "")
    )
    results = []
    for name in args.models:
        result = bench_model(name, args.per_class, args.rounds, configured(args.set))
        print_scan(result)
        results.append(result)
    print_table(results)
    print(f"load average {os.getloadavg()[0]:.2f} at the end (other jobs slow 2-thread torch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
