"""thresholds.yaml: validation errors name file, line and key; overrides resolve."""

from pathlib import Path

import pytest

from xaigate.checks.registry import Direction
from xaigate.errors import UsageError
from xaigate.thresholds import load_thresholds

ROOT = Path(__file__).resolve().parents[1]

VALID = """\
seed: 3
regions:
  smile: mouth
  not_smile: mouth
explainers:
  lime:
    num_samples: 200
  gradcam: {}
checks:
  region_focus:
    min: 0.3
    overrides:
      - {explainer: lime, min: 0.25}
      - {explainer: lime, class: smile, model: smile-cnn, min: 0.2}
  border_dominance:
    max: 0.15
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(UsageError) as caught:
        load_thresholds(write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "thresholds.yaml") in message
    return message


def test_shipped_thresholds_load() -> None:
    thresholds = load_thresholds(ROOT / "thresholds.yaml")
    assert {"lime", "gradcam"} <= set(thresholds.explainers)
    assert thresholds.regions["smile"] == "mouth"


def test_valid_file_and_override_resolution(tmp_path: Path) -> None:
    thresholds = load_thresholds(write(tmp_path, VALID))
    assert thresholds.seed == 3
    assert thresholds.explainers["lime"].num_samples == 200
    focus = thresholds.threshold
    assert focus("region_focus", "m", "gradcam", "smile").value == 0.3
    assert focus("region_focus", "m", "lime", "smile").value == 0.25
    assert focus("region_focus", "smile-cnn", "lime", "smile").value == 0.2
    assert focus("region_focus", "smile-cnn", "lime", "not_smile").value == 0.25
    border = focus("border_dominance", "m", "lime", "smile")
    assert border.direction is Direction.LOWER and border.admits(0.1) and not border.admits(0.2)


def test_misspelt_top_level_key_names_key_and_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("seed: 3", "sead: 3"))
    assert ":1:" in message and "sead" in message and "unknown key" in message


def test_misspelt_check_names_key_and_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("  border_dominance:", "  border_dominence:"))
    assert ":15:" in message and "checks.border_dominence" in message and "unknown check" in message


def test_misspelt_explainer_parameter(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("num_samples", "num_sampels"))
    assert ":7:" in message and "explainers.lime.num_sampels" in message


def test_unknown_explainer(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("  gradcam: {}", "  gradcom: {}"))
    assert "explainers.gradcom" in message and "unknown explainer" in message


def test_check_without_threshold(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("    max: 0.15\n", "    overrides: []\n"))
    assert "checks.border_dominance" in message and "no threshold" in message and "'max'" in message


def test_threshold_in_the_wrong_direction(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("max: 0.15", "min: 0.15"))
    assert "checks.border_dominance.min" in message and "give 'max'" in message


def test_wrong_type(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("min: 0.3", "min: high"))
    assert ":11:" in message and "checks.region_focus.min" in message and "'high'" in message


def test_override_naming_unknown_class_or_explainer(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("class: smile,", "class: smiel,"))
    assert "overrides.1.class" in message and "smiel" in message
    message = error_of(
        tmp_path, VALID.replace("{explainer: lime, min: 0.25}", "{explainer: shapp, min: 0.25}")
    )
    assert "overrides.0.explainer" in message and "shapp" in message
    assert "not a known explainer" in message


def test_override_naming_a_known_explainer_not_configured_matches_nothing(
    tmp_path: Path,
) -> None:
    # A copy of the file cut to fewer explainers keeps loading.
    path = tmp_path / "thresholds.yaml"
    path.write_text(VALID.replace("{explainer: lime, min: 0.25}", "{explainer: shap, min: 0.25}"))
    thresholds = load_thresholds(path)
    assert "shap" not in thresholds.explainers


def test_check_params_naming_an_unknown_class(tmp_path: Path) -> None:
    text = VALID + "  pointing_game:\n    min: 0.5\n    params: {classes: [smile, smiel]}\n"
    message = error_of(tmp_path, text)
    assert "checks.pointing_game.params.classes.1" in message and "smiel" in message


def test_override_without_threshold(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID.replace("{explainer: lime, min: 0.25}", "{explainer: lime}"))
    assert "overrides.0" in message and "give 'min'" in message


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    message = error_of(tmp_path, "checks: [unclosed\n")
    assert "malformed YAML" in message
    with pytest.raises(UsageError, match="thresholds file not found"):
        load_thresholds(tmp_path / "absent.yaml")


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID + "seed: 4\n")
    assert ":17:" in message and "seed: duplicate key" in message


def test_relative_thresholds_resolve_against_the_reference(tmp_path: Path) -> None:
    text = VALID.replace("    min: 0.3\n", "    min: 2.5\n    relative_to: area_share\n")
    threshold = load_thresholds(write(tmp_path, text)).threshold(
        "region_focus", "m", "gradcam", "x"
    )
    resolved = threshold.resolved({"area_share": 0.04})
    assert resolved.value == pytest.approx(0.1) and resolved.rule == ">= 2.5 x area_share"
    assert resolved.admits(0.11) and not resolved.admits(0.09)
    with pytest.raises(ValueError, match="resolved"):
        threshold.admits(0.5)
    margin = text.replace(
        "relative_to: area_share", "relative_to: control_random\n    mode: margin"
    )
    threshold = load_thresholds(write(tmp_path, margin)).threshold("region_focus", "m", "lime", "x")
    assert threshold.resolved({"control_random": 0.1}).value == pytest.approx(0.1 + 0.25)


def test_relative_to_an_unknown_reference(tmp_path: Path) -> None:
    text = VALID.replace("    min: 0.3\n", "    min: 2.5\n    relative_to: area_shares\n")
    message = error_of(tmp_path, text)
    assert "checks.region_focus.relative_to" in message and "area_shares" in message


def test_unknown_check_parameter(tmp_path: Path) -> None:
    text = VALID.replace("    max: 0.15\n", "    max: 0.15\n    params: {tolerance: 2}\n")
    message = error_of(tmp_path, text)
    assert "checks.border_dominance.params.tolerance" in message and "unknown key" in message


def test_class_override_selects_contrast_pairs_by_either_class(tmp_path: Path) -> None:
    text = (
        VALID
        + "  class_contrast:\n    max: 0.5\n    overrides:\n      - {class: smile, max: 0.3}\n"
    )
    thresholds = load_thresholds(write(tmp_path, text))
    assert thresholds.threshold("class_contrast", "m", "lime", "smile_vs_not_smile").value == 0.3
    assert thresholds.threshold("class_contrast", "m", "lime", "happy_vs_angry").value == 0.5
    # "smile" is not "not_smile": a selector matches whole class names only.
    assert thresholds.threshold("region_focus", "m", "gradcam", "not_smile").value == 0.3


LATENCY = """\
latency:
  rounds: 2
  budgets:
    lime: 3.0
    gradcam: 0.5
