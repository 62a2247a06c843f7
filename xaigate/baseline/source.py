"""Where the baseline's figures come from: the released model itself (`--baseline
model.yaml`), gated on the candidate's probes with the candidate's explainer settings, or a
stored snapshot of it (`--baseline <snapshot folder>`, see snapshot.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xaigate.errors import UsageError
from xaigate.explainers import EXPLAINERS
from xaigate.models.adapter import ModelAdapter
from xaigate.models.card import load_card
from xaigate.models.loading import check_model_outputs, load_model
from xaigate.probes import Probe

if TYPE_CHECKING:
    from xaigate.cache import ExplanationCache
    from xaigate.cases import Case
    from xaigate.checks.registry import CheckSpec
    from xaigate.context import GateContext

SNAPSHOT_FILE = "snapshot.json"


def snapshot_key(case: Case) -> str:
    """A case's name without its model, e.g. ``region_focus[gradcam-smile-mouth]``: a
    snapshot of the released model serves a candidate of another name."""
    parts = (case.explainer, case.target, case.region)
    return f"{case.check}[{'-'.join(part for part in parts if part)}]"


class BaselineSource(ABC):
    """The baseline's per-image values of a case and its maps of probe images."""

    path: Path

    @abstractmethod
    def values(self, spec: CheckSpec, case: Case) -> dict[str, float]:
        """Per-probe-image values of `case` measured on the baseline."""

    @abstractmethod
    def maps(self, case: Case, probes: Sequence[Probe]) -> list[np.ndarray]:
        """The baseline's maps of `probes` by the case's explainer, for the case's class."""

    @abstractmethod
    def cannot_serve(self, case: Case, needs_maps: bool) -> str | None:
        """Why the baseline cannot give this case's values (or maps); None when it can."""

    @abstractmethod
    def provenance(self) -> dict[str, Any]:
        """What the baseline is, for gate.json."""


class ModelBaseline(BaselineSource):
    """The baseline model, explained on the candidate's probes with the same explainers and
    seeds. Its context names it as the candidate, so a case of the candidate runs on it
    unchanged; its explanations go through the same on-disk cache (keyed by the model's
    digest), so an unchanged model is not explained twice."""

    def __init__(self, path: Path, context: GateContext) -> None:
        self.path = path
        self.context = context

    @property
    def model(self) -> ModelAdapter:
        return next(iter(self.context.models.values()))

    def values(self, spec: CheckSpec, case: Case) -> dict[str, float]:
        return dict(spec.measure(self.context, case).values)

    def maps(self, case: Case, probes: Sequence[Probe]) -> list[np.ndarray]:
        explained = self.context.explanations(case.model, case.explainer, probes, case.target)
        return [explanation.attribution for explanation in explained]

    def cannot_serve(self, case: Case, needs_maps: bool) -> str | None:
        explainer = self.context.explainers.get(case.explainer)
        if explainer is None:
            return None
        reason = explainer.not_applicable_reason(self.model)
        return None if reason is None else f"{case.explainer} cannot explain it: {reason}"

    def provenance(self) -> dict[str, Any]:
        model = self.model
        return {
            "kind": "model",
            "card": str(self.path),
            "name": model.name,
            "artifact_sha256": model.digest,
        }


def check_compatible(
    where: str, classes: Sequence[str], size: Sequence[int], model: ModelAdapter
) -> None:
    """A baseline must classify into the candidate's classes, in order, at its input size."""
    if list(classes) != list(model.classes):
        raise UsageError(
            f"{where}: classes {list(classes)} differ from {model.card.path}'s "
            f"{list(model.classes)}: a baseline must have the candidate's classes, in order"
        )
    if tuple(size) != tuple(model.input_size):
        raise UsageError(
            f"{where}: input size {tuple(size)} differs from {model.card.path}'s "
            f"{tuple(model.input_size)}: the two are compared on the same probe images"
        )


def open_model_baseline(card_path: Path, candidate: GateContext) -> ModelBaseline:
    """The baseline model of `card_path`, set up as the candidate's context is."""
    from xaigate.context import ExplanationStore, GateContext, is_variant

    ((name, model),) = candidate.models.items()
    baseline = load_model(load_card(card_path))
    check_compatible(str(card_path), baseline.classes, baseline.input_size, model)
    probes = candidate.probes[name]
    check_model_outputs(baseline, probes.images()[:8])
    thresholds = candidate.thresholds
    # Own explainer instances: prepared state (IG's mean image) is kept per model name, which
    # the baseline may share with the candidate.
    explainers = {n: EXPLAINERS[n](config) for n, config in thresholds.explainers.items()}
    originals = np.stack([probe.image for probe in probes if not is_variant(probe)])
    for explainer in explainers.values():
        explainer.prepare(baseline, originals)
    cache: ExplanationCache | None = candidate.store.cache
    store = ExplanationStore(thresholds.seed, cache=cache)
    context = GateContext(
        thresholds, candidate.probe_set, {name: baseline}, {name: probes}, explainers, store
    )
    return ModelBaseline(card_path, context)


def open_baseline(path: Path, candidate: GateContext) -> BaselineSource:
    """`--baseline PATH`: a model card (a file) or a snapshot folder."""
    path = Path(path)
    if len(candidate.models) != 1:
        raise UsageError(
            f"--baseline {path}: compares one --model with it, {len(candidate.models)} given"
        )
    if path.is_dir():
        from xaigate.baseline.snapshot import load_snapshot

        return load_snapshot(path, candidate)
    if not path.exists():
        raise UsageError(f"--baseline {path}: no such model card or snapshot folder")
    return open_model_baseline(path, candidate)
