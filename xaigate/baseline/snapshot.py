"""Baseline snapshots: the released model's metrics and maps, stored so that a candidate can be
compared with them without the released model's artifact.

    <folder>/snapshot.json   manifest: model, probe-set and settings digests, per-image metrics
    <folder>/maps.npz        the maps drift compares with (loaded with allow_pickle=False)

`--update-baseline <folder>` writes one; an existing snapshot is replaced only with
`--overwrite-baseline`. `--baseline <folder>` compares with it, and refuses a snapshot made on
other probes, with other explainer parameters, seed, regions or check parameters, or whose maps
file is not the one its manifest names. Maps are compared with the explicit tolerances of
thresholds.yaml's `baseline.tolerance`: within them a map has not drifted at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xaigate.baseline.source import SNAPSHOT_FILE, BaselineSource, check_compatible, snapshot_key
from xaigate.errors import UsageError
from xaigate.probes import Probe
from xaigate.thresholds import Thresholds

if TYPE_CHECKING:
    from xaigate.cases import Case
    from xaigate.checks.registry import CheckSpec
    from xaigate.context import GateContext
    from xaigate.gate import Gate

SNAPSHOT_FORMAT = 1
MAPS_FILE = "maps.npz"
KEY_JOIN = "::"


def map_key(explainer: str, class_: str, probe_id: str) -> str:
    return KEY_JOIN.join((explainer, class_, probe_id))


def settings(thresholds: Thresholds, checks: Sequence[str]) -> dict[str, Any]:
    """What shapes the stored figures besides the model and the probes."""
    return {
        "seed": thresholds.seed,
        "border_width": thresholds.schema.border_width,
        "regions": thresholds.regions,
        "explainers": {
            name: config.model_dump(mode="json") for name, config in thresholds.explainers.items()
        },
        "params": {check: thresholds.params(check).model_dump(mode="json") for check in checks},
    }


def _json_values(values: dict[str, float]) -> dict[str, float | None]:
    # JSON has no NaN: an undefined value is stored as null and read back as NaN.
    return {key: value if math.isfinite(value) else None for key, value in values.items()}


def refuse_overwrite(folder: Path, overwrite: bool) -> None:
    """Stop before any work when `folder` holds a snapshot and replacing it was not asked for."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--update-baseline {folder}: not a folder")
    if (folder / SNAPSHOT_FILE).exists() and not overwrite:
        raise UsageError(
            f"--update-baseline {folder}: a snapshot is already there; pass "
            "--overwrite-baseline to replace it"
        )


def write_snapshot(gate: Gate, folder: Path, *, overwrite: bool = False) -> Path:
    """Measure the gated (released) model's max_regression checks and store its drift maps;
    returns the manifest's path. Both are prepared in memory first; then the maps file is
    written and the manifest, which names its digest, last: a reader never pairs a manifest
    with other maps, and a failure while preparing leaves an existing snapshot as it was."""
    from xaigate.verdict import file_digest, library_versions, write_bytes_atomic

    folder = Path(folder)
    refuse_overwrite(folder, overwrite)
    context = gate.context
    thresholds = context.thresholds
    if len(context.models) != 1:
        raise UsageError(
            f"--update-baseline {folder}: snapshots one --model, not {len(context.models)}"
        )
    ((name, model),) = context.models.items()
    metrics: dict[str, dict[str, Any]] = {}
    for check in thresholds.max_regressions:
        for case in gate.cases(check):
            if not case.not_applicable:
                values = gate.checks[check].measure(context, case).values
                metrics[snapshot_key(case)] = {"check": check, "per_image": _json_values(values)}
    maps: dict[str, np.ndarray] = {}
    for check in thresholds.baseline_checks:
        images = thresholds.params(check).images
        for case in gate.list_cases(check):
            if case.not_applicable:
                continue
            probes = context.probes_of_class(name, case.target)[:images]
            explained = context.explanations(name, case.explainer, probes, case.target)
            for probe, explanation in zip(probes, explained, strict=True):
                maps[map_key(case.explainer, case.target, probe.id)] = explanation.attribution
    if not metrics and not maps:
        raise UsageError(
            f"--update-baseline {folder}: {thresholds.path} sets no max_regression and no "
            "baseline checks: nothing to store"
        )
    buffer = io.BytesIO()
    np.savez(buffer, **dict(sorted(maps.items())))
    maps_bytes = buffer.getvalue()
    checks = [*thresholds.max_regressions, *thresholds.baseline_checks]
    manifest = {
        "format": SNAPSHOT_FORMAT,
        "model": {
            "name": name,
            "card": str(model.card.path),
            "artifact_sha256": model.digest,
            "classes": list(model.classes),
            "input_size": list(model.input_size),
        },
        "probes": {"path": str(context.probe_set.root), "sha256": context.probe_set.digest},
        "thresholds": {"path": str(thresholds.path), "sha256": file_digest(thresholds.path)},
        "settings": settings(thresholds, checks),
        "libraries": library_versions(),
        "metrics": metrics,
        "maps": {
            "file": MAPS_FILE,
            "sha256": hashlib.sha256(maps_bytes).hexdigest(),
            "count": len(maps),
        },
    }
    text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"  # fails before any write
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / MAPS_FILE, maps_bytes)
    path = folder / SNAPSHOT_FILE
    write_bytes_atomic(path, text.encode("utf-8"))
    return path


class SnapshotBaseline(BaselineSource):
    """A stored snapshot, checked against the candidate's gate on opening."""

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        maps: dict[str, np.ndarray],
        context: GateContext,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.stored_maps = maps
        self.context = context

    def values(self, spec: CheckSpec, case: Case) -> dict[str, float]:
        stored = self.manifest["metrics"][snapshot_key(case)]["per_image"]
        return {key: math.nan if value is None else float(value) for key, value in stored.items()}

    def _needed_maps(self, case: Case) -> list[tuple[str, Probe]]:
        images = self.context.thresholds.params(case.check).images
        probes = self.context.probes_of_class(case.model, case.target)[:images]
        return [(map_key(case.explainer, case.target, probe.id), probe) for probe in probes]

    def _map_problem(self, key: str, probe: Probe) -> str | None:
        """Why the stored map `key` cannot stand for `probe`'s map (None when it can)."""
        stored = self.stored_maps.get(key)
        if stored is None:
            return "missing"
        expected = probe.image.shape[:2]
        if stored.shape != expected or not np.issubdtype(stored.dtype, np.floating):
            return f"a {stored.dtype} map of shape {stored.shape}, expected float {expected}"
        if not np.all(np.isfinite(stored)):
            return "not finite"
        return None

    def maps(self, case: Case, probes: Sequence[Probe]) -> list[np.ndarray]:
        return [self.stored_maps[map_key(case.explainer, case.target, p.id)] for p in probes]

    def cannot_serve(self, case: Case, needs_maps: bool) -> str | None:
        if needs_maps:
            problems = [
                (key, problem)
                for key, probe in self._needed_maps(case)
                if (problem := self._map_problem(key, probe)) is not None
            ]
            what = (
                f"usable map {problems[0][0]} ({problems[0][1]}; {len(problems) - 1} more)"
                if problems
                else ""
            )
        else:
            key = snapshot_key(case)
            what = "" if key in self.manifest["metrics"] else f"values of {key}"
        if not what:
            return None
        return (
            f"{self.path / SNAPSHOT_FILE}: has no {what}; make it with these thresholds "
            "(--update-baseline --overwrite-baseline)"
        )

    def provenance(self) -> dict[str, Any]:
        return {
            "kind": "snapshot",
            "path": str(self.path),
            "sha256": hashlib.sha256((self.path / SNAPSHOT_FILE).read_bytes()).hexdigest(),
            "name": self.manifest["model"]["name"],
            "artifact_sha256": self.manifest["model"]["artifact_sha256"],
        }


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"--baseline {path.parent}: no {SNAPSHOT_FILE} (write one with --update-baseline)"
        ) from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not a snapshot manifest: {exc.msg}") from None
    if not isinstance(content, dict) or content.get("format") != SNAPSHOT_FORMAT:
        found = content.get("format") if isinstance(content, dict) else None
        raise UsageError(f"{path}: format: {found!r}, expected {SNAPSHOT_FORMAT}")
    for key in ("model", "probes", "settings", "metrics", "maps"):
        if key not in content:
            raise UsageError(f"{path}: {key}: missing")
        if not isinstance(content[key], dict):
            raise UsageError(f"{path}: {key}: expected an object, got {content[key]!r:.40}")
    for key, entry in content["metrics"].items():
        per_image = entry.get("per_image") if isinstance(entry, dict) else None
        if not isinstance(per_image, dict) or not all(
            value is None or (isinstance(value, int | float) and not isinstance(value, bool))
            for value in per_image.values()
        ):
            raise UsageError(f"{path}: metrics.{key}.per_image: expected probe id -> number")
    return content


