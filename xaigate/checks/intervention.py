"""Intervention confirmation: swap the border, the background or the decisive region for
another class's, and check that the prediction ignores the first two and follows the last."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xaigate.cases import Case, Measurement
from xaigate.checks.listing import decisive_region, per_class
from xaigate.checks.registry import Direction, register_check
from xaigate.context import FACE_REGION, GateContext, is_variant
from xaigate.interventions import donors, paste_area, transplant
from xaigate.probes import Probe
from xaigate.stats import derived_seed

Swap = Callable[[GateContext, str, Probe, Probe, str], np.ndarray]


def swap_border(context: GateContext, model: str, probe: Probe, donor: Probe, _: str) -> np.ndarray:
    return paste_area(probe.image, donor.image, context.border(model))


def swap_background(_: GateContext, __: str, probe: Probe, donor: Probe, ___: str) -> np.ndarray:
    # Outside both faces: the donor's own face must not come along with its background.
    area = ~probe.regions[FACE_REGION] & ~donor.regions[FACE_REGION]
    return paste_area(probe.image, donor.image, area)


def swap_decisive(_: GateContext, __: str, probe: Probe, donor: Probe, region: str) -> np.ndarray:
    image = probe.image
    for part in sorted(set(region.split("+"))):
        image = transplant(
            image,
            probe.regions[part],
            probe.regions[FACE_REGION],
            donor.image,
            donor.regions[part],
            donor.regions[FACE_REGION],
        )
    return image


def swapped_predictions(
    context: GateContext, case: Case, swap: Swap
) -> tuple[list[Probe], np.ndarray, np.ndarray, list[list[Probe]]]:
    """(probes, original (N, C) and swapped (N, D, C) probabilities, donors) for the case's
    class: each probe takes one swap from a donor of every other class (D = C - 1)."""
    probes = context.probes_of_class(case.model, case.target)
    pool = [probe for probe in context.probes[case.model] if not is_variant(probe)]
    # Seeded by the kind of swap, so the flip rate beside a dominance verdict is the same
    # number as the intervention check's own.
    seed = derived_seed(context.thresholds.seed, "donors", swap.__name__, case.model)
    chosen = donors(probes, pool, seed)
    regions = context.thresholds.regions
    swapped_images = [
        # The decisive regions of both classes: a class told apart by brows and mouth together
        # is only carried over when both come along.
        swap(context, case.model, probe, donor, f"{regions[probe.label]}+{regions[donor.label]}")
        for probe, its_donors in zip(probes, chosen, strict=True)
        for donor in its_donors
    ]
    originals = context.predictions(case.model, np.stack([p.image for p in probes]))
    swapped = context.predictions(case.model, np.stack(swapped_images))
    return probes, originals, swapped.reshape(len(probes), -1, swapped.shape[-1]), chosen


def flip_rate(context: GateContext, case: Case, swap: Swap) -> Measurement:
    probes, originals, swapped, _ = swapped_predictions(context, case, swap)
    flipped = (originals.argmax(1)[:, None] != swapped.argmax(2)).mean(axis=1)
    shift = np.abs(originals[:, None, :] - swapped).max(axis=2).mean(axis=1)
    return Measurement(
        {probe.id: float(flip) for probe, flip in zip(probes, flipped, strict=True)},
        {"probability_shift": float(shift.mean())},
    )


def probability_shift(context: GateContext, case: Case, swap: Swap) -> Measurement:
    probes, originals, swapped, _ = swapped_predictions(context, case, swap)
    shift = np.abs(originals[:, None, :] - swapped).max(axis=2).mean(axis=1)
    return Measurement({probe.id: float(s) for probe, s in zip(probes, shift, strict=True)})


def _register(name: str, direction: Direction, description: str, worst: float, region_of):  # noqa: ANN001, ANN202
    return register_check(
        name,
        direction=direction,
        category="intervention",
        description=description,
        worst=worst,
        cases=per_class(region_of),
        per_explainer=False,
    )


@_register(
    "border_swap_flip_rate",
    Direction.LOWER,
    "share of predictions that flip when the border band comes from another class's image",
    1.0,
    lambda *_: "border",
)
def border_swap_flip_rate(context: GateContext, case: Case) -> Measurement:
    return flip_rate(context, case, swap_border)


@_register(
    "border_swap_shift",
    Direction.LOWER,
    "largest class-probability change when the border band comes from another class's image",
    1.0,
    lambda *_: "border",
)
def border_swap_shift(context: GateContext, case: Case) -> Measurement:
    return probability_shift(context, case, swap_border)


@_register(
    "background_swap_flip_rate",
    Direction.LOWER,
    "share of predictions that flip when the background comes from another class's image",
    1.0,
    lambda *_: "background",
)
def background_swap_flip_rate(context: GateContext, case: Case) -> Measurement:
    return flip_rate(context, case, swap_background)


@_register(
    "background_swap_shift",
    Direction.LOWER,
    "largest class-probability change when the background comes from another class's image",
    1.0,
    lambda *_: "background",
)
def background_swap_shift(context: GateContext, case: Case) -> Measurement:
    return probability_shift(context, case, swap_background)


@_register(
    "decisive_swap_follow_rate",
    Direction.HIGHER,
    "share of predictions that follow the donor's class when its decisive region is pasted in",
    0.0,
    decisive_region,
)
def decisive_swap_follow_rate(context: GateContext, case: Case) -> Measurement:
    probes, _, swapped, chosen = swapped_predictions(context, case, swap_decisive)
    classes = context.models[case.model].classes
    donor_classes = np.array([[classes.index(d.label) for d in its] for its in chosen])
    follows = (swapped.argmax(2) == donor_classes).mean(axis=1)
    return Measurement({p.id: float(f) for p, f in zip(probes, follows, strict=True)})


def intervention_agreement(context: GateContext, case: Case, area: str) -> dict[str, float]:
    """Beside a dominance verdict: how often swapping that area flips the prediction."""
    swap = swap_border if area == "border" else swap_background
    measured = flip_rate(context, case, swap)
    return {
        f"{area}_swap_flip_rate": float(np.mean(list(measured.values.values()))),
        f"{area}_swap_shift": measured.reference["probability_shift"],
    }
