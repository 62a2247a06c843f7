"""The machine-readable verdict (gate.json), its provenance, and the terminal table."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from xaigate.context import GateContext
from xaigate.gate import Gate, Result

LIBRARIES = ("xaigate", "numpy", "torch", "captum", "lime", "shap", "scikit-image", "pydantic")


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
    return {
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
    }


def verdict(
    gate: Gate | None, *, session_ok: bool, errors: list[str], context_info: dict[str, Any]
) -> dict[str, Any]:
    """gate.json's content: passed only when every result passed and the session ran clean."""
    results = [] if gate is None else sorted(gate.results.values(), key=lambda r: r.id)
    missing = [] if gate is None else gate.missing()
    passed = session_ok and not errors and gate is not None and gate.passed
    return {
        "passed": passed,
        "complete": gate is not None and not missing,
        "summary": _summary(results),
        "configured": 0 if gate is None else len(gate.configured),
        "not_run": missing,
        "results": [result.to_json() for result in results],
        "errors": errors,
        # Apart from the values: timings differ from run to run, the values must not.
        "timings": {result.id: round(result.seconds, 3) for result in results},
        "provenance": context_info,
    }


def _summary(results: list[Result]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


def write_json_atomic(path: Path, content: dict[str, Any]) -> None:
    """Write through a temporary file and rename, so a reader never sees half a verdict."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(content, stream, indent=2, sort_keys=False)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def table(results: list[Result]) -> str:
    """A fixed-width verdict table for the terminal."""
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
    for result in sorted(results, key=lambda r: (r.case.model, r.case.check, r.id)):
        case = result.case
        threshold = "-" if result.threshold is None else str(result.threshold)
        rows.append(
            (
                result.status.upper().replace("_", " "),
                case.check,
                case.model,
                case.explainer,
                f"{case.target}/{case.region}",
                "-" if result.value is None else f"{result.value:.3f}",
                "-" if result.bound is None else f"{result.bound:.3f}",
                threshold,
                str(result.n),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
