"""The merge gate against the released model, end to end (`pytest suites --baseline`): an
identical candidate, a fine-tuned copy that learned the corner-marker shortcut, a retrained good
model, and stored snapshots."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from browser import attachment_images, attachment_names, case_page, find_chromium, page_text
from gate_runner import (
    FINETUNED_CLEAN,
    FINETUNED_CORNER_MARKER,
    REFERENCE_CARD,
    RESEEDED_GOOD,
    ROOT,
    GateRun,
    baseline_thresholds,
    run_gate,
)

from xaigate.evidence import is_png
from xaigate.signoff import build_signoff

pytestmark = pytest.mark.slow
DRIFT = ("explanation_drift_rank", "explanation_drift_iou")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One thresholds file and one explanation cache for the module: the released model's maps
    are computed once."""
    folder = tmp_path_factory.mktemp("baseline")
    return {"thresholds": baseline_thresholds(folder), "cache": folder / "cache"}


def gate(tmp_path: Path, shared: dict[str, Path], *args: str | Path) -> GateRun:
    return run_gate(tmp_path, "--thresholds", shared["thresholds"], *args, cache=shared["cache"])


def copy_of_reference(folder: Path) -> Path:
    """The released model's weights under another name and path: the same model."""
    folder.mkdir()
    shutil.copy(REFERENCE_CARD.parent / "weights.pt", folder / "weights.pt")
    card = yaml.safe_load(REFERENCE_CARD.read_text())
    architecture = ROOT / "models" / "recipes" / "architectures.py"
    card.update(name="smile-cnn-copy", architecture=f"{architecture}:SmallCNN")
    path = folder / "model.yaml"
    path.write_text(yaml.safe_dump(card, sort_keys=False))
    return path


def drift_results(run: GateRun, explainer: str = "gradcam") -> list[dict]:
    return [r for r in run.results(explainer=explainer) if r["check"] in DRIFT]


def regression_results(run: GateRun) -> list[dict]:
    return [r for r in run.results() if "baseline" in r]


def assert_no_drift_and_no_regression(run: GateRun) -> None:
    assert run.returncode == 0, run.output
    assert run.verdict is not None and run.verdict["passed"] is True
    drift = drift_results(run)
    assert len(drift) == 4, "two drift checks, two classes"
    for result in drift:
        assert result["value"] == 1.0 and result["bound"] == 1.0, result
        assert set(result["per_image"].values()) == {1.0} and result["n"] == 20
        assert result["reference"]["identical_share"] == 1.0
    compared = regression_results(run)
    assert len(compared) == 1 + 3 * 2 * 2, "accuracy; three localisation checks x 2 x 2"
    for result in compared:
        baseline = result["baseline"]
        assert baseline["regression"] == 0.0 and baseline["p_value"] == 1.0, result
        assert baseline["value"] == result["value"] and baseline["regressed"] is False


def test_candidate_identical_to_the_baseline_passes_with_zero_drift(
    tmp_path: Path, shared: dict[str, Path], smile_probes: Path
) -> None:
    copy = copy_of_reference(tmp_path / "copy")
    run = gate(
        tmp_path, shared, "--model", copy, "--baseline", REFERENCE_CARD, "--probes", smile_probes
    )
    assert_no_drift_and_no_regression(run)
    provenance = run.verdict["provenance"]
    assert provenance["baseline"]["kind"] == "model"
    assert (
        provenance["baseline"]["artifact_sha256"]
        == provenance["models"]["smile-cnn-copy"]["artifact_sha256"]
    )
    # Readable ids: the drift case of one model, explainer and class.
    assert run.results(id="explanation_drift_rank[smile-cnn-copy-gradcam-smile]")
    # IG's drift is excluded by the shipped thresholds, with the reason.
    excluded = drift_results(run, "integrated_gradients")
    assert len(excluded) == 4, excluded
    for result in excluded:
        assert result["status"] == "not_applicable" and "independently seeded" in result["message"]


@dataclass
class CornerMarkerRun:
    run: GateRun
    allure: Path
    folder: Path


@pytest.fixture(scope="module")
def corner_marker(
    tmp_path_factory: pytest.TempPathFactory, shared: dict[str, Path], marker_probes: Path
) -> CornerMarkerRun:
    """smile-cnn fine-tuned into the corner-marker shortcut, against smile-cnn, on probes that
    carry the marker; with Allure evidence."""
    folder = tmp_path_factory.mktemp("corner-marker")
    allure = folder / "allure-results"
    run = gate(
        folder,
        shared,
        "--model",
        FINETUNED_CORNER_MARKER,
        "--baseline",
        REFERENCE_CARD,
        "--probes",
        marker_probes,
        f"--alluredir={allure}",
    )
    return CornerMarkerRun(run, allure, folder)