def _first_difference(stored: Any, current: Any, where: str) -> str | None:
    """The dotted key of the first difference between two JSON values, with both values."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(set(stored) | set(current)):
            found = _first_difference(stored.get(key), current.get(key), f"{where}.{key}")
            if found:
                return found
        return None
    return None if stored == current else f"{where}: snapshot {stored!r}, here {current!r}"


def _check_settings(path: Path, manifest: dict[str, Any], thresholds: Thresholds) -> None:
    stored = manifest["settings"]
    checks = [*thresholds.max_regressions, *thresholds.baseline_checks]
    current = settings(thresholds, checks)
    # Explainers and checks this gate does not use now do not matter; the ones both have must
    # match exactly, or the stored figures answer another question.
    for key in ("seed", "border_width", "regions"):
        difference = _first_difference(stored.get(key), current[key], key)
        if difference:
            raise UsageError(f"{path}: made with other settings: {difference}")
    for section in ("explainers", "params"):
        for name, value in current[section].items():
            if name in stored.get(section, {}):
                found = _first_difference(stored[section][name], value, f"{section}.{name}")
                if found:
                    kind = "explainer parameters" if section == "explainers" else "check parameters"
                    raise UsageError(f"{path}: made with other {kind}: {found}")


def load_snapshot(folder: Path, candidate: GateContext) -> SnapshotBaseline:
    """The snapshot in `folder`, checked against the candidate's gate."""
    path = folder / SNAPSHOT_FILE
    manifest = _read_manifest(path)
    ((_, model),) = candidate.models.items()
    stored_model = manifest["model"]
    check_compatible(
        f"{path}: model {stored_model.get('name')!r}",
        stored_model.get("classes", []),
        stored_model.get("input_size", []),
        model,
    )
    probes = manifest["probes"]
    if probes.get("sha256") != candidate.probe_set.digest:
        raise UsageError(
            f"{path}: probes: made on {probes.get('path')} "
            f"(sha256 {str(probes.get('sha256'))[:12]}), "
            f"not on {candidate.probe_set.root} (sha256 {candidate.probe_set.digest[:12]})"
        )
    _check_settings(path, manifest, candidate.thresholds)
    maps_path = folder / str(manifest["maps"].get("file", MAPS_FILE))
    try:
        data = maps_path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: maps: {maps_path} is missing") from None
    if hashlib.sha256(data).hexdigest() != manifest["maps"].get("sha256"):
        raise UsageError(f"{maps_path}: not the maps file {path} names (sha256 differs)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            maps = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:  # e.g. an object array
        raise UsageError(f"{maps_path}: not a maps archive: {exc}") from None
    return SnapshotBaseline(folder, manifest, maps, candidate)
