"""Everything a gate run needs, loaded and cross-checked once: thresholds, models, probes.

Cross-checks happen here, before any explainer runs, so a bad set-up stops in seconds with one
line naming the file at fault instead of failing half-way through the gate.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xaigate.cache import ExplanationCache, explanation_keys, model_output_key
from xaigate.digests import json_digest
from xaigate.errors import UsageError
from xaigate.explainers import EXPLAINERS, Explainer, Explanation
from xaigate.metrics.localisation import border_mask
from xaigate.models.adapter import ModelAdapter
from xaigate.models.card import load_card
from xaigate.models.loading import check_model_outputs, load_model
from xaigate.probes import Probe, ProbeSet, load_probe_set
from xaigate.stats import derived_seed
from xaigate.thresholds import REGION_JOIN, Thresholds, load_thresholds

if TYPE_CHECKING:
    from xaigate.baseline.source import BaselineSource

FACE_REGION = "face"
CONTROLS = ("random", "centre_prior", "edges")


def is_variant(probe: Probe) -> bool:
    return "variant" in probe.tags


def region_mask(probe: Probe, region: str) -> np.ndarray:
    """The probe's mask of `region`; ``a+b`` is the union of regions a and b."""
    parts = region.split(REGION_JOIN)
    mask = probe.regions[parts[0]].copy()
    for part in parts[1:]:
        mask |= probe.regions[part]
    return mask


@dataclass
class ExplanationStore:
    """Each explanation is computed once per (model, image, explainer, target) and shared.

    Looked up in memory first, then in the on-disk `cache` when there is one (None: memory
    only, as in the engine's tests and under `--no-cache`); what is still missing is computed
    in one batch and written to both.
    """

    seed: int
    computed: dict[tuple[str, str, str, int, str], Explanation] = field(default_factory=dict)
    cache: ExplanationCache | None = None

    def seed_for(self, explainer: str, probe_id: str, salt: str = "") -> int:
        """The seed of one explanation; `salt` draws another one (for stability across seeds)."""
        labels = ("explainer", explainer, probe_id) + ((salt,) if salt else ())
        return derived_seed(self.seed, *labels)

    def get(
        self,
        model: ModelAdapter,
        explainer: Explainer,
        probes: Sequence[Probe],
        target: int,
        salt: str = "",
        model_variant: str = "",
    ) -> list[Explanation]:
        """Explanations of `probes`; `salt` draws other seeds, `model_variant` names a changed
        model (e.g. randomised weights) explained with the same seeds."""

        def key(probe: Probe) -> tuple[str, str, str, int, str]:
            return (f"{model.name}{model_variant}", explainer.name, probe.id, target, salt)

        missing = [probe for probe in probes if key(probe) not in self.computed]
        if missing:
            seeds = [self.seed_for(explainer.name, probe.id, salt) for probe in missing]
            # The disk key names the model by its digest, which already tells a randomised
            # variant from the trained model, so `model_variant` is not part of it.
            found = self._from_disk_or_explained(
                model, explainer, missing, target, seeds, lambda disk_key: disk_key
            )
            for probe, explanation in zip(missing, found, strict=True):
                self.computed[key(probe)] = explanation
        return [self.computed[key(probe)] for probe in probes]

    def recompute(
        self, model: ModelAdapter, explainer: Explainer, probes: Sequence[Probe], target: int
    ) -> list[Explanation]:
        """The explanations of `probes` computed again with the same seeds by a fresh explainer
        (`Explainer.fresh`), never from memory: what the reproducibility check compares.

        The disk cache keeps each recomputed map under a key of its own, which also names this
        host, so a later run on the same machine and unchanged inputs (the same model, image,
        parameters, seed, libraries and code) reads the recomputation an earlier run made there
        instead of making it again. A cache carried to another machine (a CI cache restored on
        another runner) recomputes; so does `--no-cache`.
        """
        seeds = [self.seed_for(explainer.name, probe.id) for probe in probes]
        host = platform.node()
        return self._from_disk_or_explained(
            model,
            explainer.fresh(),
            probes,
            target,
            seeds,
            lambda disk_key: json_digest({"recomputed": disk_key, "host": host}),
        )

    def _from_disk_or_explained(
        self,
        model: ModelAdapter,
        explainer: Explainer,
        probes: Sequence[Probe],
        target: int,
        seeds: list[int],
        stored_as: Callable[[str], str],
    ) -> list[Explanation]:
        """Each probe's explanation read from the disk cache, under `stored_as` of its
        explanation key, or else explained in one batch and written there."""
        found: dict[int, Explanation] = {}
        disk_keys: list[str] = []
        if self.cache is not None:
            images = [probe.image for probe in probes]
            disk_keys = [
                stored_as(disk_key)
                for disk_key in explanation_keys(model, explainer, images, seeds, target)
            ]
            for i, (probe, disk_key) in enumerate(zip(probes, disk_keys, strict=True)):
                cached = self.cache.get(disk_key)
                if cached is not None and _map_problem(cached, probe, model) is None:
                    found[i] = cached
        todo = [i for i in range(len(probes)) if i not in found]
        if todo:
            images = np.stack([probes[i].image for i in todo]).astype(np.float32)
            targets = np.full(len(todo), target, dtype=np.int64)
            explained = explainer.explain(model, images, targets, [seeds[i] for i in todo])
            for i, explanation in zip(todo, explained, strict=True):
                _check_map(explanation, probes[i], model)
                found[i] = explanation
                if self.cache is not None:
                    self.cache.put(disk_keys[i], explanation)
        return [found[i] for i in range(len(probes))]

    def cache_summary(self) -> dict[str, object] | str:
        """For the verdict's provenance: the disk cache's root and use, or `disabled`."""
        return "disabled" if self.cache is None else self.cache.summary()


