"""Merging the verdicts of shards or workers into one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xaigate.errors import UsageError
from xaigate.merge import main, merge_verdicts
from xaigate.verdict import assemble

CASES = ["region_focus[m-lime-a-mouth]", "region_focus[m-lime-b-mouth]", "model_accuracy[m-all]"]
PROVENANCE = {
    "models": {"m": {"artifact_sha256": "abc"}},
    "probes": {"sha256": "p1"},
    "thresholds": {"sha256": "t1"},
}


def result(case: str, passed: bool = True, value: float = 0.9) -> dict[str, Any]:
    return {
        "id": case,
        "model": "m",
        "check": case.split("[")[0],
        "explainer": "lime",
        "target": "a",
        "region": "mouth",
        "status": "passed" if passed else "failed",
        "passed": passed,
        "value": value,
        "bound": value - 0.1,
        "threshold": 0.5,
        "threshold_rule": ">= 0.5",
        "n": 10,
        "per_image": {},
    }


def part(*results: dict[str, Any], session_ok: bool = True, **provenance: Any) -> dict[str, Any]:
    return assemble(
        configured=CASES,
        results=list(results),
        timings={r["id"]: 1.0 for r in results},
        session_ok=session_ok,
        errors=[],
        context_info={**PROVENANCE, **provenance},
    )


def test_disjoint_parts_that_cover_every_case_pass() -> None:
    merged = merge_verdicts(
        [part(result(CASES[0]), result(CASES[2])), part(result(CASES[1]))], ["one", "two"]
    )
    assert merged["passed"] is True and merged["complete"] is True
    assert [r["id"] for r in merged["results"]] == sorted(CASES)
    assert merged["provenance"]["merged_from"] == ["one", "two"]


def test_a_missing_case_a_failed_case_or_a_failed_session_is_not_a_pass() -> None:
    incomplete = merge_verdicts([part(result(CASES[0])), part(result(CASES[1]))], ["a", "b"])
    assert incomplete["passed"] is False and incomplete["not_run"] == [CASES[2]]
    failed = merge_verdicts(
        [part(result(CASES[0]), result(CASES[2])), part(result(CASES[1], passed=False))],
        ["a", "b"],
    )
    assert failed["passed"] is False and failed["complete"] is True
    crashed = merge_verdicts(
        [part(result(CASES[0]), result(CASES[2])), part(result(CASES[1]), session_ok=False)],
        ["a", "b"],
    )
    assert crashed["passed"] is False


def test_parts_of_other_inputs_or_with_conflicting_results_are_refused() -> None:
    with pytest.raises(UsageError, match="b: gated other models, probes or thresholds than a"):
        merge_verdicts([part(result(CASES[0])), part(probes={"sha256": "p2"})], ["a", "b"])
    with pytest.raises(UsageError, match=r"b: region_focus\[m-lime-a-mouth\] differs"):
        merge_verdicts(
            [part(result(CASES[0], value=0.9)), part(result(CASES[0], value=0.8))], ["a", "b"]
        )


def test_the_placeholder_of_a_run_that_never_opened_fails_the_merge() -> None:
    never = assemble(
        configured=None,
        results=[],
        timings={},
        session_ok=False,
        errors=["thresholds.yaml:3: seed: unknown key"],
        context_info={},
    )
    merged = merge_verdicts([part(*(result(case) for case in CASES)), never], ["a", "b"])
    assert merged["passed"] is False
    assert merged["errors"] == ["b: thresholds.yaml:3: seed: unknown key"]


def test_time_in_the_models_and_cache_use_add_up_over_parts() -> None:
    cache = {"root": "/c", "hits": 2, "misses": 3}
    first = part(result(CASES[0]), model_seconds=1.5, explanation_cache=cache)
    second = part(result(CASES[1]), result(CASES[2]), model_seconds=2.0, explanation_cache=cache)
    provenance = merge_verdicts([first, second], ["a", "b"])["provenance"]
    assert provenance["model_seconds"] == 3.5
    assert provenance["explanation_cache"] == {"root": "/c", "hits": 4, "misses": 6}
    disabled = part(result(CASES[0]), explanation_cache="disabled")
    merged = merge_verdicts([disabled, disabled], ["a", "b"])
    assert merged["provenance"]["explanation_cache"] == "disabled"


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    first.write_text(json.dumps(part(result(CASES[0]), result(CASES[2]))))
    second.write_text(json.dumps(part(result(CASES[1]))))
    out = tmp_path / "gate.json"
    assert main([str(first), str(second), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["passed"] is True
    assert "gate PASSED" in capsys.readouterr().out
    assert main([str(first), "--out", str(out)]) == 1
    (tmp_path / "bad.json").write_text("{not json")
    assert main([str(tmp_path / "bad.json"), "--out", str(out)]) == 4
    assert f"{tmp_path / 'bad.json'}:1: not a JSON verdict" in capsys.readouterr().err
    assert main([str(tmp_path / "absent.json"), "--out", str(out)]) == 4


def test_merging_and_ci_outputs_do_not_load_the_model_libraries() -> None:
    """`make gate` runs them after every gate: loading torch would cost each call seconds."""
    import subprocess
    import sys

    probe = (
        "import sys, xaigate.merge, xaigate.ci_outputs; "
        "print(sorted(m for m in ('torch', 'captum', 'shap', 'lime', 'scipy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr
