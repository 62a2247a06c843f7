"""Keras and ONNX models gated end to end, as users run the gate (`pytest suites` in a fresh
process), and the promise that a PyTorch gate never loads TensorFlow or onnxruntime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gate_runner import ROOT, assert_corner_marker_caught, fast_thresholds, run_gate

pytestmark = pytest.mark.slow
KERAS_REFERENCE = ROOT / "models" / "smile-keras" / "model.yaml"
KERAS_CORNER_MARKER = ROOT / "models" / "zoo-keras" / "corner-marker" / "model.yaml"
ONNX_REFERENCE = ROOT / "models" / "smile-onnx" / "model.yaml"
ONE_THREAD = {"XAIGATE_TF_THREADS": "1", "OMP_NUM_THREADS": "1"}
# The zoo's corner-marker entry, for the Keras twin: the checks aimed at its flaw.
AIMED = ("region_focus", "border_dominance", "border_swap_flip_rate")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ONE_THREAD.items():
        monkeypatch.setenv(name, value)


def test_torch_gate_never_imports_tensorflow_or_onnxruntime(
    tmp_path: Path, smile_probes: Path
) -> None:
    script = (
        "import json, sys, pytest\n"
        f"code = pytest.main(['suites', '-q', '-p', 'no:cacheprovider', '--probes', "
        f"{str(smile_probes)!r}, '--thresholds', {str(fast_thresholds(tmp_path))!r}, "
        f"'--gate-json', {str(tmp_path / 'gate.json')!r}, '--no-cache'])\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras', 'onnxruntime') if m in sys.modules)\n"
        "print('LOADED=' + json.dumps({'code': int(code), 'loaded': loaded}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        timeout=1800,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("LOADED=")]
    assert lines, done.stdout + done.stderr
    outcome = json.loads(lines[-1].removeprefix("LOADED="))
    assert outcome["code"] == 0, done.stdout
    assert outcome["loaded"] == [], outcome


def test_keras_reference_passes_the_gate(tmp_path: Path, smile_probes: Path) -> None:
    thresholds = fast_thresholds(tmp_path)
    run = run_gate(
        tmp_path, "--probes", smile_probes, "--model", KERAS_REFERENCE, "--thresholds", thresholds
    )
    assert run.returncode == 0, run.output
    assert run.verdict is not None and run.verdict["passed"] is True
    gradcam = run.results(check="region_focus", explainer="gradcam")
    assert gradcam and all(result["status"] == "passed" for result in gradcam)
    assert run.verdict["provenance"]["models"]["smile-keras"]["framework"] == "keras"


def test_onnx_export_passes_with_gradient_explainers_not_applicable(
    tmp_path: Path, smile_probes: Path
) -> None:
    run = run_gate(
        tmp_path,
        "--probes",
        smile_probes,
        "--model",
        ONNX_REFERENCE,
        "--thresholds",
        fast_thresholds(tmp_path),
    )
    assert run.returncode == 0, run.output
    assert run.verdict is not None and run.verdict["passed"] is True
    gradcam = run.results(explainer="gradcam")
    assert gradcam and all(result["status"] == "not_applicable" for result in gradcam)
    assert all("black boxes" in result["message"] for result in gradcam)
    lime = run.results(explainer="lime")
    contrast = [result for result in lime if result["check"] == "class_contrast"]
    assert [result["status"] for result in contrast] == ["not_applicable"]  # p and 1 - p
    assert all(result["status"] == "passed" for result in lime if result not in contrast)


def test_keras_corner_marker_fails_its_aimed_checks_and_the_reference_passes(
    tmp_path: Path, marker_probes: Path
) -> None:
    thresholds = fast_thresholds(tmp_path)
    flawed = run_gate(
        tmp_path,
        "--probes",
        marker_probes,
        "--model",
        KERAS_CORNER_MARKER,
        "--thresholds",
        thresholds,
    )
    assert_corner_marker_caught(flawed)

    reference = run_gate(
        tmp_path, "--probes", marker_probes, "--model", KERAS_REFERENCE, "--thresholds", thresholds
    )
    assert reference.returncode == 0, reference.output
    assert reference.verdict is not None and reference.verdict["passed"] is True
