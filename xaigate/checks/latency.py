"""Explanation latency: seconds per image of each explainer on each model.

Listed here like every check, so a configured latency case that never runs leaves the verdict
incomplete; timed by suites/test_latency.py with pytest-benchmark and judged by
`xaigate.latency.judge_latency`, never through the explanation store (a cached explanation is
not a latency).
"""

from __future__ import annotations

from xaigate.cases import Case, Measurement
from xaigate.checks.registry import Direction, register_check
from xaigate.context import GateContext
from xaigate.errors import UsageError
from xaigate.thresholds import LATENCY


def latency_cases(context: GateContext, model: str, _: str, check: str) -> list[Case]:
    """One case per explainer on `model`; one that cannot explain it says why."""
    adapter = context.models[model]
    return [
        Case(model, name, check, "", "", explainer.not_applicable_reason(adapter))
        for name, explainer in context.explainers.items()
    ]


@register_check(
    LATENCY,
    direction=Direction.LOWER,
    category="latency",
    description="median seconds per image of one explainer call, timed by pytest-benchmark",
    worst=float("inf"),
    cases=latency_cases,
    per_explainer=False,  # the lister names the explainers itself: no `checks:` entry to read
)
def latency(context: GateContext, case: Case) -> Measurement:
    raise UsageError(f"{case.result_id}: latency is timed by suites/test_latency.py, not measured")
