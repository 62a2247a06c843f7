"""The check registry: each check's name, direction, category and how it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from xaigate.registry import Registry

if TYPE_CHECKING:
    from xaigate.cases import Case, Measurement
    from xaigate.context import GateContext


class Direction(StrEnum):
    """Which way is better; decides whether a threshold is a minimum or a maximum."""

    HIGHER = "higher"
    LOWER = "lower"

    @property
    def bound_key(self) -> str:
        return "min" if self is Direction.HIGHER else "max"


@dataclass(frozen=True)
class CheckSpec:
    """A named check: metadata that drives thresholds, reports, and its two functions.

    `cases` lists what the check gates for one (model, explainer); `measure` returns one value per
    probe image for a case. `worst` stands in for an image whose value is undefined (a map with
    no positive attribution), so such images count against the model, never for it.
    `references` name the figures a measurement reports beside its values (e.g. `area_share`,
    what a random map scores) that a threshold may be relative to.
    """

    name: str
    direction: Direction
    category: str
    description: str
    worst: float
    cases: Callable[[GateContext, str, str], list[Case]]
    measure: Callable[[GateContext, Case], Measurement]
    references: tuple[str, ...] = ()


CHECKS: Registry[CheckSpec] = Registry("check")


def register_check(
    name: str,
    *,
    direction: Direction,
    category: str,
    description: str,
    worst: float,
    cases: Callable[[GateContext, str, str], list[Case]],
    references: tuple[str, ...] = (),
) -> Callable[[Callable[[GateContext, Case], Measurement]], Callable[..., Measurement]]:
    """Register `measure` as the check `name`, with `cases` listing what it gates."""

    def decorate(measure: Callable[[GateContext, Case], Measurement]):  # noqa: ANN202
        CHECKS.add(
            name,
            CheckSpec(name, direction, category, description, worst, cases, measure, references),
        )
        return measure

    return decorate
