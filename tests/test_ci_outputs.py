"""What CI shows: JUnit properties, the Markdown step summary, one JUnit file from several, and
the gate workflow's safety properties."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml
from gate_runner import ROOT

from xaigate import junit
from xaigate.ci_outputs import (
    STEP_SUMMARY,
    append_step_summary,
    junit_properties,
    markdown_summary,
)

FAILED = {
    "id": "region_focus[m-lime-smile-mouth]",
    "model": "m",
    "check": "region_focus",
    "explainer": "lime",
    "target": "smile",
    "region": "mouth",
    "status": "failed",
    "passed": False,
    "value": 0.21,
    "bound": 0.18,
    "threshold": 0.35,
    "threshold_rule": ">= 2.5 x area_share",
    "direction": "higher",
    "n": 20,
}
PASSED = {
    **FAILED,
    "id": "model_accuracy[m-all]",
    "check": "model_accuracy",
    "explainer": "",
    "target": "all",
    "region": "",
    "status": "passed",
    "passed": True,
    "value": 1.0,
    "bound": None,
    "threshold": 0.9,
    "threshold_rule": ">= 0.9",
}
VERDICT = {
    "passed": False,
    "complete": True,
    "summary": {"failed": 1, "passed": 1},
    "not_run": [],
    "errors": [],
    "results": [PASSED, FAILED],
}


def test_junit_properties_carry_value_threshold_and_rule() -> None:
    properties = dict(junit_properties(FAILED))
    assert properties["xaigate.id"] == FAILED["id"]
    assert properties["xaigate.value"] == "0.21" and properties["xaigate.threshold"] == "0.35"
    assert properties["xaigate.threshold_rule"] == ">= 2.5 x area_share"
    assert properties["xaigate.status"] == "failed" and properties["xaigate.n"] == "20"
    assert dict(junit_properties(PASSED))["xaigate.bound"] == ""  # present, empty


def test_markdown_summary_lists_failures_first_with_threshold() -> None:
    text = markdown_summary(VERDICT, title="reports/gate.json")
    lines = text.splitlines()
    assert lines[0] == "### xaigate: reports/gate.json: **FAILED**"
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| ---")]
    assert rows[0].startswith("| status | check |") and len(rows) == 3
    assert rows[1].startswith("| FAILED | region_focus | m | lime | smile/mouth | 0.210 | 0.180 |")
    assert ">= 0.350 (2.5 x area_share)" in rows[1]
    assert rows[2].startswith("| PASSED | model_accuracy | m | - | all | 1.000 | - | >= 0.9 |")
    incomplete = markdown_summary({**VERDICT, "complete": False, "not_run": ["x"]}, title="g")
    assert "incomplete: 1 configured cases not run" in incomplete.splitlines()[0]


def test_step_summary_is_appended_only_when_ci_sets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STEP_SUMMARY, raising=False)
    assert append_step_summary(VERDICT, title="g") is None
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv(STEP_SUMMARY, str(summary))
    assert append_step_summary(VERDICT, title="g") == summary
    assert summary.read_text().startswith("earlier step\n### xaigate: g: **FAILED**")


def _junit_file(path: Path, name: str, tests: int, failures: int) -> Path:
    path.write_text(
        f'<testsuites><testsuite name="pytest" tests="{tests}" failures="{failures}" '
        f'errors="0" skipped="0"><testcase name="{name}"/></testsuite></testsuites>'
    )
    return path


def test_junit_files_merge_into_one_with_summed_counters(tmp_path: Path) -> None:
    parts = [
        _junit_file(tmp_path / "smile-cases.xml", "a", 3, 1),
        _junit_file(tmp_path / "smile-latency.xml", "b", 2, 0),
    ]
    out = tmp_path / "junit.xml"
    assert junit.main([*map(str, parts), "--out", str(out)]) == 0
    root = ElementTree.parse(out).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "5" and root.get("failures") == "1"
    names = [suite.get("name") for suite in root.iter("testsuite")]
    assert names == ["pytest (smile-cases)", "pytest (smile-latency)"]
    (tmp_path / "broken.xml").write_text("<testsuites>")
    assert junit.main([str(tmp_path / "broken.xml"), "--out", str(out)]) == 4


def test_gate_workflow_is_safe_and_uploads_the_reports() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "gate.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert set(triggers) == {"pull_request"}, "pull_request only, never pull_request_target"
    assert "models/**" in triggers["pull_request"]["paths"]
    assert workflow["permissions"] == {"contents": "read"}
    steps = workflow["jobs"]["gate"]["steps"]
    uses = [step["uses"] for step in steps if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w-]+/[\w-]+@v\d+\.\d+\.\d+", use) for use in uses), uses
    scripts = "\n".join(step.get("run", "") for step in steps)
    assert "make gate" in scripts and "make report" in scripts
    assert "models/**/model.yaml" in scripts  # the changed model cards are gated too
    [upload] = [step for step in steps if step.get("uses", "").startswith("actions/upload-art")]
    uploaded = upload["with"]["path"]
    assert upload["if"] == "always()"
    for expected in ("reports/gate*.json", "reports/allure-results/", "reports/signoff/"):
        assert expected in uploaded
    # The job fails on a failed gate, after the reports are built and uploaded.
    last = steps[-1]
    assert (
        last["if"] == "always()" and 'test "${{ steps.gate.outputs.status }}" = "0"' in last["run"]
    )
    assert steps.index(upload) < len(steps) - 1


def test_state_lines_end_make_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from xaigate import ci_outputs

    failed, passed = tmp_path / "gate.json", tmp_path / "gate-emotion.json"
    failed.write_text(json.dumps(VERDICT))
    passed.write_text(json.dumps({**VERDICT, "passed": True, "results": [PASSED]}))
    assert ci_outputs.main([str(passed)]) == 0
    assert ci_outputs.main([str(failed), str(passed)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"{failed}: FAILED (1 failed, 1 passed): region_focus[m-lime-smile-mouth]"
    assert lines[2].startswith(f"{passed}: PASSED")
    assert ci_outputs.main([str(tmp_path / "absent.json")]) == 4
