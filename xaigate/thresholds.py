"""thresholds.yaml: what is gated, how strictly, and with which explainer parameters.

Every key is validated against the explainer and check registries on load: an unknown key, a
wrong type, a check without a threshold or with one in the wrong direction is a usage error that
names the file, the line and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from xaigate.checks import builtin_checks
from xaigate.checks.registry import Direction
from xaigate.config_yaml import YamlDocument, load_yaml
from xaigate.explainers import EXPLAINERS, ExplainerConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Override(_Strict):
    """A threshold that replaces the check's default where all its selectors match."""

    model: str | None = None
    explainer: str | None = None
    class_: str | None = Field(None, alias="class")
    min: float | None = None
    max: float | None = None

    def matches(self, model: str, explainer: str, class_: str) -> bool:
        """All selectors match; a class selector matches either class of a contrast pair."""
        return (
            (self.model is None or self.model == model)
            and (self.explainer is None or self.explainer == explainer)
            and (self.class_ is None or self.class_ in class_.split(PAIR_JOIN))
        )


class MaxRegression(_Strict):
    """How much worse than the baseline a candidate may be, on the mean over probe images;
    each bound given must hold. `absolute` is in the check's own units, `relative` a share of
    the baseline's value (0.1: at most 10% worse)."""

    absolute: float | None = Field(None, ge=0)
    relative: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _some_bound(self) -> MaxRegression:
        if self.absolute is None and self.relative is None:
            raise ValueError("give 'absolute', 'relative' or both")
        return self


class CheckThresholds(_Strict):
    min: float | None = None
    max: float | None = None
    # A threshold relative to a reference figure the check reports (e.g. `area_share`, what a
    # random map scores) carries over to probe sets whose regions have other sizes.
    relative_to: str | None = None
    mode: Literal["ratio", "margin"] = "ratio"
    params: dict[str, Any] = {}
    # explainer -> why this check does not gate it; reported as not applicable with the reason.
    exclude: dict[str, str] = {}
    overrides: list[Override] = []
    # Only with a baseline (--baseline): how much worse than the baseline the candidate may be.
    max_regression: MaxRegression | None = None


class Bootstrap(_Strict):
    resamples: int = Field(1000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)


class Latency(_Strict):
    """Explanation latency, gated per explainer on the median seconds per image."""

    rounds: int = Field(
        3, ge=1, description="timed rounds per model and explainer, after one untimed warm-up round"
    )
    images: int = Field(
        2,
        ge=1,
        description="original probe images explained per round, in "
        "one call (the first ones of the probe set)",
    )
    threads: int = Field(
        1,
        ge=1,
        description="torch threads during the timed calls: on a shared machine one thread is "
        "slowed by a busy neighbour at most about twofold, several threads that wait for each "
        "other at every operation ten to twenty-fold",
    )
    budgets: dict[str, PositiveFloat] = Field(
        min_length=1, description="explainer -> most seconds per image (median over rounds)"
    )


LATENCY = "latency"  # the check the `latency:` section configures


class MapTolerance(_Strict):
    """Two maps within these tolerances (numpy.allclose) are the same map: a recomputed or
    stored map of an unchanged model may differ in its last bits (another batch make-up)."""

    rtol: float = Field(1e-5, ge=0)
    atol: float = Field(1e-8, ge=0)


class BaselineSection(_Strict):
    """The comparison with a baseline model or snapshot; in effect only with `--baseline`."""

    significance: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="a regression beyond max_regression fails when the paired Wilcoxon test's "
        "p-value is below this (not noise across the probe images)",
    )
    tolerance: MapTolerance = MapTolerance()
    checks: dict[str, CheckThresholds] = Field(
        {}, description="explanation drift floors: checks that compare candidate and baseline"
    )


class ThresholdsSchema(_Strict):
    version: int = Field(1, ge=1, le=1)
    seed: int = Field(0, ge=0, description="root of every random choice; recorded in gate.json")
    border_width: int = Field(6, ge=1, description="outer band, in pixels of the model's input")
    bootstrap: Bootstrap = Bootstrap()
    regions: dict[str, str | list[str]] = Field(
        min_length=1, description="class -> its decisive region (a list: their union)"
    )
    class_pairs: list[tuple[str, str]] = Field(
        [], description="pairs of classes whose explanations must differ (class contrast)"
    )
    explainers: dict[str, dict[str, Any] | None] = Field(min_length=1)
    checks: dict[str, CheckThresholds] = Field(min_length=1)
    latency: Latency | None = None
    baseline: BaselineSection | None = None

    @model_validator(mode="after")
    def _region_names_are_not_reserved(self) -> ThresholdsSchema:
        for class_, region in self.regions.items():
            for name in [region] if isinstance(region, str) else region:
                if name in {"border", "background"} or "+" in name:
                    raise ValueError(f"regions.{class_}: {name!r} cannot name a decisive region")
        return self