def _map_problem(explanation: Explanation, probe: Probe, model: ModelAdapter) -> str | None:
    """Why a map cannot be used for `probe` (None when it can)."""
    expected = probe.image.shape[:2]
    if explanation.attribution.shape != expected:
        return (
            f"{explanation.method} returned a {explanation.attribution.shape} map for "
            f"{probe.id} on {model.name}; expected {expected}"
        )
    if not np.all(np.isfinite(explanation.attribution)):
        return f"{explanation.method} returned a non-finite map for {probe.id} on {model.name}"
    return None


def _check_map(explanation: Explanation, probe: Probe, model: ModelAdapter) -> None:
    problem = _map_problem(explanation, probe, model)
    if problem is not None:
        raise RuntimeError(problem)


@dataclass
class GateContext:
    """Loaded, validated inputs of one gate run, and the shared explanation store."""

    thresholds: Thresholds
    probe_set: ProbeSet
    models: dict[str, ModelAdapter]
    probes: dict[str, ProbeSet]
    explainers: dict[str, Explainer]
    store: ExplanationStore
    controls: dict[str, Explainer] = field(default_factory=dict)
    # What the candidate is compared with (--baseline); None: no comparison is made.
    baseline: BaselineSource | None = None

    @classmethod
    def open(
        cls,
        thresholds_path: Path | str,
        card_paths: Sequence[Path | str],
        probes_path: Path | str,
        *,
        cache: ExplanationCache | None = None,
        baseline: Path | str | None = None,
    ) -> GateContext:
        """Load and cross-check every input; `cache` keeps explanations on disk between runs
        (None, the default: in memory only); `baseline`, a model card or a snapshot folder, is
        what the one gated model is compared with."""
        thresholds = load_thresholds(thresholds_path)
        probe_set = load_probe_set(probes_path)
        explainers = {
            name: EXPLAINERS[name](config) for name, config in thresholds.explainers.items()
        }
        models: dict[str, ModelAdapter] = {}
        probes: dict[str, ProbeSet] = {}
        for card_path in card_paths:
            model = load_model(load_card(card_path))
            if model.name in models:
                raise UsageError(f"{card_path}: name: model {model.name!r} is gated twice")
            resized = probe_set.resized(model.input_size)
            _cross_check(thresholds, resized, model)
            check_model_outputs(model, resized.images()[:8])
            models[model.name] = model
            probes[model.name] = resized
            originals = np.stack([p.image for p in resized if not is_variant(p)])
            for explainer in explainers.values():
                explainer.prepare(model, originals)
        store = ExplanationStore(thresholds.seed, cache=cache)
        context = cls(thresholds, probe_set, models, probes, explainers, store)
        if baseline is not None:
            from xaigate.baseline.source import open_baseline

            context.baseline = open_baseline(Path(baseline), context)
        return context

    def class_index(self, model: str, class_: str) -> int:
        return self.models[model].classes.index(class_)

    def probes_of_class(self, model: str, class_: str) -> list[Probe]:
        """The original probe images of a class (derived variants excluded)."""
        return [probe for probe in self.probes[model].of_class(class_) if not is_variant(probe)]

    def variants(self, model: str, kinds: Sequence[str]) -> list[tuple[Probe, Probe]]:
        """(variant, its source) pairs whose `variant` tag is one of `kinds`."""
        by_id = {probe.id: probe for probe in self.probes[model]}
        return [
            (probe, by_id[str(probe.tags["source"])])
            for probe in self.probes[model]
            if probe.tags.get("variant") in kinds and str(probe.tags.get("source")) in by_id
        ]

    def explanations(
        self,
        model: str,
        explainer: str,
        probes: Sequence[Probe],
        class_: str,
        salt: str = "",
    ) -> list[Explanation]:
        return self.store.get(
            self.models[model],
            self.explainers[explainer],
            probes,
            self.class_index(model, class_),
            salt,
        )

    def recomputed(
        self, model: str, explainer: str, probes: Sequence[Probe], class_: str
    ) -> list[Explanation]:
        """`probes` explained again for `class_`, as `ExplanationStore.recompute` does."""
        return self.store.recompute(
            self.models[model], self.explainers[explainer], probes, self.class_index(model, class_)
        )

    def model_outputs(
        self, model: str, computation: Callable[..., np.ndarray], **inputs: Any
    ) -> np.ndarray:
        """`computation(model.predict_proba, **inputs)`, e.g. deletion curves: read from the
        disk cache when an earlier run computed it from the same inputs, else computed and kept.
        `inputs` are arrays and JSON values; together they must decide the result."""
        adapter = self.models[model]
        cache = self.store.cache
        if cache is None:
            return computation(adapter.predict_proba, **inputs)
        key = model_output_key(adapter, computation, inputs)
        found = cache.get_array(key)
        if found is not None:
            return found
        computed = computation(adapter.predict_proba, **inputs)
        cache.put_array(key, computed)
        return computed

    def predictions(self, model: str, images: np.ndarray) -> np.ndarray:
        """(N, C) probabilities of `model` on NHWC images."""
        return self.models[model].predict_proba(np.asarray(images, dtype=np.float32))

    def control_maps(
        self, model: str, control: str, probes: Sequence[Probe], class_: str
    ) -> list[Explanation]:
        """Maps of a control explainer (random, centre prior, edges), with default parameters."""
        if control not in self.controls:
            self.controls[control] = EXPLAINERS[control](EXPLAINERS[control].config_model())
        explainer = self.controls[control]
        return self.store.get(
            self.models[model], explainer, probes, self.class_index(model, class_), "control"
        )

    def border(self, model: str) -> np.ndarray:
        return border_mask(self.models[model].input_size, self.thresholds.schema.border_width)


