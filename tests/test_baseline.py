"""The merge gate's engine, without pytest runs of the suites: known answers of the drift and
regression figures, the thresholds' `max_regression` and `baseline:` section, drift evidence."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from gate_runner import REFERENCE_CARD, ROOT

from xaigate.baseline.regression import compare
from xaigate.baseline.snapshot import write_snapshot
from xaigate.checks import builtin_checks
from xaigate.checks.registry import Direction
from xaigate.context import GateContext
from xaigate.errors import UsageError
from xaigate.evidence import drift_figures, is_png
from xaigate.evidence.figures import most_drifted
from xaigate.gate import Gate
from xaigate.metrics.similarity import rank_correlation, top_k_iou
from xaigate.stats import (
    paired_worse_p_value,
    relative_worsening,
    smallest_wilcoxon_p_value,
    worsening,
)
from xaigate.thresholds import MaxRegression, load_thresholds
from xaigate.verdict import provenance

RNG = np.random.default_rng(0)
MAP = RNG.random((32, 32))


# ---- known answers


def test_identical_maps_have_not_drifted() -> None:
    assert rank_correlation(MAP, MAP.copy()) == 1.0
    assert top_k_iou(MAP, MAP.copy(), 0.1) == 1.0


def test_negated_and_shuffled_maps_have_drifted() -> None:
    assert rank_correlation(MAP, -MAP) == pytest.approx(-1.0)
    assert top_k_iou(MAP, -MAP, 0.1) == 0.0
    shuffled = np.random.default_rng(1).permutation(MAP.ravel()).reshape(MAP.shape)
    assert abs(rank_correlation(MAP, shuffled)) < 0.1
    assert top_k_iou(MAP, shuffled, 0.1) < 0.15  # chance: 0.1 / 1.9 = 0.053


def test_wilcoxon_on_identical_samples_is_one_not_an_error() -> None:
    sample = RNG.random(20)
    for direction in Direction:
        assert paired_worse_p_value(sample, sample.copy(), direction) == 1.0


def test_wilcoxon_finds_a_clear_shift_in_the_worse_direction_only() -> None:
    baseline = RNG.random(20)
    lower = baseline - 0.2 - 0.01 * RNG.random(20)
    assert paired_worse_p_value(lower, baseline, Direction.HIGHER) < 1e-4  # lower is worse
    assert paired_worse_p_value(lower, baseline, Direction.LOWER) > 0.99  # lower is better
    assert paired_worse_p_value(baseline + 0.2, baseline, Direction.LOWER) < 1e-4


def test_worsening_follows_the_direction() -> None:
    assert worsening(0.3, 0.5, Direction.HIGHER) == pytest.approx(0.2)
    assert worsening(0.3, 0.5, Direction.LOWER) == pytest.approx(-0.2)
    assert relative_worsening(0.3, 0.5, Direction.HIGHER) == pytest.approx(0.4)
    assert relative_worsening(0.0, 0.0, Direction.LOWER) == 0.0
    assert relative_worsening(0.1, 0.0, Direction.LOWER) == float("inf")


def _values(array: np.ndarray) -> dict[str, float]:
    return {f"face-{i:04d}": float(value) for i, value in enumerate(array)}


def test_comparison_known_answers() -> None:
    spec = builtin_checks()["region_focus"]  # higher is better
    bound = MaxRegression(relative=0.25)
    baseline = 0.4 + 0.1 * RNG.random(20)
    same = compare(spec, _values(baseline), _values(baseline), bound, 0.05)
    assert same.worsening == 0.0 and same.p_value == 1.0 and not same.regressed
    assert same.paired == 20 and same.to_json()["regressed"] is False
    halved = compare(spec, _values(baseline / 2), _values(baseline), bound, 0.05)
    assert halved.relative == pytest.approx(0.5) and halved.exceeds and halved.regressed
    assert halved.p_value is not None and halved.p_value < 1e-4
    assert "REGRESSED" in halved.describe()
    # Worse by more than the bound on the mean, but carried by one image among 20 that moved
    # either way (noise): not beyond chance.
    one_bad = baseline + 0.01 * np.where(np.arange(20) % 2 == 0, 1.0, -1.0)
    one_bad[0] = -10.0
    noisy = compare(spec, _values(one_bad), _values(baseline), bound, 0.05)
    assert noisy.exceeds and noisy.p_value is not None and noisy.p_value > 0.05
    assert noisy.differing == 20 and noisy.test_decides and not noisy.regressed
    # An undefined value counts as the check's worst (0 for region focus).
    undefined = _values(baseline) | {"face-0000": float("nan")}
    assert compare(spec, undefined, _values(baseline), bound, 0.05).worsening > 0


def test_smallest_wilcoxon_p_value_is_half_to_the_power_n() -> None:
    for n in range(1, 8):
        worse = np.arange(1, n + 1) * 0.1  # every difference worse: the smallest p
        p_value = paired_worse_p_value(worse, np.zeros(n), Direction.LOWER)
        assert p_value == pytest.approx(smallest_wilcoxon_p_value(n))
    assert smallest_wilcoxon_p_value(4) > 0.05 > smallest_wilcoxon_p_value(5)


def test_huge_regression_on_too_few_images_fails_on_the_bound_alone() -> None:
    """3 probe images cannot reach p < 0.05 (at best 0.125): the test cannot speak, so the
    bound decides instead of the run passing a collapse as "not significant"."""
    spec = builtin_checks()["region_focus"]
    bound = MaxRegression(relative=0.25)
    baseline = np.array([0.5, 0.6, 0.55])
    few = compare(spec, _values(baseline * 0.1), _values(baseline), bound, 0.05)
    assert few.p_value == pytest.approx(0.125) and few.paired == few.differing == 3
    assert not few.test_decides and few.regressed
    assert few.to_json()["decided_by"].startswith("bound alone: 3 differing")
    assert "bound alone" in few.describe()
    # 20 images of which only 2 changed, collapsing: as few differences as 2 images.
    many = 0.4 + 0.1 * RNG.random(20)
    two_changed = many.copy()
    two_changed[:2] = 0.0
    sparse = compare(spec, _values(two_changed), _values(many), MaxRegression(absolute=0.02), 0.05)
    assert sparse.paired == 20 and sparse.differing == 2 and sparse.regressed
    # Within the bound, few images still pass.
    slight = compare(spec, _values(baseline * 0.95), _values(baseline), bound, 0.05)
    assert not slight.exceeds and not slight.regressed


def test_unpaired_images_are_counted() -> None:
    spec = builtin_checks()["region_focus"]
    baseline = 0.4 + 0.1 * RNG.random(20)
    candidate = _values(baseline)
    del candidate["face-0003"]
    result = compare(spec, candidate, _values(baseline), MaxRegression(relative=0.25), 0.05)
    assert result.paired == 19 and result.unpaired == 1
    assert result.to_json()["unpaired"] == 1 and "1 unpaired" in result.describe()


# ---- thresholds


def _thresholds(tmp_path: Path, edit) -> str:  # noqa: ANN001 - a function of the parsed yaml
    content = yaml.safe_load((ROOT / "thresholds.yaml").read_text())
    edit(content)
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    with pytest.raises(UsageError) as caught:
        load_thresholds(path)
    return str(caught.value)


def test_shipped_thresholds_carry_max_regression_and_drift_floors() -> None:
    thresholds = load_thresholds(ROOT / "thresholds.yaml")
    assert set(thresholds.max_regressions) >= {"region_focus", "border_dominance"}
    assert thresholds.baseline_checks == ["explanation_drift_rank", "explanation_drift_iou"]
    assert thresholds.threshold("explanation_drift_iou", "m", "gradcam", "smile").value == 0.4


def test_max_regression_without_a_bound_is_refused(tmp_path: Path) -> None:
    def edit(content: dict) -> None:
        content["checks"]["region_focus"]["max_regression"] = {}

    message = _thresholds(tmp_path, edit)
    assert "checks.region_focus.max_regression" in message and "absolute" in message


def test_negative_max_regression_is_refused(tmp_path: Path) -> None:
    def edit(content: dict) -> None:
        content["checks"]["region_focus"]["max_regression"] = {"relative": -0.1}

    assert "checks.region_focus.max_regression.relative" in _thresholds(tmp_path, edit)


def test_drift_check_outside_the_baseline_section_is_refused(tmp_path: Path) -> None:
    def edit(content: dict) -> None:
        content["checks"]["explanation_drift_rank"] = {"min": 0.5}

    message = _thresholds(tmp_path, edit)
    assert "checks.explanation_drift_rank" in message and "'baseline: checks:'" in message


def test_plain_check_in_the_baseline_section_is_refused(tmp_path: Path) -> None:
    def edit(content: dict) -> None:
        content["baseline"]["checks"]["region_focus"] = {"min": 0.5}

    message = _thresholds(tmp_path, edit)
    assert "baseline.checks.region_focus" in message and "needs no baseline" in message


def test_misspelt_baseline_key_is_refused(tmp_path: Path) -> None:
    def edit(content: dict) -> None:
        content["baseline"]["significanse"] = 0.01

    assert "baseline.significanse: unknown key" in _thresholds(tmp_path, edit)


def test_baseline_section_may_name_known_explainers_that_are_not_configured(
    tmp_path: Path,
) -> None:
    """One shipped `baseline:` section serves copies cut to fewer explainers; a misspelt
    explainer is still an error."""
    content = yaml.safe_load((ROOT / "thresholds.yaml").read_text())
    content["explainers"] = {"gradcam": {}}
    content["checks"] = {"model_accuracy": {"min": 0.9}}
    content.pop("latency")
    path = tmp_path / "cut.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    thresholds = load_thresholds(path)  # lime, shap and IG are named, not configured
    assert thresholds.threshold("explanation_drift_rank", "m", "gradcam", "smile").value == 0.5

    def edit(content: dict) -> None:
        content["baseline"]["checks"]["explanation_drift_iou"]["exclude"]["limee"] = "typo"

    message = _thresholds(tmp_path, edit)
    assert "baseline.checks.explanation_drift_iou.exclude.limee" in message
    assert "not a known explainer" in message


# ---- the gate without and with a baseline


@pytest.fixture(scope="module")
def small_thresholds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Grad-CAM, the precondition and region focus (with its max_regression), drift as shipped."""
    content = yaml.safe_load((ROOT / "thresholds.yaml").read_text())
    content["explainers"] = {"gradcam": content["explainers"]["gradcam"]}
    content["checks"] = {k: content["checks"][k] for k in ("model_accuracy", "region_focus")}
    content["baseline"]["checks"] = {
        name: {k: v for k, v in check.items() if k != "exclude"}
        for name, check in content["baseline"]["checks"].items()
    }
    content.pop("latency")
    path = tmp_path_factory.mktemp("thresholds") / "thresholds.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def test_without_a_baseline_nothing_changes(small_thresholds: Path, smile_probes: Path) -> None:
    """`make gate` without --baseline: no drift case, no comparison in gate.json, which says
    which of the thresholds' comparisons were not in effect."""
    context = GateContext.open(small_thresholds, [REFERENCE_CARD], smile_probes)
    gate = Gate(context)
    assert not gate.cases("explanation_drift_rank") and not gate.cases("explanation_drift_iou")
    result = gate.run(gate.cases("region_focus")[0])
    assert result.regression is None and "baseline" not in result.to_json()
    # The thresholds' comparisons that did not take effect are named, not silently skipped.
    assert provenance(context)["baseline"] == {
        "kind": "none",
        "not_in_effect": [
            "model_accuracy",
            "region_focus",
            "explanation_drift_rank",
            "explanation_drift_iou",
        ],
    }