REGION_JOIN = "+"
PAIR_JOIN = "_vs_"  # class_contrast targets read "<first>_vs_<second>"


@dataclass(frozen=True)
class Threshold:
    """A gated number with its direction: value >= `value` (HIGHER) or <= `value` (LOWER).

    When `relative_to` names a reference figure, `value` is a factor of it until `resolved`.
    """

    direction: Direction
    value: float
    relative_to: str | None = None
    factor: float | None = None
    mode: str = "ratio"

    def admits(self, measured: float) -> bool:
        if self.relative_to is not None and self.factor is None:
            raise ValueError("a relative threshold must be resolved against its reference first")
        if self.direction is Direction.HIGHER:
            return measured >= self.value
        return measured <= self.value

    def resolved(self, references: dict[str, float]) -> Threshold:
        """The absolute threshold for a case whose measurement reported `references`."""
        if self.relative_to is None or self.factor is not None:
            return self
        if self.relative_to not in references:
            raise ValueError(f"no reference {self.relative_to!r} to resolve {self.rule} against")
        reference = references[self.relative_to]
        if not reference > 0:
            raise ValueError(f"reference {self.relative_to} is {reference}: {self.rule} is void")
        absolute = self.value * reference if self.mode == "ratio" else reference + self.value
        return Threshold(self.direction, absolute, self.relative_to, self.value, self.mode)

    @property
    def rule(self) -> str:
        """The threshold as configured, e.g. ``>= 2.5 x area_share``."""
        sign = ">=" if self.direction is Direction.HIGHER else "<="
        if self.relative_to is None:
            return f"{sign} {self.value:g}"
        factor = self.value if self.factor is None else self.factor
        if self.mode == "margin":
            return f"{sign} {self.relative_to} {factor:+g}"
        return f"{sign} {factor:g} x {self.relative_to}"

    def __str__(self) -> str:
        if self.relative_to is None or self.factor is None:
            return self.rule
        return f"{self.rule.split(' ')[0]} {self.value:.3f} ({self.rule.split(' ', 1)[1]})"


@dataclass(frozen=True)
class Thresholds:
    path: Path
    schema: ThresholdsSchema
    explainers: dict[str, ExplainerConfig]
    check_params: dict[str, Any]

    @property
    def seed(self) -> int:
        return self.schema.seed

    @property
    def regions(self) -> dict[str, str]:
        """class -> decisive region name; a union of regions is named ``a+b``."""
        return {
            class_: region if isinstance(region, str) else REGION_JOIN.join(region)
            for class_, region in self.schema.regions.items()
        }

    def check_config(self, check: str) -> CheckThresholds | None:
        """The check's entry under `checks:` or `baseline.checks:` (None: latency)."""
        if check in self.schema.checks:
            return self.schema.checks[check]
        baseline = self.schema.baseline
        return None if baseline is None else baseline.checks.get(check)

    @property
    def baseline_checks(self) -> list[str]:
        """The checks of the `baseline:` section (drift), which run only with a baseline."""
        return [] if self.schema.baseline is None else list(self.schema.baseline.checks)

    @property
    def max_regressions(self) -> dict[str, MaxRegression]:
        """check -> how much worse than the baseline it may get (checks that say so)."""
        return {
            name: config.max_regression
            for name, config in self.schema.checks.items()
            if config.max_regression is not None
        }

    def params(self, check: str) -> Any:
        """The check's validated `params` (its spec's params model)."""
        return self.check_params[check]

    @property
    def checks(self) -> list[str]:
        """The configured checks; `latency` when the `latency:` section is there."""
        return [*self.schema.checks, *([LATENCY] if self.schema.latency is not None else [])]

    def threshold(self, check: str, model: str, explainer: str, class_: str) -> Threshold:
        """The check's threshold for this case: the last matching override wins."""
        if check == LATENCY and self.schema.latency is not None:
            return Threshold(Direction.LOWER, float(self.schema.latency.budgets[explainer]))
        config = self.check_config(check)
        assert config is not None, check
        direction = builtin_checks()[check].direction
        key = direction.bound_key
        value = getattr(config, key)
        for override in config.overrides:
            if override.matches(model, explainer, class_) and getattr(override, key) is not None:
                value = getattr(override, key)
        return Threshold(direction, float(value), config.relative_to, mode=config.mode)


