"""The figures of one judged case, from what the gate already computed.

Maps come from the gate's explanation store (in memory after the case ran), curves and the
confusion matrix from the measurement's evidence: drawing a figure never recomputes or changes a
value. Which figure a case gets follows from what its check measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xaigate.checks.registry import Direction
from xaigate.context import GateContext
from xaigate.evidence.plots import confusion_matrix, confusion_plot, curve_plot
from xaigate.evidence.render import overlay, png_bytes, tile_grid
from xaigate.gate import NOT_APPLICABLE, Result
from xaigate.probes import Probe

GRID_IMAGES = 12
GRID_COLUMNS = 6
DRIFTED_IMAGES = 3  # the most-drifted images of a drift case, each candidate beside baseline


@dataclass(frozen=True)
class Figure:
    """A PNG and the name it is attached under."""

    name: str
    png: bytes


def worst_and_best(per_image: dict[str, float], direction: Direction) -> tuple[str, str]:
    """Probe ids of the worst and best value; an undefined value (NaN, None) is the worst."""

    def badness(item: tuple[str, float | None]) -> tuple[bool, float, str]:
        value = item[1]
        undefined = value is None or not math.isfinite(value)
        score = 0.0 if undefined else (-value if direction is Direction.HIGHER else value)
        return (undefined, score, item[0])

    ordered = sorted(per_image.items(), key=badness)
    return ordered[-1][0], ordered[0][0]


def _explained_probes(context: GateContext, result: Result) -> list[Probe]:
    """The case's own probe images of its class that the measurement has a value for."""
    case = result.case
    if not case.explainer or case.target not in context.models[case.model].classes:
        return []
    return [p for p in context.probes_of_class(case.model, case.target) if p.id in result.per_image]


def _side_by_side(probe: Probe, attribution: np.ndarray) -> np.ndarray:
    plain = overlay(probe.image, np.zeros_like(attribution))
    return tile_grid([plain, overlay(probe.image, attribution)], columns=2)


def heatmap_figures(context: GateContext, result: Result) -> list[Figure]:
    """The worst and the best probe image of the case: image and heatmap side by side."""
    probes = _explained_probes(context, result)
    if not probes or result.threshold is None:
        return []
    case = result.case
    maps = context.explanations(case.model, case.explainer, probes, case.target)
    by_id = {probe.id: (probe, m.attribution) for probe, m in zip(probes, maps, strict=True)}
    values = {probe.id: result.per_image[probe.id] for probe in probes}
    worst, best = worst_and_best(values, result.threshold.direction)
    figures = []
    for label, probe_id in (("worst", worst), ("best", best)):
        probe, attribution = by_id[probe_id]
        value = values[probe_id]
        shown = "undefined" if value is None or not math.isfinite(value) else f"{value:.3f}"
        figures.append(
            Figure(
                f"heatmap {label}: {probe_id} ({case.check} {shown})",
                png_bytes(_side_by_side(probe, attribution)),
            )
        )
    return figures


def most_drifted(per_image: dict[str, float], count: int = DRIFTED_IMAGES) -> list[str]:
    """Probe ids of the `count` lowest similarities to the baseline (undefined ones first)."""

    def order(item: tuple[str, float | None]) -> tuple[bool, float, str]:
        value = item[1]
        defined = value is not None and math.isfinite(value)
        return (defined, value if defined else 0.0, item[0])

    return [probe_id for probe_id, _ in sorted(per_image.items(), key=order)[:count]]


def drift_figures(context: GateContext, result: Result) -> list[Figure]:
    """A drift case's most-drifted probe images: the image, the candidate's heatmap and the
    baseline's heatmap side by side, from the maps the measurement compared."""
    candidate = result.evidence.get("candidate_maps")
    baseline = result.evidence.get("baseline_maps")
    if not candidate or not baseline:
        return []
    case = result.case
    probes = {probe.id: probe for probe in context.probes[case.model]}
    figures = []
    for rank, probe_id in enumerate(most_drifted(result.per_image), start=1):
        probe = probes[probe_id]
        ours, theirs = candidate[probe_id], baseline[probe_id]
        tiles = [overlay(probe.image, np.zeros_like(ours)), overlay(probe.image, ours)]
        picture = tile_grid([*tiles, overlay(probe.image, theirs)], columns=3)
        value = result.per_image[probe_id]
        shown = "undefined" if value is None or not math.isfinite(value) else f"{value:.3f}"
        figures.append(
            Figure(
                f"drift {rank}: {probe_id} ({case.check} {shown}): image | candidate | baseline",
                png_bytes(picture),
            )
        )
    return figures


def class_grid(context: GateContext, model: str, explainer: str, class_: str) -> Figure:
    """Heatmaps of the first probe images of a class, for its class (like exp_grid_<class>)."""
    probes = context.probes_of_class(model, class_)[:GRID_IMAGES]
    maps = context.explanations(model, explainer, probes, class_)
    tiles = [overlay(p.image, m.attribution) for p, m in zip(probes, maps, strict=True)]
    return Figure(
        f"grid {model} {explainer} {class_} (first {len(tiles)} images)",
        png_bytes(tile_grid(tiles, columns=min(GRID_COLUMNS, len(tiles)))),
    )


def _curve_figure(result: Result) -> list[Figure]:
    evidence = result.evidence
    if "explained" not in evidence or "random" not in evidence:
        return []
    case = result.case
    deleting = case.check.startswith("deletion")
    title = (
        f"{'deletion' if deleting else 'insertion'}: {case.model} {case.explainer} {case.target}"
    )
    picture = curve_plot(
        {f"{case.explainer} order": evidence["explained"], "random order": evidence["random"]},
        title=title,
        x_label=f"share of patches {'removed' if deleting else 'restored'}",
        y_label=f"P({case.target}), mean",
    )
    return [Figure(f"{case.check} curves", png_bytes(picture))]


def _confusion_figure(context: GateContext, result: Result) -> list[Figure]:
    evidence = result.evidence
    if "labels" not in evidence or "predicted" not in evidence:
        return []
    classes = context.models[result.case.model].classes
    matrix = confusion_matrix(evidence["labels"], evidence["predicted"], len(classes))
    picture = confusion_plot(matrix, classes, title=f"{result.case.model}: original probes")
    return [Figure("confusion matrix", png_bytes(picture))]


def case_figures(context: GateContext, result: Result) -> list[Figure]:
    """Every figure of a judged case (none for a case that did not apply)."""
    if result.status == NOT_APPLICABLE:
        return []
    if "baseline_maps" in result.evidence:
        return drift_figures(context, result)
    return [
        *heatmap_figures(context, result),
        *_curve_figure(result),
        *_confusion_figure(context, result),
    ]