"""


def test_latency_section_adds_the_latency_check_with_budgets_per_explainer(
    tmp_path: Path,
) -> None:
    thresholds = load_thresholds(write(tmp_path, VALID + LATENCY))
    assert thresholds.checks[-1] == "latency"
    assert thresholds.params("latency").rounds == 2 and thresholds.params("latency").images == 2
    budget = thresholds.threshold("latency", "m", "lime", "")
    assert budget.direction is Direction.LOWER and budget.value == 3.0
    assert "latency" not in load_thresholds(write(tmp_path, VALID)).checks


def test_shipped_latency_budgets_cover_every_explainer() -> None:
    thresholds = load_thresholds(ROOT / "thresholds.yaml")
    assert set(thresholds.params("latency").budgets) == set(thresholds.explainers)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("    gradcam: 0.5\n", ""), ":19: latency.budgets: no budget for explainer 'gradcam'"),
        (("    gradcam: 0.5\n", "    gradcam: 0.5\n    shap: 1.0\n"), "latency.budgets.shap:"),
        (("gradcam: 0.5", "gradcam: 0"), "latency.budgets.gradcam"),
        (("rounds: 2", "rounds: 0"), "latency.rounds"),
        (("  rounds: 2", "  round: 2"), "latency.round: unknown key"),
    ],
    ids=["missing-budget", "unconfigured-explainer", "zero-budget", "no-rounds", "misspelt"],
)
def test_bad_latency_section_names_the_key(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    message = error_of(tmp_path, VALID + LATENCY.replace(*edit))
    assert expected in message


def test_latency_under_checks_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, VALID + "  latency:\n    max: 1.0\n")
    assert "checks.latency" in message and "top-level 'latency' section" in message
