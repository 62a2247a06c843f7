"""Which cases share work, and about how much: the unit a worker or CI shard takes whole.

Cases of one model explained by one explainer share that explainer's maps (computed once per
process, then read from the store), so they belong on one worker: split over two, both would
compute the same maps. Cases that need no explainer (accuracy, interventions) form one group
per model.
"""

from __future__ import annotations

from collections import Counter

from xaigate.cases import Case
from xaigate.gate import Gate

MODEL_ONLY = "model"


def work_group(case: Case) -> str:
    """e.g. ``smile-cnn-lime``; ``smile-cnn-model`` for the cases that use no explainer."""
    return f"{case.model}-{case.explainer or MODEL_ONLY}"


def case_groups(gate: Gate) -> dict[str, str]:
    """The work group of each configured case, by its pytest id (`Case.id`)."""
    return {case.id: work_group(case) for case in gate.configured}


def group_costs(gate: Gate) -> dict[str, float]:
    """A rough relative cost of each work group: its cases times the model passes its
    explainer makes per image (LIME's samples, SHAP's evaluations, IG's steps; 1 without an
    explainer). Only the order matters: the costliest group is handed out first, so that the
    longest one does not start last (longest processing time first)."""
    cases = Counter(work_group(case) for case in gate.configured)
    explainers = gate.context.explainers
    passes = {
        work_group(case): (
            explainers[case.explainer].passes_per_image() if case.explainer in explainers else 1
        )
        for case in gate.configured
    }
    return {group: float(count * passes[group]) for group, count in cases.items()}