def test_drift_case_against_itself_and_its_figures(
    small_thresholds: Path, smile_probes: Path
) -> None:
    context = GateContext.open(
        small_thresholds, [REFERENCE_CARD], smile_probes, baseline=REFERENCE_CARD
    )
    gate = Gate(context)
    ids = [case.result_id for case in gate.cases("explanation_drift_rank")]
    assert ids == [
        "explanation_drift_rank[smile-cnn-gradcam-not_smile]",
        "explanation_drift_rank[smile-cnn-gradcam-smile]",
    ]
    result = gate.run(gate.cases("explanation_drift_rank")[1])
    assert result.passed and result.value == 1.0 and result.reference["identical_share"] == 1.0
    figures = drift_figures(context, result)
    assert len(figures) == 3 and all(is_png(figure.png) for figure in figures)
    assert figures[0].name.startswith("drift 1: ") and "candidate | baseline" in figures[0].name
    assert provenance(context)["baseline"]["kind"] == "model"


def test_most_drifted_orders_lowest_similarity_first_undefined_before_all() -> None:
    per_image = {"a": 0.9, "b": 0.1, "c": float("nan"), "d": 0.5}
    assert most_drifted(per_image, 3) == ["c", "b", "d"]


def test_baseline_for_several_models_is_refused(small_thresholds: Path, smile_probes: Path) -> None:
    other = ROOT / "models" / "zoo" / "good-cnn" / "seed-1" / "model.yaml"
    with pytest.raises(UsageError, match="compares one --model with it, 2 given"):
        GateContext.open(
            small_thresholds, [REFERENCE_CARD, other], smile_probes, baseline=REFERENCE_CARD
        )