def _cross_check(thresholds: Thresholds, probes: ProbeSet, model: ModelAdapter) -> None:
    """Every class the model gates has a decisive region, and probe images that carry it."""
    card = model.card.path
    manifest = probes.root / "manifest.jsonl"
    probes.check_labels(model.classes, str(card))
    uses_face = {"background_dominance", "background_swap_flip_rate", "background_swap_shift"}
    always = {FACE_REGION} if uses_face & set(thresholds.checks) else set()
    for check in thresholds.checks:  # maps compared only inside a region (class contrast)
        within = getattr(thresholds.params(check), "within", None)
        always |= {within} if within else set()
    if "decisive_swap_follow_rate" in thresholds.checks:
        # Any probe may receive any other class's decisive regions, aligned by the face.
        always |= {FACE_REGION}
        for class_ in model.classes:
            always |= set(thresholds.regions.get(class_, "").split(REGION_JOIN)) - {""}
    if "class_contrast" in thresholds.checks:
        for index, pair in enumerate(thresholds.schema.class_pairs):
            missing = [class_ for class_ in pair if class_ not in model.classes]
            if len(missing) == 1:  # a pair of another model's classes names none of these
                raise UsageError(
                    f"{thresholds.path}: class_pairs.{index}: model card {card} has class "
                    f"{next(c for c in pair if c not in missing)!r} but not {missing[0]!r}"
                )
    for class_ in model.classes:
        region = thresholds.regions.get(class_)
        if region is None:
            raise UsageError(
                f"{thresholds.path}: regions: class {class_!r} of model card {card} has no "
                "decisive region"
            )
        of_class = [probe for probe in probes.of_class(class_) if not is_variant(probe)]
        if not of_class:
            raise UsageError(f"{manifest}: no probe image of class {class_!r} gated by {card}")
        required = sorted(always | set(region.split(REGION_JOIN)))
        for probe in of_class:
            for name in required:
                if name not in probe.regions:
                    raise UsageError(
                        f"{manifest}:{probe.line}: probe {probe.id!r} has no region {name!r}, "
                        f"which {thresholds.path} gates"
                    )
                if not probe.regions[name].any():
                    # An empty region has area share 0: every relative threshold would be void.
                    raise UsageError(
                        f"{manifest}:{probe.line}: probe {probe.id!r}: region {name!r} is empty "
                        f"at the model's input size {model.input_size}"
                    )
    ids = {probe.id for probe in probes}
    for probe in probes:
        source = probe.tags.get("source")
        if is_variant(probe) and str(source) not in ids:
            raise UsageError(
                f"{manifest}:{probe.line}: variant {probe.id!r} names source {source!r}, "
                "which is not in the probe set"
            )
