"""Set-up errors of a gate run: each stops before any explainer runs, naming the file at fault."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from gate_runner import REFERENCE_CARD, ROOT, fast_thresholds

from xaigate.context import GateContext
from xaigate.errors import UsageError
from xaigate.gate import Gate
from xaigate.probes import generate_faces, write_probe_set


def fast_content(tmp_path: Path, *shipped_checks: str) -> dict:
    """The fast thresholds as a document, plus `shipped_checks` as thresholds.yaml has them."""
    content = yaml.safe_load(fast_thresholds(tmp_path).read_text())
    shipped = yaml.safe_load((ROOT / "thresholds.yaml").read_text())["checks"]
    content["checks"].update({name: shipped[name] for name in shipped_checks})
    return content


def written(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def thresholds_with(tmp_path: Path, **changes: object) -> Path:
    return written(tmp_path, {**fast_content(tmp_path), **changes})


def test_reference_set_up_opens(tmp_path: Path, smile_probes: Path) -> None:
    gate = Gate(GateContext.open(fast_thresholds(tmp_path), [REFERENCE_CARD], smile_probes))
    ids = [case.id for case in gate.cases("region_focus")]
    assert "smile-cnn-lime-smile-mouth" in ids and "smile-cnn-gradcam-not_smile-mouth" in ids
    assert [case.id for case in gate.cases("model_accuracy")] == ["smile-cnn-all"]


def test_region_the_probes_do_not_have(tmp_path: Path, smile_probes: Path) -> None:
    regions = {"smile": "teeth", "not_smile": "mouth"}
    path = thresholds_with(tmp_path, regions=regions, class_pairs=[["smile", "not_smile"]])
    with pytest.raises(UsageError, match=r"manifest.jsonl:\d+: probe .* has no region 'teeth'"):
        GateContext.open(path, [REFERENCE_CARD], smile_probes)


def test_class_without_a_decisive_region(tmp_path: Path, smile_probes: Path) -> None:
    path = thresholds_with(tmp_path, regions={"smile": "mouth"}, class_pairs=[])
    with pytest.raises(UsageError, match="class 'not_smile' of model card .* no decisive region"):
        GateContext.open(path, [REFERENCE_CARD], smile_probes)


def test_probe_set_without_images_of_a_gated_class(tmp_path: Path) -> None:
    smiles = [face for face in generate_faces(6, seed=3) if face.label == "smile"]
    probes = tmp_path / "only-smiles"
    write_probe_set(probes, smiles)
    with pytest.raises(UsageError, match="no probe image of class 'not_smile'"):
        GateContext.open(fast_thresholds(tmp_path), [REFERENCE_CARD], probes)


def test_class_pair_no_model_has(tmp_path: Path, smile_probes: Path) -> None:
    path = thresholds_with(tmp_path, class_pairs=[["happy", "angry"]])
    with pytest.raises(
        UsageError, match="checks.class_contrast: configured but applies to nothing"
    ):
        Gate(GateContext.open(path, [REFERENCE_CARD], smile_probes))


def test_class_pair_the_model_has_only_half_of(tmp_path: Path, smile_probes: Path) -> None:
    regions = {"smile": "mouth", "not_smile": "mouth", "happy": "mouth"}
    path = thresholds_with(tmp_path, regions=regions, class_pairs=[["smile", "happy"]])
    with pytest.raises(
        UsageError, match="class_pairs.0: model card .* has class 'smile' but not 'happy'"
    ):
        GateContext.open(path, [REFERENCE_CARD], smile_probes)


def test_robustness_check_without_variants_in_the_probes(
    tmp_path: Path, smile_probes: Path
) -> None:
    path = written(tmp_path, fast_content(tmp_path, "occlusion_flip_rate"))
    with pytest.raises(UsageError, match="no probe image tagged variant glasses"):
        Gate(GateContext.open(path, [REFERENCE_CARD], smile_probes))


def test_the_same_model_twice(tmp_path: Path, smile_probes: Path) -> None:
    with pytest.raises(UsageError, match="gated twice"):
        GateContext.open(fast_thresholds(tmp_path), [REFERENCE_CARD, REFERENCE_CARD], smile_probes)


def test_check_that_applies_to_nothing(tmp_path: Path, smile_probes: Path) -> None:
    content = fast_content(tmp_path)
    content["explainers"] = {"gradcam_pp": {}}  # deterministic; it measures the contrast
    content["checks"]["stability_rank"] = {"min": 0.4}
    path = written(tmp_path, content)
    with pytest.raises(
        UsageError, match="checks.stability_rank: configured but applies to nothing"
    ):
        Gate(GateContext.open(path, [REFERENCE_CARD], smile_probes))


def test_excluded_explainer_is_reported_not_applicable(tmp_path: Path, smile_probes: Path) -> None:
    content = fast_content(tmp_path)
    content["checks"]["region_focus"]["exclude"] = {"lime": "superpixels too coarse here"}
    path = written(tmp_path, content)
    gate = Gate(GateContext.open(path, [REFERENCE_CARD], smile_probes))
    reasons = {case.explainer: case.not_applicable for case in gate.cases("region_focus")}
    assert reasons["lime"] == "excluded by thresholds.yaml: superpixels too coarse here"
    assert reasons["gradcam"] is None
    assert len(gate.missing()) == len(gate.configured)  # nothing ran yet: not a pass
    assert not gate.passed


def test_decisive_swap_needs_every_class_region_on_every_probe(
    tmp_path: Path, smile_probes: Path
) -> None:
    content = fast_content(tmp_path, "decisive_swap_follow_rate")
    content["regions"]["not_smile"] = "eyes"  # smile probes now also need their eyes
    path = written(tmp_path, content)
    Gate(GateContext.open(path, [REFERENCE_CARD], smile_probes))  # faces carry every region
    stripped = tmp_path / "no-eyes"
    lines = (smile_probes / "manifest.jsonl").read_text().splitlines()
    shutil.copytree(smile_probes, stripped)
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        if entry["label"] == "smile":
            entry["regions"].pop("eyes")
    (stripped / "manifest.jsonl").write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    with pytest.raises(UsageError, match="has no region 'eyes'"):
        GateContext.open(path, [REFERENCE_CARD], stripped)
