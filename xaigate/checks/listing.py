"""Case listers shared by the checks."""

from __future__ import annotations

from collections.abc import Callable

from xaigate.cases import Case
from xaigate.context import GateContext

Lister = Callable[[GateContext, str, str, str], list[Case]]


def per_class(region_of: Callable[[GateContext, str], str]) -> Lister:
    """One case per class of the model, measured against `region_of(context, class)`; only
    the classes the check's `params.classes` lists, when it has that parameter and sets it."""

    def cases(context: GateContext, model: str, explainer: str, check: str) -> list[Case]:
        wanted = getattr(context.thresholds.params(check), "classes", None)
        return [
            Case(model, explainer, check, class_, region_of(context, class_))
            for class_ in context.models[model].classes
            if wanted is None or class_ in wanted
        ]

    return cases


def decisive_region(context: GateContext, class_: str) -> str:
    return context.thresholds.regions[class_]


def one_case(context: GateContext, model: str, explainer: str, check: str) -> list[Case]:
    """A single case over all classes of the model."""
    return [Case(model, explainer, check, "all", "")]
