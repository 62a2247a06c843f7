"""The release manager's evidence: Allure results with PNG figures, the manifest, JUnit
properties, and the one-file sign-off report opened in headless Chromium."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser import (
    attachment_images,
    attachment_names,
    case_page,
    dump_dom,
    find_chromium,
    page_text,
)
from gate_runner import GateRun, fast_thresholds, run_gate

from xaigate.allure_results import CATEGORIES_FILE, read_properties, title, write_session_files
from xaigate.cases import Case
from xaigate.evidence import is_png
from xaigate.manifest import update_manifest
from xaigate.signoff import build_signoff, external_references
from xaigate.verdict import file_digest

# ---- the pieces, without a gate run


def test_title_reads_as_a_sentence() -> None:
    case = Case("smile-cnn", "lime", "region_focus", "smile", "mouth")
    assert title(case) == "region_focus: smile-cnn explained by lime, class smile, region mouth"
    assert title(Case("m", "", "model_accuracy", "all", "")) == "model_accuracy: m"


def _provenance(model: str, digest: str) -> dict[str, Any]:
    return {
        "models": {model: {"artifact_sha256": digest, "card": f"models/{model}/model.yaml"}},
        "probes": {"path": "probes/smile", "sha256": "p" * 64},
        "thresholds": {"path": "thresholds.yaml", "sha256": "t" * 64},
        "explainers": {"lime": {"num_samples": 10}, "gradcam": {"batch_size": 4}},
        "seeds": {"root": 0},
        "libraries": {"torch": "2.13.0", "allure-pytest": "2.16.2"},
    }


def test_environment_of_two_gates_in_one_results_folder(tmp_path: Path) -> None:
    write_session_files(tmp_path, _provenance("smile-cnn", "a" * 64))
    write_session_files(tmp_path, _provenance("emotion-cnn", "b" * 64))
    entries = read_properties(tmp_path / "environment.properties")
    assert entries["model.smile-cnn.sha256"] == "a" * 64
    assert entries["model.emotion-cnn.sha256"] == "b" * 64
    assert entries["probes.probes/smile.sha256"] == "p" * 64 and entries["seed.root"] == "0"
    assert entries["library.torch"] == "2.13.0"
    categories = json.loads((tmp_path / CATEGORIES_FILE).read_text())
    assert [c["matchedStatuses"] for c in categories] == [["failed"], ["broken"]]


def _allure_result(folder: Path, name: str, model: str, story: str, figure: bytes) -> None:
    source = f"{name}-attachment.png"
    (folder / source).write_bytes(figure)
    labels = [{"name": "epic", "value": model}, {"name": "story", "value": story}]
    attachment = {"name": f"heatmap worst: {name}", "source": source, "type": "image/png"}
    content = {"name": name, "labels": labels, "attachments": [attachment]}
    (folder / f"{name}-result.json").write_text(json.dumps(content))


def test_manifest_lists_each_explainers_files_per_model(tmp_path: Path) -> None:
    results = tmp_path / "allure-results"
    results.mkdir()
    _allure_result(results, "case-a", "smile-cnn", "lime", b"one")
    _allure_result(results, "case-b", "smile-cnn", "none", b"two")
    _allure_result(results, "case-c", "emotion-cnn", "lime", b"three")
    path = tmp_path / "manifest.json"
    update_manifest(path, _provenance("smile-cnn", "a" * 64), results)
    content = update_manifest(path, _provenance("emotion-cnn", "b" * 64), results)
    assert json.loads(path.read_text()) == content
    smile = content["models"]["smile-cnn"]
    assert smile["artifact_sha256"] == "a" * 64 and smile["probes"]["sha256"] == "p" * 64
    assert smile["explainers"]["lime"]["config"] == {"num_samples": 10}
    [lime_file] = smile["explainers"]["lime"]["files"]
    assert lime_file["case"] == "case-a" and lime_file["sha256"] == file_digest(
        results / "case-a-attachment.png"
    )
    assert smile["explainers"]["gradcam"]["files"] == []
    assert [f["case"] for f in smile["files_without_explainer"]] == ["case-b"]
    emotion = content["models"]["emotion-cnn"]
    assert [f["case"] for f in emotion["explainers"]["lime"]["files"]] == ["case-c"]
    assert smile["libraries"]["allure-pytest"] == "2.16.2" and "T" in content["updated"]


def test_external_references_are_found_and_inline_data_is_not() -> None:
    page = (
        '<script src="data:text/javascript;base64,AA=="></script>'
        '<img src="data:image/png;base64,AA==">'
        '<script async src="https://www.googletagmanager.com/gtag/js"></script>'
        "<link rel=stylesheet href=//cdn.example.org/x.css>"
        '<a href="https://allurereport.org">a link is not loaded</a>'
    )
    found = external_references(page)
    assert len(found) == 2 and "googletagmanager" in found[0] and "cdn.example" in found[1]


# ---- one gate run of the planted-shortcut model, with its evidence


@dataclass
class ShortcutReport:
    run: GateRun
    allure: Path
    junit: Path
    manifest: Path
    folder: Path

    def result_files(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.allure.glob("*-result.json"))]

    def allure_result(self, name: str) -> dict[str, Any]:
        [found] = [result for result in self.result_files() if result["name"] == name]
        return found


FAILING = Case("corner-marker-s0", "gradcam", "region_focus", "smile", "mouth")


@pytest.fixture(scope="module")
def shortcut_report(
    tmp_path_factory: pytest.TempPathFactory, marker_probes: Path, shortcut_card: Path
) -> ShortcutReport:
    """Grad-CAM and the precondition on the planted-shortcut model: region focus fails."""
    folder = tmp_path_factory.mktemp("report")
    allure, junit = folder / "allure-results", folder / "junit.xml"
    run = run_gate(
        folder,
        "--probes",
        marker_probes,
        "--model",
        shortcut_card,
        "--thresholds",
        fast_thresholds(folder),
        "-k",
        "gradcam or model_accuracy",
        f"--alluredir={allure}",
        f"--junitxml={junit}",
        "--manifest",
        folder / "manifest.json",
    )
    assert run.returncode == 1, run.output
    return ShortcutReport(run, allure, junit, folder / "manifest.json", folder)


@pytest.mark.slow
def test_every_attachment_is_a_png_that_decodes(shortcut_report: ShortcutReport) -> None:
    figures = [
        attachment
        for result in shortcut_report.result_files()
        for attachment in result.get("attachments", [])
        if attachment["type"] == "image/png"
    ]
    assert len(figures) >= 10, "heatmaps, grids and the confusion matrix"
    for attachment in figures:
        data = (shortcut_report.allure / attachment["source"]).read_bytes()
        assert is_png(data), attachment["name"]


@pytest.mark.slow
def test_failing_case_carries_labels_metrics_and_its_overlay(
    shortcut_report: ShortcutReport,
) -> None:
    [gated] = shortcut_report.run.results(check="region_focus", explainer="gradcam", target="smile")
    assert gated["status"] == "failed"
    result = shortcut_report.allure_result(title(FAILING))
    assert result["status"] == "failed"
    labels = {label["name"]: label["value"] for label in result["labels"]}
    assert labels["epic"] == "corner-marker-s0" and labels["feature"] == "localisation"
    assert labels["story"] == "gradcam" and labels["severity"] == "critical"
    attachments = {attachment["name"]: attachment for attachment in result["attachments"]}
    metrics = json.loads((shortcut_report.allure / attachments["metrics"]["source"]).read_text())
    assert metrics == gated  # the attached table is the verdict's own result
    [worst] = [name for name in attachments if name.startswith("heatmap worst: ")]
    assert is_png((shortcut_report.allure / attachments[worst]["source"]).read_bytes())
    assert any(name.startswith("heatmap best: ") for name in attachments)
    accuracy = shortcut_report.allure_result("model_accuracy: corner-marker-s0")
    assert {label["value"] for label in accuracy["labels"] if label["name"] == "severity"} == {
        "blocker"
    }
    assert [a["name"] for a in accuracy["attachments"]] == ["metrics", "confusion matrix"]


@pytest.mark.slow
def test_environment_manifest_and_junit_carry_the_provenance(
    shortcut_report: ShortcutReport,
) -> None:
    verdict = shortcut_report.run.verdict
    assert verdict is not None
    digest = verdict["provenance"]["models"]["corner-marker-s0"]["artifact_sha256"]
    environment = read_properties(shortcut_report.allure / "environment.properties")
    assert environment["model.corner-marker-s0.sha256"] == digest
    assert (shortcut_report.allure / CATEGORIES_FILE).exists()

    manifest = json.loads(shortcut_report.manifest.read_text())
    entry = manifest["models"]["corner-marker-s0"]
    assert entry["artifact_sha256"] == digest
    assert entry["probes"]["sha256"] == verdict["provenance"]["probes"]["sha256"]
    files = entry["explainers"]["gradcam"]["files"]
    assert files and all(file_digest(Path(f["file"])) == f["sha256"] for f in files)
    assert entry["explainers"]["lime"]["files"] == []  # -k left LIME out
    assert sorted(f["name"] for f in entry["files_without_explainer"]) == [
        "confusion matrix",
        "metrics",
    ]

    [gated] = shortcut_report.run.results(check="region_focus", explainer="gradcam", target="smile")
    root = ElementTree.parse(shortcut_report.junit).getroot()
    [case] = [c for c in root.iter("testcase") if "gradcam-smile-mouth" in c.get("name", "")]
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["xaigate.status"] == "failed"
    assert float(properties["xaigate.value"]) == gated["value"]
    assert float(properties["xaigate.threshold"]) == gated["threshold"]
    assert case.find("failure") is not None


@pytest.mark.slow
def test_signoff_report_opens_and_shows_the_failing_case_with_its_heatmap(
    shortcut_report: ShortcutReport, tmp_path: Path
) -> None:
    browser = find_chromium()
    report = build_signoff(shortcut_report.allure, shortcut_report.folder / "signoff")
    assert [p.suffix for p in report.parent.glob("*.html")] == [".html"]  # one HTML file
    profile = tmp_path / "chromium-profile"

    overview = page_text(dump_dom(browser, report, "", profile))
    assert "xaigate sign-off" in overview and "Overview" in overview
    assert "Categories" in overview and "Environment" in overview

    case_id, page = case_page(browser, report, title(FAILING), profile)
    text = page_text(page)
    assert title(FAILING) in text and "Failed" in text and "Severity: critical" in text
    rows = attachment_names(page)
    heatmaps = [uid for uid, name in rows if name.startswith("heatmap worst: ")]
    assert heatmaps, f"no heatmap row among {[name for _, name in rows]}"

    images = attachment_images(browser, report, case_id, heatmaps[0], profile)
    assert images, "the heatmap is not shown as an image"
    assert is_png(images[0])