def test_baseline_without_anything_to_compare_is_refused(
    tmp_path: Path, smile_probes: Path
) -> None:
    content = yaml.safe_load((ROOT / "thresholds.yaml").read_text())
    content["explainers"] = {"gradcam": content["explainers"]["gradcam"]}
    content["checks"] = {"model_accuracy": {"min": 0.9}}
    content.pop("latency")
    content.pop("baseline")
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(content))
    context = GateContext.open(path, [REFERENCE_CARD], smile_probes, baseline=REFERENCE_CARD)
    with pytest.raises(UsageError, match="nothing would be compared"):
        Gate(context)


def test_shipped_thresholds_open_a_merge_gate(smile_probes_with_variants: Path) -> None:
    """The shipped thresholds.yaml, every explainer, with a baseline: drift cases for each
    explainer but IG (excluded with its reason), comparisons for the max_regression checks."""
    context = GateContext.open(
        ROOT / "thresholds.yaml",
        [REFERENCE_CARD],
        smile_probes_with_variants,
        baseline=REFERENCE_CARD,
    )
    gate = Gate(context)
    drift = gate.cases("explanation_drift_iou")
    applies = {case.explainer for case in drift if not case.not_applicable}
    assert applies == {"lime", "shap", "gradcam", "gradcam_pp"}
    [ig] = {case.not_applicable for case in drift if case.explainer == "integrated_gradients"}
    assert ig is not None and "independently seeded" in ig
    assert gate.cases("region_focus") and gate.cases("latency")


