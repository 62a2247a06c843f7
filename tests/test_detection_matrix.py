"""The gate's power on the model zoo: good models pass, every planted flaw is caught, under
three training seeds (models/recipes/zoo.py; weights committed under models/zoo/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from gate_runner import MATRIX_CHECKS, matrix_thresholds

from models.recipes.zoo import PROBE_SETS, SEEDS, ZOO, card_path, ensure_probe_set
from xaigate.matrix import (
    CELL_FAIL,
    CELL_NA,
    CELL_PASS,
    MatrixRow,
    RowOutcome,
    check_cells,
    gate_row,
    gate_rows,
    markdown_matrix,
    render_matrix,
)

pytestmark = pytest.mark.slow
PROBE_FACES = 80  # 40 per class: at 20 the bootstrap bound cannot yet confirm the MLP passes


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("matrix")
    probes = {name: ensure_probe_set(name, folder, n=PROBE_FACES) for name in PROBE_SETS}
    return matrix_thresholds(folder), probes


@pytest.fixture(scope="module")
def outcomes(setup: tuple[Path, dict[str, Path]]) -> dict[tuple[str, int, str], RowOutcome]:
    """Every zoo model, under every training seed, on each probe set it is gated on."""
    thresholds, probes = setup
    keys = [(name, seed, p) for name in ZOO for seed in ZOO[name].seeds for p in ZOO[name].probes]
    rows = [
        MatrixRow(f"{name}-s{seed}", p, card_path(name, seed), probes[p], ZOO[name].aimed)
        for name, seed, p in keys
    ]
    return dict(zip(keys, gate_rows(rows, thresholds, workers=2), strict=True))


def test_zoo_weights_are_committed_for_every_seed() -> None:
    for name, model in ZOO.items():
        assert model.seeds == SEEDS or model.framework == "keras", name
        for seed in model.seeds:
            card = card_path(name, seed)
            artifact = "weights.pt" if model.framework == "torch" else "model.keras"
            assert card.is_file() and (card.parent / artifact).is_file(), card


def test_every_good_model_passes_every_gate(outcomes: dict) -> None:
    for (name, seed, probes), outcome in outcomes.items():
        if not ZOO[name].good:
            continue
        assert outcome.error is None, outcome.error
        failed = {check: cell for check, cell in outcome.cells.items() if cell != CELL_PASS}
        # Not applicable is allowed only as a whole explainer that cannot apply (CAM on the MLP).
        assert all(cell == CELL_NA for cell in failed.values()), (name, seed, probes, failed)
        assert set(outcome.cells) == set(MATRIX_CHECKS), outcome.cells
        assert outcome.passed and outcome.as_expected, render_matrix([outcome])


def test_every_flawed_model_fails_the_checks_aimed_at_its_flaw(outcomes: dict) -> None:
    for (name, seed, probes), outcome in outcomes.items():
        if ZOO[name].good:
            continue
        assert outcome.error is None, outcome.error
        assert not outcome.passed, (name, seed)
        missed = [c for c in ZOO[name].aimed if outcome.cells.get(c) != CELL_FAIL]
        assert not missed, f"{name} seed {seed} on {probes}: {missed} did not fail\n" + (
            render_matrix([outcome])
        )


def test_shortcut_models_are_right_for_the_wrong_reason(outcomes: dict) -> None:
    """Each planted shortcut is accurate on its probes: only the explanations and the
    interventions can catch it (the randomised model is the one meant to be inaccurate)."""
    for (name, _seed, _probes), outcome in outcomes.items():
        expected = CELL_FAIL if name == "randomised" else CELL_PASS
        assert outcome.cells["model_accuracy"] == expected, (name, outcome.cells)


def test_verdicts_do_not_depend_on_the_training_seed(outcomes: dict) -> None:
    for name, model in ZOO.items():
        for probes in model.probes:
            verdicts = {outcomes[name, seed, probes].passed for seed in model.seeds}
            aimed = {
                tuple(outcomes[name, seed, probes].cells[c] for c in model.aimed)
                for seed in model.seeds
            }
            assert len(verdicts) == 1 and len(aimed) == 1, (name, probes, verdicts, aimed)


def test_cam_does_not_apply_to_the_mlp_which_is_still_judged(outcomes: dict) -> None:
    results = outcomes["good-mlp", 0, "smile"].results
    cam = [r for r in results if r["explainer"] == "gradcam"]
    assert cam and all(r["status"] == "not_applicable" for r in cam)
    assert all("convolution" in r["message"] or "layer" in r["message"] for r in cam), cam[0]
    judged = {r["explainer"] for r in results if r["status"] == "passed" and r["explainer"]}
    assert "integrated_gradients" in judged


def test_gating_a_row_twice_gives_identical_values(setup: tuple[Path, dict[str, Path]]) -> None:
    thresholds, probes = setup
    row = MatrixRow(
        "corner-marker-s0",
        "smile-marker",
        card_path("corner-marker", 0),
        probes["smile-marker"],
        ZOO["corner-marker"].aimed,
    )
    first, second = gate_row(row, thresholds), gate_row(row, thresholds)
    assert first.results == second.results and first.results


def _result(check: str, status: str) -> dict[str, str]:
    return {"check": check, "status": status}


def test_cells_known_answers() -> None:
    results = [
        _result("a", "passed"),
        _result("a", "not_applicable"),
        _result("b", "passed"),
        _result("b", "failed"),
        _result("c", "not_applicable"),
        _result("d", "failed"),
        _result("d", "error"),
    ]
    assert check_cells(results) == {"a": "pass", "b": "fail", "c": "n/a", "d": "error"}


def test_row_expectations_and_rendering() -> None:
    flawed = MatrixRow("m", "p", Path("card"), Path("probes"), ("b",))
    caught = RowOutcome(flawed, {"a": "pass", "b": "fail"}, passed=False)
    missed = RowOutcome(flawed, {"a": "fail", "b": "pass"}, passed=False)
    good = RowOutcome(MatrixRow("g", "p", Path("c"), Path("p")), {"a": "pass"}, passed=True)
    assert caught.as_expected and not missed.as_expected and good.as_expected
    assert not RowOutcome(flawed, {}, passed=False, error="bad card").as_expected
    text = render_matrix([caught, missed, good])
    assert "fail*" in text and "UNEXPECTED" in text and "as expected" in text
    markdown = markdown_matrix([caught, good])
    assert markdown.splitlines()[0] == "| model | probes | a | b | gate |"


def test_the_matrix_leaves_latency_to_make_gate(
    setup: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    """A thresholds file with a `latency:` section (the shipped one) gates rows without it:
    latency is timed by make gate's serial suite, and a row must not error on it."""
    thresholds, probes = setup
    config = yaml.safe_load(thresholds.read_text())
    config["checks"] = {name: config["checks"][name] for name in ("model_accuracy", "region_focus")}
    config["latency"] = {"budgets": {"gradcam": 1.0, "integrated_gradients": 1.0}}
    with_latency = tmp_path / "thresholds.yaml"
    with_latency.write_text(yaml.safe_dump(config))
    row = MatrixRow("good-cnn-s0", "smile", card_path("good-cnn", 0), probes["smile"])
    outcome = gate_row(row, with_latency)
    assert outcome.error is None and outcome.passed, render_matrix([outcome])
    assert set(outcome.cells) == {"model_accuracy", "region_focus"}, outcome.cells
