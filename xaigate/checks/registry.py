"""The check registry: each check's name, direction, category and how it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

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


class NoParams(BaseModel):
    """A check without parameters: any key under its `params` is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class CheckSpec:
    """A named check: metadata that drives thresholds, reports, and its two functions.

    `cases(context, model, explainer, check)` lists what the check gates for one (model,
    explainer); `measure` returns one value per
    probe image for a case. `worst` stands in for an image whose value is undefined (a map with
    no positive attribution), so such images count against the model, never for it.
    `references` name the figures a measurement reports beside its values (e.g. `area_share`,
    what a random map scores) that a threshold may be relative to. A check that needs no
    explainer (`per_explainer=False`) gets one case list per model, with explainer "".
    A check that compares the candidate with a baseline (`needs_baseline`) is configured under
    thresholds.yaml's `baseline:` section and runs only when a baseline is given.
    """

    name: str
    direction: Direction
    category: str
    description: str
    worst: float
    cases: Callable[[GateContext, str, str, str], list[Case]]
    measure: Callable[[GateContext, Case], Measurement]
    references: tuple[str, ...] = ()
    params_model: type[BaseModel] = NoParams
    per_explainer: bool = True
    needs_baseline: bool = False


CHECKS: Registry[CheckSpec] = Registry("check")


def register_check(
    name: str,
    *,
    direction: Direction,
    category: str,
    description: str,
    worst: float,
    cases: Callable[[GateContext, str, str, str], list[Case]],
    references: tuple[str, ...] = (),
    params_model: type[BaseModel] = NoParams,
    per_explainer: bool = True,
    needs_baseline: bool = False,
) -> Callable[[Callable[[GateContext, Case], Measurement]], Callable[..., Measurement]]:
    """Register `measure` as the check `name`, with `cases` listing what it gates."""

    def decorate(measure: Callable[[GateContext, Case], Measurement]):  # noqa: ANN202
        CHECKS.add(
            name,
            CheckSpec(
                name,
                direction,
                category,
                description,
                worst,
                cases,
                measure,
                references,
                params_model,
                per_explainer,
                needs_baseline,
            ),
        )
        return measure

    return decorate
