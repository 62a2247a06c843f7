"""reports/manifest.json: which files each explainer produced, from which inputs.

Per gated model: its artifact and probe digests, the thresholds file, library versions, when it
was gated, and per explainer its configuration and the evidence files (Allure attachments, with
their SHA-256) of its cases. Built from the Allure results folder, which holds what every
xdist worker attached; a later gate of another model adds its entry beside the earlier ones.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xaigate.allure_results import NO_EXPLAINER
from xaigate.verdict import file_digest, write_json_atomic


def _label(result: dict[str, Any], name: str) -> str | None:
    return next(
        (label["value"] for label in result.get("labels", []) if label["name"] == name), None
    )


def attachments(results_dir: Path | None, model: str) -> dict[str, list[dict[str, str]]]:
    """explainer -> the attachments of its cases on `model` ("none": cases without one)."""
    found: dict[str, list[dict[str, str]]] = {}
    if results_dir is None or not results_dir.is_dir():
        return found
    for path in sorted(results_dir.glob("*-result.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        if _label(result, "epic") != model:
            continue
        explainer = _label(result, "story") or NO_EXPLAINER
        for attachment in result.get("attachments", []):
            source = results_dir / attachment["source"]
            found.setdefault(explainer, []).append(
                {
                    "case": result.get("name", ""),
                    "name": attachment.get("name", ""),
                    "file": str(source),
                    "type": attachment.get("type", ""),
                    "sha256": file_digest(source) if source.exists() else "missing",
                }
            )
    for files in found.values():
        files.sort(key=lambda entry: (entry["case"], entry["name"]))
    return found


def model_entries(
    provenance: dict[str, Any], results_dir: Path | None, gated_at: str
) -> dict[str, dict[str, Any]]:
    """One manifest entry per model of a gate run, from gate.json's provenance."""
    entries = {}
    for name, model in provenance.get("models", {}).items():
        files = attachments(results_dir, name)
        explainers = {
            explainer: {"config": config, "files": files.get(explainer, [])}
            for explainer, config in provenance.get("explainers", {}).items()
        }
        entries[name] = {
            "gated_at": gated_at,
            "card": model.get("card"),
            "artifact_sha256": model.get("artifact_sha256"),
            "probes": provenance.get("probes", {}),
            "thresholds": provenance.get("thresholds", {}),
            "seeds": provenance.get("seeds", {}),
            "libraries": provenance.get("libraries", {}),
            "explainers": explainers,
            "files_without_explainer": files.get(NO_EXPLAINER, []),
        }
    return entries


def update_manifest(
    path: Path,
    provenance: dict[str, Any],
    results_dir: Path | None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Add (or replace) this run's models in the manifest at `path`, written atomically."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    content: dict[str, Any] = {"updated": stamp, "models": {}}
    if path.exists():
        try:
            content["models"] = json.loads(path.read_text(encoding="utf-8"))["models"]
        except (json.JSONDecodeError, KeyError, TypeError):
            content["models"] = {}  # an unreadable manifest is rebuilt, not half-trusted
    content["models"].update(model_entries(provenance, results_dir, stamp))
    content["allure_results"] = None if results_dir is None else str(results_dir)
    write_json_atomic(path, content)
    return content