def test_finetuned_corner_marker_copy_fails_on_regression_and_drift(
    corner_marker: CornerMarkerRun,
) -> None:
    run = corner_marker.run
    assert run.returncode == 1, run.output
    assert run.verdict is not None and run.verdict["passed"] is False
    [accuracy] = run.results(check="model_accuracy")
    assert accuracy["passed"] and accuracy["baseline"]["regression"] <= 0.0
    for check in ("region_focus", "border_dominance", "background_dominance"):
        for explainer in ("gradcam", "integrated_gradients"):
            compared = run.results(check=check, explainer=explainer)
            assert len(compared) == 2, (check, explainer, compared)  # one case per class
            for result in compared:
                baseline = result["baseline"]
                assert baseline["regressed"] is True, result
                assert baseline["p_value"] < 1e-3 and baseline["paired"] == 20, baseline
                assert "against the baseline" in result["message"]
    drift = drift_results(run)
    assert len(drift) == 4, drift
    for result in drift:
        assert result["status"] == "failed", result
        assert result["reference"]["identical_share"] == 0.0
    [iou] = run.results(check="explanation_drift_iou", explainer="gradcam", target="smile")
    assert iou["value"] < 0.2, iou


@pytest.mark.parametrize(
    "card", [RESEEDED_GOOD, FINETUNED_CLEAN], ids=["reseeded-good-cnn", "finetuned-clean"]
)
def test_retrained_good_model_passes_against_the_baseline(
    tmp_path: Path, shared: dict[str, Path], smile_probes: Path, card: Path
) -> None:
    """An independently seeded good model (zoo good-cnn seed 1 against seed 0, which is
    smile-cnn), and smile-cnn fine-tuned one epoch on clean faces: their maps differ, but within
    the shipped bounds and floors."""
    run = gate(
        tmp_path, shared, "--model", card, "--baseline", REFERENCE_CARD, "--probes", smile_probes
    )
    assert run.returncode == 0, run.output
    assert run.verdict is not None and run.verdict["passed"] is True
    drift = drift_results(run)
    assert len(drift) == 4, drift
    for result in drift:
        assert result["status"] == "passed" and result["value"] < 1.0, result
    assert any(r["baseline"]["regression"] != 0.0 for r in regression_results(run))


def test_baseline_with_other_classes_is_refused(
    tmp_path: Path, shared: dict[str, Path], smile_probes: Path
) -> None:
    emotion = ROOT / "models" / "emotion-cnn" / "model.yaml"
    run = gate(tmp_path, shared, "--baseline", emotion, "--probes", smile_probes)
    assert run.returncode == 4, run.output
    assert "emotion-cnn/model.yaml: classes" in run.output and "in order" in run.output
    assert run.verdict is not None and run.verdict["passed"] is False


def test_missing_baseline_is_refused(
    tmp_path: Path, shared: dict[str, Path], smile_probes: Path
) -> None:
    run = gate(tmp_path, shared, "--baseline", tmp_path / "absent.yaml", "--probes", smile_probes)
    assert run.returncode == 4, run.output
    assert "absent.yaml: no such model card or snapshot folder" in run.output


def test_snapshot_is_written_once_compared_with_and_refused_for_other_inputs(
    tmp_path: Path, shared: dict[str, Path], smile_probes: Path, marker_probes: Path
) -> None:
    snapshot = tmp_path / "baselines" / "smile-cnn"
    written = gate(tmp_path, shared, "--update-baseline", snapshot, "--probes", smile_probes)
    assert written.returncode == 0, written.output
    manifest = json.loads((snapshot / "snapshot.json").read_text())
    provenance = written.verdict["provenance"]
    assert (
        manifest["model"]["artifact_sha256"] == provenance["models"]["smile-cnn"]["artifact_sha256"]
    )
    assert manifest["probes"]["sha256"] == provenance["probes"]["sha256"]
    assert manifest["thresholds"]["sha256"] == provenance["thresholds"]["sha256"]
    assert manifest["settings"]["explainers"]["gradcam"]["batch_size"] == 64
    assert "region_focus[gradcam-smile-mouth]" in manifest["metrics"]
    with np.load(snapshot / "maps.npz", allow_pickle=False) as maps:
        assert len(maps.files) == manifest["maps"]["count"] == 2 * 20  # Grad-CAM, two classes
    before = (snapshot / "snapshot.json").read_bytes()

    again = gate(tmp_path, shared, "--update-baseline", snapshot, "--probes", smile_probes)
    assert again.returncode == 4 and "--overwrite-baseline" in again.output, again.output
    assert (snapshot / "snapshot.json").read_bytes() == before  # nothing overwritten

    compared = gate(
        tmp_path,
        shared,
        "--model",
        copy_of_reference(tmp_path / "copy"),
        "--baseline",
        snapshot,
        "--probes",
        smile_probes,
    )
    assert_no_drift_and_no_regression(compared)
    assert compared.verdict["provenance"]["baseline"]["kind"] == "snapshot"

    other_probes = gate(tmp_path, shared, "--baseline", snapshot, "--probes", marker_probes)
    assert other_probes.returncode == 4, other_probes.output
    assert "snapshot.json: probes: made on" in other_probes.output

    text = shared["thresholds"].read_text()
    other = tmp_path / "thresholds-other.yaml"
    other.write_text(text.replace("n_steps: 32", "n_steps: 16"))
    run = run_gate(
        tmp_path,
        "--thresholds",
        other,
        "--baseline",
        snapshot,
        "--probes",
        smile_probes,
        cache=shared["cache"],
    )
    assert run.returncode == 4, run.output
    assert "other explainer parameters: explainers.integrated_gradients.n_steps" in run.output

    overwritten = gate(
        tmp_path,
        shared,
        "--update-baseline",
        snapshot,
        "--overwrite-baseline",
        "--probes",
        smile_probes,
    )
    assert overwritten.returncode == 0, overwritten.output


DRIFTED_TITLE = (
    "explanation_drift_iou: smile-cnn-finetuned-corner-marker explained by gradcam, class smile"
)


def test_drift_evidence_shows_candidate_and_baseline_side_by_side(
    corner_marker: CornerMarkerRun,
) -> None:
    results = [json.loads(p.read_text()) for p in corner_marker.allure.glob("*-result.json")]
    [drifted] = [result for result in results if result["name"] == DRIFTED_TITLE]
    names = [attachment["name"] for attachment in drifted["attachments"]]
    figures = [name for name in names if name.startswith("drift ")]
    assert [name.split(":")[0] for name in figures] == ["drift 1", "drift 2", "drift 3"], names
    assert all(name.endswith("image | candidate | baseline") for name in figures)
    metrics = next(a for a in drifted["attachments"] if a["name"] == "metrics")
    per_image = json.loads((corner_marker.allure / metrics["source"]).read_text())["per_image"]
    most = min(per_image, key=lambda key: (per_image[key], key))
    assert figures[0].startswith(f"drift 1: {most} ")
    for attachment in drifted["attachments"]:
        if attachment["type"] == "image/png":
            assert is_png((corner_marker.allure / attachment["source"]).read_bytes())
    # A regressed case carries its p-value in the attached metrics, as in gate.json.
    [focus] = corner_marker.run.results(check="region_focus", explainer="gradcam", target="smile")
    assert 0.0 <= focus["baseline"]["p_value"] < 1e-3


def test_signoff_report_shows_the_most_drifted_images(
    corner_marker: CornerMarkerRun, tmp_path: Path
) -> None:
    browser = find_chromium()
    report = build_signoff(corner_marker.allure, corner_marker.folder / "signoff")
    profile = tmp_path / "chromium-profile"
    case_id, page = case_page(browser, report, DRIFTED_TITLE, profile)
    assert DRIFTED_TITLE in page_text(page) and "Failed" in page_text(page)
    rows = attachment_names(page)
    drifted = [uid for uid, name in rows if name.startswith("drift 1: ")]
    assert drifted, f"no drift figure among {[name for _, name in rows]}"
    images = attachment_images(browser, report, case_id, drifted[0], profile)
    assert images and is_png(images[0])


def test_snapshot_is_written_under_xdist(
    tmp_path: Path, shared: dict[str, Path], smile_probes: Path
) -> None:
    """`make gate` runs on two xdist workers: the controller writes the snapshot, and the
    workers, which start after it, must not refuse it as an existing one."""
    snapshot = tmp_path / "baselines" / "smile-cnn"
    run = gate(
        tmp_path,
        shared,
        "--update-baseline",
        snapshot,
        "--probes",
        smile_probes,
        "-n",
        "2",
        "-k",
        "model_accuracy",
    )
    assert "already there" not in run.output, run.output
    assert (snapshot / "snapshot.json").is_file() and (snapshot / "maps.npz").is_file()
    [accuracy] = run.results(check="model_accuracy")
    assert accuracy["status"] == "passed", accuracy