# ---- snapshots


def _rewrite_maps(folder: Path, maps: dict[str, np.ndarray]) -> None:
    """Replace the snapshot's maps and name them in its manifest (a consistent but wrong one)."""
    np.savez(folder / "maps.npz", **maps)
    manifest = json.loads((folder / "snapshot.json").read_text())
    digest = hashlib.sha256((folder / "maps.npz").read_bytes()).hexdigest()
    manifest["maps"]["sha256"] = digest
    (folder / "snapshot.json").write_text(json.dumps(manifest))


def test_malformed_snapshots_are_refused_with_one_line(
    small_thresholds: Path, smile_probes: Path, tmp_path: Path
) -> None:
    gate = Gate(GateContext.open(small_thresholds, [REFERENCE_CARD], smile_probes))
    folder = tmp_path / "snapshot"
    write_snapshot(gate, folder)
    with np.load(folder / "maps.npz", allow_pickle=False) as archive:
        maps = {key: archive[key] for key in archive.files}
    manifest = json.loads((folder / "snapshot.json").read_text())

    def opened() -> Gate:
        context = GateContext.open(
            small_thresholds, [REFERENCE_CARD], smile_probes, baseline=folder
        )
        return Gate(context)

    assert opened().context.baseline is not None  # as written, it serves
    # A map of another shape, though named by the manifest: refused before any case runs.
    first = sorted(maps)[0]
    _rewrite_maps(folder, {**maps, first: maps[first][:10]})
    with pytest.raises(UsageError, match=r"snapshot.json: has no usable map .*shape \(10, 64\)"):
        opened()
    # An object array cannot be read without pickle: refused, not unpickled.
    _rewrite_maps(folder, {**maps, first: np.array([{"a": 1}], dtype=object)})
    with pytest.raises(UsageError, match="maps.npz: not a maps archive"):
        opened()
    _rewrite_maps(folder, maps)
    for key, value, expected in (
        ("metrics", [], "metrics: expected an object"),
        ("maps", "maps.npz", "maps: expected an object"),
        ("metrics", {"x": {"per_image": {"a": "0.5"}}}, "metrics.x.per_image: expected"),
    ):
        (folder / "snapshot.json").write_text(json.dumps({**manifest, key: value}))
        with pytest.raises(UsageError, match=expected) as caught:
            opened()
        assert "snapshot.json" in str(caught.value) and "\n" not in str(caught.value)


def test_failed_overwrite_leaves_the_snapshot_as_it_was(
    small_thresholds: Path, smile_probes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--overwrite-baseline prepares the new maps and manifest before writing either: a
    failure on the way leaves the old pair, not new maps under an old manifest."""
    gate = Gate(GateContext.open(small_thresholds, [REFERENCE_CARD], smile_probes))
    folder = tmp_path / "snapshot"
    write_snapshot(gate, folder)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    monkeypatch.setattr("xaigate.verdict.library_versions", lambda: {"broken": float("nan")})
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_snapshot(gate, folder, overwrite=True)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
