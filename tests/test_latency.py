"""Latency: the median over rounds is judged against the budget; the latency suite times the
explainer itself with pytest-benchmark, writes its cases into gate.json, and refuses xdist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from gate_runner import ROOT, run_gate

from xaigate.cases import Case
from xaigate.latency import judge_latency
from xaigate.runtime import torch_threads

CASE = Case("m", "lime", "latency", "", "")


def test_median_seconds_per_image_is_judged_against_the_budget() -> None:
    # Rounds of 2 images: 0.4, 1.0 and 9.0 s per image; one slow round does not decide.
    result = judge_latency(CASE, [0.8, 2.0, 18.0], 2, budget=1.5)
    assert result.status == "passed" and result.value == 1.0 and result.n == 3
    assert result.per_image == {"round-1": 0.4, "round-2": 1.0, "round-3": 9.0}
    assert result.reference["slowest_round"] == 9.0
    assert "latency m lime: median 1.0000 s/image meets <= 1.5 (rounds=3" in result.message
    over = judge_latency(CASE, [4.0, 4.0, 0.1], 2, budget=1.5)
    assert over.status == "failed" and "exceeds <= 1.5" in over.message
    assert over.to_json()["id"] == "latency[m-lime]" and over.to_json()["threshold"] == 1.5
    with pytest.raises(ValueError, match="no timed round"):
        judge_latency(CASE, [], 2, budget=1.0)


def test_timed_calls_run_on_the_configured_threads_and_give_the_pool_back() -> None:
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("an explainer failed")
    assert torch.get_num_threads() == before


@pytest.fixture
def latency_thresholds(tmp_path: Path) -> Path:
    """Grad-CAM on the precondition and latency only: a serial gate of a few seconds."""
    shipped = yaml.safe_load((ROOT / "thresholds.yaml").read_text())
    shipped["explainers"] = {"gradcam": shipped["explainers"]["gradcam"]}
    shipped["checks"] = {"model_accuracy": shipped["checks"]["model_accuracy"]}
    # A budget no machine misses: this test is about the wiring, not about speed.
    shipped["latency"] = {"rounds": 2, "images": 2, "budgets": {"gradcam": 1000.0}}
    path = tmp_path / "thresholds-latency.yaml"
    path.write_text(yaml.safe_dump(shipped, sort_keys=False))
    return path


@pytest.mark.slow
def test_latency_cases_are_timed_by_pytest_benchmark_into_gate_json(
    tmp_path: Path, smile_probes: Path, latency_thresholds: Path
) -> None:
    benchmark_json = tmp_path / "benchmark.json"
    given = ("--probes", smile_probes, "--thresholds", latency_thresholds)
    run = run_gate(tmp_path, *given, "--benchmark-json", benchmark_json)
    assert run.returncode == 0, run.output
    assert run.verdict is not None and run.verdict["passed"] is True, run.output
    [result] = run.results(check="latency")
    assert result["id"] == "latency[smile-cnn-gradcam]" and result["status"] == "passed"
    assert result["n"] == 2 and 0 < result["value"] < 1000.0 and result["threshold"] == 1000.0
    [benchmark] = json.loads(benchmark_json.read_text())["benchmarks"]
    assert benchmark["stats"]["rounds"] == 2
    info = benchmark["extra_info"]
    assert info["model"] == "smile-cnn" and info["explainer"] == "gradcam"
    assert info["image_size"] == [64, 64] and info["batch_size"] == 2
    assert info["torch_threads"] == 1
    # The judged median is the benchmark's median over its rounds, per image (gate.json rounds
    # to 6 decimals).
    assert result["value"] == pytest.approx(benchmark["stats"]["median"] / 2, abs=1e-6)

    # Under xdist the suite refuses with a usage error; left out, the verdict says what is missing.
    refused = run_gate(tmp_path, *given, "-n", "2")
    assert refused.returncode == 4, refused.output
    assert "suites/test_latency.py cannot run under pytest-xdist (-n)" in refused.output
    assert "--ignore=suites/test_latency.py" in refused.output
    parallel = run_gate(tmp_path, *given, "-n", "2", "--ignore=suites/test_latency.py")
    assert parallel.returncode == 0, parallel.output
    assert parallel.verdict is not None and parallel.verdict["complete"] is False
    assert parallel.verdict["not_run"] == ["latency[smile-cnn-gradcam]"]


def test_every_timed_round_explains_with_a_fresh_explainer() -> None:
    """LIME remembers the model's outputs on an image's samples; a round that reused them would
    time a memo. Each round (and the warm-up) must make all of its model passes again."""
    import numpy as np

    from xaigate.explainers.lime_explainer import LimeConfig, LimeExplainer
    from xaigate.latency import LatencyInputs, fresh_rounds
    from xaigate.models.card import load_card
    from xaigate.models.loading import load_model

    class CountingModel:
        def __init__(self) -> None:
            self.model = load_model(load_card(ROOT / "models/smile-cnn/model.yaml"))
            self.digest, self.card, self.images = self.model.digest, self.model.card, 0

        def predict_proba(self, images: np.ndarray) -> np.ndarray:
            self.images += len(images)
            return self.model.predict_proba(images)

    model, explainer = CountingModel(), LimeExplainer(LimeConfig(num_samples=50))
    images = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    inputs = LatencyInputs(images, np.array([0, 1]), [3, 4])
    explain, setup = fresh_rounds(explainer, model, inputs)
    maps = []
    for _ in range(3):  # what pytest-benchmark's pedantic does with a setup: setup, then target
        args, kwargs = setup()
        maps.append(np.stack([e.attribution for e in explain(*args, **kwargs)]))
    assert model.images == 3 * 2 * 50
    assert np.array_equal(maps[0], maps[2])
