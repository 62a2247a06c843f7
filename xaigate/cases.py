"""A gated case and what measuring it yields."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xaigate.explainers import Explanation
    from xaigate.probes import Probe


@dataclass(frozen=True)
class Case:
    """One gated question: does `model` explained by `explainer` pass `check` for `target`?

    `region` is what the check measures against (a decisive region, "border", "background").
    A case that cannot run on this model carries the reason in `not_applicable`;
    `model_limit` says that the check itself cannot apply to what the model is, whatever the
    explainer (an ONNX graph has no weights to randomise; no explainer can give maps of a
    two-class ONNX graph, or of a one-sigmoid-unit MLP, whose class contrast could fail).
    """

    model: str
    explainer: str
    check: str
    target: str
    region: str
    not_applicable: str | None = None
    model_limit: bool = False

    @property
    def id(self) -> str:
        """The pytest id, e.g. ``smile-cnn-lime-smile-mouth``: ``-k lime`` selects by it."""
        return "-".join(
            part for part in (self.model, self.explainer, self.target, self.region) if part
        )

    @property
    def result_id(self) -> str:
        """The id of its result in gate.json, e.g. ``region_focus[smile-cnn-lime-smile-mouth]``."""
        return f"{self.check}[{self.id}]"


class NotMeasurable(Exception):
    """Raised by a check's `measure` when what the model is leaves the case nothing to measure
    on these probes (a model that gives the class to the baseline image itself has no
    evidence for deletion to remove); the case is reported not applicable with this reason."""


@dataclass(frozen=True)
class Measurement:
    """Per-probe-image values of a case, reference figures reported beside them, and evidence."""

    values: dict[str, float]
    reference: dict[str, float] = field(default_factory=dict)
    # What the report draws (curves, a confusion matrix); never judged, never in gate.json.
    evidence: dict[str, Any] = field(default_factory=dict)


def compare_maps(
    probes: Sequence[Probe],
    first: Sequence[Explanation],
    second: Sequence[Explanation],
    similarity: Callable[..., float],
    within: str | None = None,
) -> dict[str, float]:
    """`similarity` of two maps of each probe image, keyed by probe id; with `within`, a region
    name, only inside that region of each probe (`similarity(a, b, mask)`)."""
    return {
        probe.id: similarity(a.attribution, b.attribution)
        if within is None
        else similarity(a.attribution, b.attribution, probe.regions[within])
        for probe, a, b in zip(probes, first, second, strict=True)
    }
