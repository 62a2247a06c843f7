"""Which cases share work, and about how much: the unit a worker or CI shard takes whole.

Cases of one model explained by one explainer share that explainer's maps (computed once per
process, then read from the store), so they belong on one worker: split over two, both would
compute the same maps. An explainer whose maps of one class share nothing with another's
(`Explainer.classes_share_work` False: SHAP) gets a group per class, so that its work, the
gate's largest, can spread over workers. Class contrast is then a group of one case; half of
its maps (the pair's images for their own class) are also the classes' maps. Its cost counts
one case against a class's several, so it is handed out after the classes' groups and reads
those maps from the disk cache when they are done (under `--no-cache`, or on another CI shard,
it computes them again). Cases that need no explainer (accuracy, interventions) form one
group per model.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from xaigate.cases import Case
from xaigate.explainers import EXPLAINERS

if TYPE_CHECKING:
    from xaigate.gate import Gate

MODEL_ONLY = "model"
# Checks that decide whether the rest means anything: their groups are handed out first.
PRECONDITIONS = ("model_accuracy",)


def work_group(case: Case) -> str:
    """e.g. ``smile-cnn-lime``, ``smile-cnn-shap-smile`` (an explainer whose classes share no
    work), ``smile-cnn-model`` for the cases that use no explainer."""
    explainer = EXPLAINERS.get(case.explainer)
    if explainer is not None and not explainer.classes_share_work and case.target:
        return f"{case.model}-{case.explainer}-{case.target}"
    return f"{case.model}-{case.explainer or MODEL_ONLY}"


def case_groups(gate: Gate) -> dict[str, str]:
    """The work group of each configured case, by its pytest id (`Case.id`)."""
    return {case.id: work_group(case) for case in gate.configured}


def group_costs(gate: Gate) -> dict[str, float]:
    """A rough relative cost of each work group: its cases that run, times the model passes its
    explainer makes per image (LIME's samples, SHAP's evaluations, IG's steps; 1 without an
    explainer)."""
    running = [case for case in gate.configured if not case.not_applicable]
    cases = Counter(work_group(case) for case in running)
    explainers = gate.context.explainers
    passes = {
        work_group(case): (
            explainers[case.explainer].passes_per_image() if case.explainer in explainers else 1
        )
        for case in running
    }
    return {
        group: float(cases[group] * passes.get(group, 1)) for group in case_groups(gate).values()
    }


def handout_order(gate: Gate) -> list[str]:
    """The order in which workers get the groups: those holding a precondition first (a model
    that cannot classify stops the run early, with `-x`), then the costliest first, so that the
    longest group does not start last (longest processing time first)."""
    costs = group_costs(gate)
    first = {work_group(case) for case in gate.configured if case.check in PRECONDITIONS}
    return sorted(costs, key=lambda group: (group not in first, -costs[group], group))
