"""Run cases and judge them against thresholds; collect the results for the verdict."""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xaigate.baseline.regression import Regression, compare
from xaigate.cases import Case, Measurement, NotMeasurable
from xaigate.checks import CheckSpec, builtin_checks
from xaigate.context import GateContext
from xaigate.errors import UsageError
from xaigate.stats import bootstrap_bound, derived_seed
from xaigate.thresholds import BaselineSection, Threshold

PASSED, FAILED, NOT_APPLICABLE, ERROR = "passed", "failed", "not_applicable", "error"


@dataclass
class Result:
    """The verdict on one case, as written to gate.json."""

    case: Case
    status: str
    message: str
    threshold: Threshold | None = None
    value: float | None = None
    bound: float | None = None
    n: int = 0
    undefined: int = 0
    bootstrap_seed: int | None = None
    reference: dict[str, float] = field(default_factory=dict)
    per_image: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    # The measurement's evidence for the report (figures' data); not part of the verdict.
    evidence: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Against the baseline (--baseline), for checks with a max_regression.
    regression: Regression | None = None

    @property
    def id(self) -> str:
        return self.case.result_id

    @property
    def passed(self) -> bool:
        # Not applicable is reported, not failed: the case could never run on this model.
        return self.status in (PASSED, NOT_APPLICABLE)

    def to_json(self) -> dict[str, Any]:
        case = self.case
        content = {
            "id": self.id,
            "model": case.model,
            "check": case.check,
            "explainer": case.explainer,
            "target": case.target,
            "region": case.region,
            "status": self.status,
            "passed": self.passed,
            "value": _number(self.value),
            "bound": _number(self.bound),
            "threshold": None if self.threshold is None else _number(self.threshold.value),
            "threshold_rule": None if self.threshold is None else self.threshold.rule,
            "direction": None if self.threshold is None else self.threshold.direction.value,
            "n": self.n,
            "undefined": self.undefined,
            "bootstrap_seed": self.bootstrap_seed,
            "reference": {key: _number(value) for key, value in self.reference.items()},
            "per_image": {key: _number(value) for key, value in self.per_image.items()},
            "message": self.message,
        }
        if self.regression is not None:  # only with a baseline: gate.json is otherwise unchanged
            content["baseline"] = self.regression.to_json()
        return content


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def judge(
    spec: CheckSpec,
    case: Case,
    measurement: Measurement,
    threshold: Threshold,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> Result:
    """Decide on the mean and its pessimistic bootstrap bound; undefined images count as worst."""
    raw = np.array(list(measurement.values.values()), dtype=np.float64)
    undefined = int(np.sum(~np.isfinite(raw)))
    values = np.where(np.isfinite(raw), raw, spec.worst)
    if values.size == 0:
        return Result(case, ERROR, f"{_label(case)}: no probe image to measure", threshold)
    mean = float(values.mean())
    bound = bootstrap_bound(
        values, threshold.direction, resamples=resamples, confidence=confidence, seed=seed
    )
    passed = threshold.admits(mean) and threshold.admits(bound)
    reference = ", ".join(f"{key} {value:.3f}" for key, value in measurement.reference.items())
    message = (
        f"{_label(case)}: mean {mean:.3f} (bound {bound:.3f}) {'meets' if passed else 'fails'} "
        f"{threshold} (n={values.size}"
        + (f", {undefined} undefined counted as {spec.worst:g}" if undefined else "")
        + (f"; {reference}" if reference else "")
        + ")"
    )
    return Result(
        case,
        PASSED if passed else FAILED,
        message,
        threshold,
        mean,
        bound,
        int(values.size),
        undefined,
        seed,
        dict(measurement.reference),
        dict(measurement.values),
    )


def _with_regression(result: Result, regression: Regression) -> Result:
    """The result with its comparison to the baseline; a regression fails it."""
    failed = result.status == FAILED or regression.regressed
    message = f"{result.message}; against the baseline: {regression.describe()}"
    return replace(
        result, status=FAILED if failed else result.status, message=message, regression=regression
    )


def _label(case: Case) -> str:
    parts = (case.check, case.model, case.explainer, f"{case.target}/{case.region}".strip("/"))
    return " ".join(part for part in parts if part)


class Gate:
    """Lists and runs the cases of one gate run, keeping every result for the verdict."""

    def __init__(self, context: GateContext) -> None:
        self.context = context
        self.checks = builtin_checks()
        self.results: dict[str, Result] = {}
        thresholds = context.thresholds
        # The baseline section's checks (drift) run only against a baseline.
        checks = thresholds.checks + (thresholds.baseline_checks if context.baseline else [])
        # Listed up front: a configured check that cannot be set up (no variants in the probes,
        # a class pair no model has) stops the run before any explainer runs.
        self.case_lists = {check: self.list_cases(check) for check in checks}
        self._check_every_check_applies()
        if context.baseline is not None:
            self._check_baseline_serves()

    def cases(self, check: str) -> list[Case]:
        """The cases of `check` (empty when thresholds.yaml does not configure it)."""
        return self.case_lists.get(check, [])

    def _check_every_check_applies(self) -> None:
        # Fail closed: a configured check with nothing it can run (no case, or only cases that
        # do not apply) would otherwise pass by omission; so does one no configured explainer
        # can serve (only gradient explainers for an ONNX model). The exception is a check the
        # gated models rule out (weight randomisation of an ONNX graph; a class contrast that
        # no explainer could measure on the model, `contrast_explainers`), every other
        # case being ruled out by the model too: each case is reported not applicable with the
        # reason, unless a threshold demands it.
        thresholds = self.context.thresholds
        for check, cases in self.case_lists.items():
            ruled_out = all(case.not_applicable and self._model_cannot(case) for case in cases)
            if cases and ruled_out and any(case.model_limit for case in cases):
                continue
            if not any(case.not_applicable is None for case in cases):
                reasons = sorted({case.not_applicable or "" for case in cases}) or [
                    "no case for the gated models, classes and class_pairs"
                ]
                raise UsageError(
                    f"{thresholds.path}: checks.{check}: configured but applies to nothing "
                    f"gated here ({'; '.join(reasons)})"
                )
        self._check_each_model_is_gated()
        self._check_demands_apply()
        for model in self.context.models:
            if not any(case.model == model and not case.not_applicable for case in self.configured):
                raise UsageError(
                    f"{thresholds.path}: no configured check applies to model {model!r}"
                )

    def _check_each_model_is_gated(self) -> None:
        """Fail closed per model too: with several models in one run, a check that applies to
        one of them must not be ruled out for another by the configuration alone (contrast
        gated only through explainers whose maps are opposite on that model)."""
        thresholds = self.context.thresholds
        for check, cases in self.case_lists.items():
            for model in self.context.models:
                mine = [case for case in cases if case.model == model]
                if not mine or not all(case.not_applicable for case in mine):
                    continue
                if all(self._model_cannot(case) for case in mine):
                    continue  # reported not applicable: the model rules the check out
                reasons = sorted({case.not_applicable or "" for case in mine})
                raise UsageError(
                    f"{thresholds.path}: checks.{check}: configured but applies to nothing for "
                    f"model {model!r} ({'; '.join(reasons)})"
                )

    def _check_baseline_serves(self) -> None:
        """Fail closed: a comparison the thresholds ask for must be possible with this baseline
        (its explainers apply, a snapshot holds the values and maps), or the run stops now."""
        thresholds = self.context.thresholds
        baseline = self.context.baseline
        assert baseline is not None
        compared = [*thresholds.max_regressions, *thresholds.baseline_checks]
        if not compared:
            raise UsageError(
                f"--baseline {baseline.path}: {thresholds.path} sets no max_regression and no "
                "'baseline: checks:', so nothing would be compared"
            )
        for check in compared:
            needs_maps = self.checks[check].needs_baseline
            for case in self.cases(check):
                reason = None if case.not_applicable else baseline.cannot_serve(case, needs_maps)
                if reason:
                    raise UsageError(f"--baseline {baseline.path}: {case.result_id}: {reason}")

    def _model_cannot(self, case: Case) -> bool:
        """The case is ruled out by what its model is (the check's or the explainer's limits),
        not by the configuration."""
        if not case.not_applicable:
            return False
        if case.model_limit:
            return True
        explainer = self.context.explainers.get(case.explainer)
        model = self.context.models[case.model]
        return explainer is not None and explainer.not_applicable_reason(model) is not None

    def _check_demands_apply(self) -> None:
        """An override that names a model demands its cases: they may not all be ruled out by
        the model's limits (a gradient explainer's threshold for an ONNX model)."""
        thresholds = self.context.thresholds
        for check, cases in self.case_lists.items():
            # `latency` is configured by its own section, which has no overrides.
            config = thresholds.check_config(check)
            for index, override in enumerate(config.overrides if config else ()):
                if override.model is None or override.model not in self.context.models:
                    continue
                named = [
                    case
                    for case in cases
                    if override.matches(case.model, case.explainer, case.target)
                ]
                limited = [case for case in named if self._model_cannot(case)]
                if limited and len(limited) == len(named):
                    raise UsageError(
                        f"{thresholds.path}: checks.{check}.overrides.{index}: sets a threshold "
                        f"for model {override.model!r}"
                        + (f" and explainer {override.explainer!r}" if override.explainer else "")
                        + f", which cannot run: {limited[0].not_applicable}"
                    )

    @property
    def configured(self) -> list[Case]:
        return [case for cases in self.case_lists.values() for case in cases]

    def missing(self) -> list[str]:
        """Ids of configured cases with no result: a partial run (-k, a crash) is not a pass."""
        return [case.result_id for case in self.configured if case.result_id not in self.results]

    def list_cases(self, check: str) -> list[Case]:
        """The cases `check` gates for the context's models and explainers, whether or not it
        is configured to run."""
        spec = self.checks[check]
        cases: list[Case] = []
        for model_name, model in self.context.models.items():
            if not spec.per_explainer:
                cases.extend(spec.cases(self.context, model_name, "", check))
                continue
            config = self.context.thresholds.check_config(check)
            excluded = {} if config is None else config.exclude
            for explainer_name, explainer in self.context.explainers.items():
                reason = explainer.not_applicable_reason(model)
                if explainer_name in excluded:
                    reason = f"excluded by thresholds.yaml: {excluded[explainer_name]}"
                for case in spec.cases(self.context, model_name, explainer_name, check):
                    # A case that already knows why it does not apply keeps its own reason.
                    cases.append(replace(case, not_applicable=case.not_applicable or reason))
        return cases

    def run(self, case: Case) -> Result:
        started = time.perf_counter()
        try:
            result = self._run(case)
        except Exception as exc:  # recorded, then re-raised: pytest reports it as an error
            self.record(
                Result(case, ERROR, f"{_label(case)}: {exc!r}\n{traceback.format_exc(limit=3)}")
            )
            raise
        result.seconds = time.perf_counter() - started
        return self.record(result)

    def _run(self, case: Case) -> Result:
        if case.not_applicable:
            return Result(case, NOT_APPLICABLE, f"{_label(case)}: {case.not_applicable}")
        spec = self.checks[case.check]
        thresholds = self.context.thresholds
        threshold = thresholds.threshold(case.check, case.model, case.explainer, case.target)
        try:
            measurement = spec.measure(self.context, case)
        except NotMeasurable as reason:
            return Result(case, NOT_APPLICABLE, f"{_label(case)}: {reason}")
        bootstrap = thresholds.schema.bootstrap
        result = judge(
            spec,
            case,
            measurement,
            threshold.resolved(measurement.reference),
            resamples=bootstrap.resamples,
            confidence=bootstrap.confidence,
            seed=derived_seed(thresholds.seed, "bootstrap", case.check, case.id),
        )
        result.evidence = measurement.evidence
        max_regression = thresholds.max_regressions.get(case.check)
        baseline = self.context.baseline
        if baseline is not None and max_regression is not None:
            significance = (thresholds.schema.baseline or BaselineSection()).significance
            regression = compare(
                spec,
                measurement.values,
                baseline.values(spec, case),
                max_regression,
                significance,
            )
            result = _with_regression(result, regression)
        return result

    def record(self, result: Result) -> Result:
        self.results[result.id] = result
        return result

    @property
    def passed(self) -> bool:
        """Every configured case ran and passed (or does not apply)."""
        return (
            bool(self.results)
            and not self.missing()
            and all(result.passed for result in self.results.values())
        )
