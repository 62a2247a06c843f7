"""One verdict from several: the gate.json of each CI shard (`--shard i/N`), or of each
pytest-xdist worker, merged into the verdict of the whole run.

    python -m xaigate.merge reports/gate-1.json reports/gate-2.json --out reports/gate.json

The merged verdict passes only when the parts came from the same inputs (model, probe-set and
thresholds digests), every configured case ran in some part, every part's session ran clean,
and every result passed. Exit code 0 passed, 1 failed or incomplete, 4 unusable parts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xaigate.ci_outputs import append_step_summary
from xaigate.errors import UsageError
from xaigate.verdict import assemble, table, write_json_atomic


def inputs_of(provenance: dict[str, Any]) -> dict[str, Any]:
    """What must be equal across parts: which models, probes and thresholds were gated."""
    return {
        "models": {
            name: model.get("artifact_sha256")
            for name, model in provenance.get("models", {}).items()
        },
        "probes": provenance.get("probes", {}).get("sha256"),
        "thresholds": provenance.get("thresholds", {}).get("sha256"),
        "baseline": provenance.get("baseline"),
    }


def merge_verdicts(parts: Sequence[dict[str, Any]], sources: Sequence[str]) -> dict[str, Any]:
    """The verdict of the union of `parts` (gate.json contents), named by `sources` in errors."""
    if not parts:
        raise UsageError("merge: no verdicts to merge")
    first = inputs_of(parts[0].get("provenance", {}))
    configured: dict[str, None] = {}  # in first-seen order
    results: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    errors: list[str] = []
    for part, source in zip(parts, sources, strict=True):
        provenance = part.get("provenance", {})
        if provenance and inputs_of(provenance) != first:
            raise UsageError(
                f"{source}: gated other models, probes or thresholds than {sources[0]}"
            )
        configured.update(dict.fromkeys(part.get("configured_cases", [])))
        for result in part.get("results", []):
            earlier = results.get(result["id"])
            if earlier is not None and _values(earlier) != _values(result):
                raise UsageError(f"{source}: {result['id']} differs from another part's result")
            results[result["id"]] = result
        timings.update(part.get("timings", {}))
        errors.extend(f"{source}: {error}" for error in part.get("errors", []))
    provenance = dict(parts[0].get("provenance", {}))
    provenance["merged_from"] = list(sources)
    provenance.update(_work_done(parts))
    return assemble(
        configured=list(configured) if configured else None,
        results=list(results.values()),
        timings=timings,
        session_ok=all(part.get("session_ok", False) for part in parts),
        errors=errors,
        context_info=provenance,
    )


def _work_done(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What adds up over parts, each its own process: time inside the models and the counters
    of the explanation cache (left as the first part has it when that is "disabled")."""
    provenances = [part.get("provenance", {}) for part in parts]
    done: dict[str, Any] = {}
    if any("model_seconds" in provenance for provenance in provenances):
        done["model_seconds"] = round(sum(p.get("model_seconds", 0.0) for p in provenances), 3)
    first_cache = provenances[0].get("explanation_cache")
    if isinstance(first_cache, dict):
        total = dict(first_cache)
        for provenance in provenances[1:]:
            use = provenance.get("explanation_cache")
            for key, value in use.items() if isinstance(use, dict) else ():
                if isinstance(value, int) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
        done["explanation_cache"] = total
    return done


def _values(result: dict[str, Any]) -> tuple[Any, ...]:
    return (result["status"], result["value"], result["bound"], result["per_image"])


def _read(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such verdict file") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: not a JSON verdict: {exc.msg}") from None
    if not isinstance(content, dict) or "results" not in content:
        raise UsageError(f"{path}: not a gate.json verdict (no 'results')")
    return content


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xaigate.merge", description=__doc__.split("\n")[0]
    )
    parser.add_argument("parts", nargs="+", type=Path, help="gate.json of each shard or worker")
    parser.add_argument("--out", type=Path, required=True, help="where the merged verdict goes")
    args = parser.parse_args(argv)
    try:
        merged = merge_verdicts([_read(path) for path in args.parts], [str(p) for p in args.parts])
    except UsageError as exc:
        print(f"xaigate merge: {exc}", file=sys.stderr)
        return 4
    write_json_atomic(args.out, merged)
    append_step_summary(merged, title=str(args.out))
    print(table(merged["results"]))
    state = "PASSED" if merged["passed"] else "INCOMPLETE" if not merged["complete"] else "FAILED"
    print(f"\ngate {state}; merged verdict of {len(args.parts)} parts written to {args.out}")
    return 0 if merged["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
