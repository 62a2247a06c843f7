"""The machine-readable verdict (gate.json), its provenance, and the terminal table."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for hints: `xaigate.merge` and `ci_outputs` must not load torch
    from xaigate.context import GateContext
    from xaigate.gate import Gate

# Everything that shapes a figure or a report: the gate.json and Allure environment record them.
LIBRARIES = (
    "xaigate",
    "numpy",
    "torch",
    "captum",
    "lime",
    "shap",
    "scikit-image",
    "pydantic",
    "pillow",
    "pytest",
    "pytest-benchmark",
    "allure-pytest",
)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def provenance(context: GateContext) -> dict[str, Any]:
    """What produced these figures: digests, parameters, seeds and library versions."""
    thresholds = context.thresholds
    content: dict[str, Any] = {
        "models": {
            name: {
                "card": str(model.card.path),
                "artifact_sha256": model.digest,
                "framework": model.card.framework,
                "format": model.card.format,
                "classes": model.classes,
            }
            for name, model in context.models.items()
        },
        "probes": {
            "path": str(context.probe_set.root),
            "sha256": context.probe_set.digest,
            "images": len(context.probe_set),
        },
        "thresholds": {"path": str(thresholds.path), "sha256": file_digest(thresholds.path)},
        "explainers": {name: config.model_dump() for name, config in thresholds.explainers.items()},
        "seeds": {
            "root": thresholds.seed,
            "explainer_seed": "sha256('<root>:explainer:<name>:<probe id>')[:4], little-endian",
            "bootstrap_seed": "per result, under results[].bootstrap_seed",
        },
        "bootstrap": thresholds.schema.bootstrap.model_dump(),
        "border_width": thresholds.schema.border_width,
        "libraries": library_versions(),
        # Hits and misses of this run: a warm run reads every explanation back from disk.
        "explanation_cache": context.store.cache_summary(),
        # Seconds inside the models in this process: predict_proba's forwards and the gradient
        # explainers' forward and backward passes (the fixture sets them against wall time).
        "model_seconds": round(
            sum(
                getattr(model, "forward_seconds", 0.0) + getattr(model, "gradient_seconds", 0.0)
                for model in context.models.values()
            ),
            3,
        ),
    }
    if context.baseline is not None:
        content["baseline"] = context.baseline.provenance()
    elif thresholds.max_regressions or thresholds.baseline_checks:
        # Said, not silently skipped: without --baseline these parts of the thresholds were not
        # applied, so this verdict is no merge gate's.
        content["baseline"] = {
            "kind": "none",
            "not_in_effect": [*thresholds.max_regressions, *thresholds.baseline_checks],
        }
    return content


def verdict(
    gate: Gate | None,
    *,
    session_ok: bool,
    errors: list[str],
    context_info: dict[str, Any],
    shard: str | None = None,
) -> dict[str, Any]:
    """gate.json's content: passed only when every result passed and the session ran clean."""
    results = [] if gate is None else list(gate.results.values())
    return assemble(
        configured=None if gate is None else [case.result_id for case in gate.configured],
        results=[result.to_json() for result in results],
        timings={result.id: result.seconds for result in results},
        session_ok=session_ok,
        errors=errors,
        context_info=context_info,
        shard=shard,
    )


def assemble(
    *,
    configured: list[str] | None,
    results: list[dict[str, Any]],
    timings: dict[str, float],
    session_ok: bool,
    errors: list[str],
    context_info: dict[str, Any],
    shard: str | None = None,
) -> dict[str, Any]:
    """gate.json from results in their JSON form: one run's, or several workers' or shards'.

    `configured` is None when the gate never opened (nothing can have passed).
    """
    results = sorted(results, key=lambda result: result["id"])
    ran = {result["id"] for result in results}
    missing = [] if configured is None else [case for case in configured if case not in ran]
    passed = (
        session_ok
        and not errors
        and configured is not None
        and bool(results)
        and not missing
        and all(result["passed"] for result in results)
    )
    content: dict[str, Any] = {
        "passed": passed,
        "complete": configured is not None and not missing,
        "summary": _summary(results),
        "configured": 0 if configured is None else len(configured),
        "not_run": missing,
        "results": results,
        "errors": errors,
        # Apart from the values: timings differ from run to run, the values must not.
        "timings": {result["id"]: round(timings.get(result["id"], 0.0), 3) for result in results},
        "session_ok": session_ok,
        "configured_cases": configured or [],
        "provenance": context_info,
    }
    if shard is not None:
        content["shard"] = shard
    return content


def _summary(results: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    return counts


def write_json_atomic(path: Path, content: dict[str, Any]) -> None:
    """Write through a temporary file and rename, so a reader never sees half a verdict."""
    write_text_atomic(path, json.dumps(content, indent=2, sort_keys=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` through a temporary file in the same folder and rename it into place."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` through a temporary file in the same folder and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def table(results: list[dict[str, Any]]) -> str:
    """A fixed-width verdict table for the terminal, from results in their JSON form."""
    header = (
        "status",
        "check",
        "model",
        "explainer",
        "target/region",
        "value",
        "bound",
        "thr",
        "n",
    )
    rows = [header]
    for result in sorted(results, key=lambda r: (r["model"], r["check"], r["id"])):
        rows.append(
            (
                result["status"].upper().replace("_", " "),
                result["check"],
                result["model"],
                result["explainer"],
                f"{result['target']}/{result['region']}",
                number_text(result["value"]),
                number_text(result["bound"]),
                threshold_text(result),
                str(result["n"]),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def number_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def threshold_text(result: dict[str, Any]) -> str:
    """``>= 0.3`` for an absolute threshold, ``>= 0.234 (2 x area_share)`` for a relative one."""
    rule = result["threshold_rule"]
    if rule is None:
        return "-"
    sign, rest = rule.split(" ", 1)
    if result["threshold"] is None or not any(char.isalpha() for char in rest):
        return rule
    return f"{sign} {result['threshold']:.3f} ({rest})"