def load_thresholds(path: Path | str) -> Thresholds:
    """Read and validate a thresholds file; raises UsageError naming file, line and key."""
    document = load_yaml(path, "thresholds file")
    schema = document.validate(ThresholdsSchema)
    explainers = {
        name: _explainer_config(document, name, params)
        for name, params in schema.explainers.items()
    }
    checks = builtin_checks()
    params = {}
    baseline_checks = {} if schema.baseline is None else schema.baseline.checks
    sections = [(("checks",), schema.checks), (("baseline", "checks"), baseline_checks)]
    # Overrides and excludes may name explainers that are registered but not configured (a
    # copy of this file cut to fewer explainers keeps loading): they match nothing. A misspelt
    # one is still an error.
    for section, entries in sections:
        for name, config in entries.items():
            where = (*section, name)
            _validate_check(document, where, config, set(EXPLAINERS), set(schema.regions))
            params[name] = document.validate(
                checks[name].params_model, config.params, prefix=(*where, "params")
            )
            for index, class_ in enumerate(getattr(params[name], "classes", None) or []):
                if class_ not in schema.regions:
                    raise document.error(
                        (*where, "params", "classes", index),
                        f"class {class_!r} is not listed under 'regions'",
                    )
    if schema.latency is not None:
        _validate_latency(document, schema.latency, set(explainers))
        params[LATENCY] = schema.latency
    for index, pair in enumerate(schema.class_pairs):
        for position, class_ in enumerate(pair):
            if class_ not in schema.regions:
                raise document.error(
                    ("class_pairs", index, position), f"class {class_!r} is not under 'regions'"
                )
    return Thresholds(Path(path), schema, explainers, params)


def _explainer_config(
    document: YamlDocument, name: str, params: dict[str, Any] | None
) -> ExplainerConfig:
    if name not in EXPLAINERS:
        raise document.error(
            ("explainers", name), f"unknown explainer (known: {EXPLAINERS.known()})"
        )
    config_model = EXPLAINERS[name].config_model
    return document.validate(config_model, params or {}, prefix=("explainers", name))


def _validate_latency(document: YamlDocument, latency: Latency, explainers: set[str]) -> None:
    for name in latency.budgets:
        if name not in explainers:
            raise document.error(
                ("latency", "budgets", name), "explainer is not configured under 'explainers'"
            )
    # Fail closed: an explainer without a budget would run ungated.
    for name in sorted(explainers - set(latency.budgets)):
        raise document.error(
            ("latency", "budgets"), f"no budget for explainer {name!r}: every explainer is timed"
        )


def _unknown_explainer() -> str:
    return f"is not a known explainer (known: {EXPLAINERS.known()})"


def _validate_check(
    document: YamlDocument,
    where: tuple[str, ...],
    config: CheckThresholds,
    explainers: set[str],
    classes: set[str],
) -> None:
    name = where[-1]
    in_baseline = where[0] == "baseline"
    checks = builtin_checks()
    if name == LATENCY:
        raise document.error(where, "latency budgets go under the top-level 'latency' section")
    if name not in checks:
        raise document.error(where, f"unknown check (known: {checks.known()})")
    if checks[name].needs_baseline and not in_baseline:
        raise document.error(
            where, f"{name} compares with a baseline: it goes under 'baseline: checks:'"
        )
    if in_baseline and not checks[name].needs_baseline:
        raise document.error(
            where, f"{name} needs no baseline: it goes under the top-level 'checks'"
        )
    if in_baseline and config.max_regression is not None:
        raise document.error(
            (*where, "max_regression"), "a drift check is its own comparison with the baseline"
        )
    direction = checks[name].direction
    key = direction.bound_key
    wrong = "max" if key == "min" else "min"
    if getattr(config, wrong) is not None:
        raise document.error(
            (*where, wrong), f"{name} is {direction.value}-is-better: give '{key}', not '{wrong}'"
        )
    if getattr(config, key) is None:
        raise document.error(where, f"no threshold: give '{key}' ({direction.value} is better)")
    references = checks[name].references
    if config.relative_to is not None and config.relative_to not in references:
        known = ", ".join(references) or "none"
        raise document.error(
            (*where, "relative_to"),
            f"{name} reports no {config.relative_to!r} to be relative to (it reports: {known})",
        )
    for explainer, reason in config.exclude.items():
        if explainer not in explainers:
            raise document.error(
                (*where, "exclude", explainer), f"explainer {_unknown_explainer()}"
            )
        if not reason.strip():
            raise document.error((*where, "exclude", explainer), "say why it is excluded")
    for index, override in enumerate(config.overrides):
        at = (*where, "overrides", index)
        if getattr(override, wrong) is not None:
            raise document.error((*at, wrong), f"{name} takes '{key}', not '{wrong}'")
        if getattr(override, key) is None:
            raise document.error(at, f"override has no threshold: give '{key}'")
        if override.explainer is not None and override.explainer not in explainers:
            raise document.error(
                (*at, "explainer"),
                f"explainer {override.explainer!r} {_unknown_explainer()}",
            )
        if override.class_ is not None and override.class_ not in classes:
            raise document.error(
                (*at, "class"), f"class {override.class_!r} is not listed under 'regions'"
            )
