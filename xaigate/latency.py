"""Latency cases: what each round explains, and the verdict on the rounds' timings.

The median over rounds is gated, not the mean: one round slowed by another process on a shared
machine should not decide the gate. Timings differ from run to run; the budgets in
thresholds.yaml are set well above measurements for that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from xaigate.cases import Case
from xaigate.checks.registry import Direction
from xaigate.context import GateContext, is_variant
from xaigate.explainers import Explainer, Explanation
from xaigate.gate import FAILED, PASSED, Result
from xaigate.models.adapter import ModelAdapter
from xaigate.thresholds import Threshold


@dataclass(frozen=True)
class LatencyInputs:
    """One round's call: images (N, H, W, 3), their labels as targets, one seed each."""

    images: np.ndarray
    targets: np.ndarray
    seeds: list[int]

    @property
    def count(self) -> int:
        return len(self.images)


def latency_inputs(context: GateContext, case: Case, count: int) -> LatencyInputs:
    """The first `count` original probe images of the case's model, explained for their label."""
    probes = [probe for probe in context.probes[case.model] if not is_variant(probe)][:count]
    model = context.models[case.model]
    return LatencyInputs(
        np.stack([probe.image for probe in probes]).astype(np.float32),
        np.array([model.classes.index(probe.label) for probe in probes], dtype=np.int64),
        [context.store.seed_for(case.explainer, probe.id, "latency") for probe in probes],
    )


def fresh_rounds(
    explainer: Explainer, model: ModelAdapter, inputs: LatencyInputs
) -> tuple[Callable[[Explainer], list[Explanation]], Callable[[], tuple[tuple, dict]]]:
    """pytest-benchmark's `target` and `setup` for timing `explainer` on `inputs`.

    Each round explains with a fresh explainer (`Explainer.fresh`), made in the untimed setup:
    one that remembers the round before (LIME keeps the model's outputs on an image's samples,
    and its superpixels) would time a memo, not an explanation.
    """

    def explain(fresh: Explainer) -> list[Explanation]:
        return fresh.explain(model, inputs.images, inputs.targets, inputs.seeds)

    def setup() -> tuple[tuple, dict]:
        return (explainer.fresh(),), {}

    return explain, setup


def judge_latency(
    case: Case, round_seconds: Sequence[float], images_per_round: int, budget: float
) -> Result:
    """Pass when the median seconds per image over the rounds is within `budget`."""
    if not round_seconds or images_per_round < 1:
        raise ValueError(f"{case.result_id}: no timed round to judge")
    per_image = [seconds / images_per_round for seconds in round_seconds]
    median = float(np.median(per_image))
    threshold = Threshold(Direction.LOWER, float(budget))
    passed = threshold.admits(median)
    message = (
        f"latency {case.model} {case.explainer}: median {median:.4f} s/image "
        f"{'meets' if passed else 'exceeds'} {threshold} (rounds={len(per_image)}, "
        f"{images_per_round} images per round)"
    )
    return Result(
        case,
        PASSED if passed else FAILED,
        message,
        threshold,
        median,
        None,
        len(per_image),
        reference={
            "images_per_round": float(images_per_round),
            "fastest_round": min(per_image),
            "slowest_round": max(per_image),
        },
        per_image={f"round-{index + 1}": value for index, value in enumerate(per_image)},
    )
