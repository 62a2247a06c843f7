"""The gate end to end, run as users run it: `pytest suites` in a fresh process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from gate_runner import (
    FAST_CHECKS,
    REFERENCE_CARD,
    ROOT,
    GateRun,
    assert_corner_marker_caught,
    fast_thresholds,
    run_gate,
)

from xaigate import merge

pytestmark = pytest.mark.slow

EXPLAINED = ("region_focus", "border_dominance", "background_dominance", "class_contrast")


def test_reference_model_passes_every_gate(tmp_path: Path, smile_probes: Path) -> None:
    run = run_gate(tmp_path, "--probes", smile_probes, "--thresholds", fast_thresholds(tmp_path))
    assert run.returncode == 0, run.output
    verdict = run.verdict
    assert verdict is not None and verdict["passed"] is True
    assert {result["check"] for result in verdict["results"]} == set(FAST_CHECKS)
    for check in EXPLAINED[:3]:
        for explainer in ("lime", "gradcam"):
            for target in ("smile", "not_smile"):
                [result] = run.results(check=check, explainer=explainer, target=target)
                assert result["passed"] and result["n"] == 20, result
    # The intervention beside the dominance verdict agrees: swapping the border flips nothing.
    [border] = run.results(check="border_dominance", explainer="gradcam", target="smile")
    assert border["reference"]["border_swap_flip_rate"] <= 0.1
    provenance = verdict["provenance"]
    assert len(provenance["probes"]["sha256"]) == 64
    assert len(provenance["models"]["smile-cnn"]["artifact_sha256"]) == 64
    assert provenance["seeds"]["root"] == 0 and "torch" in provenance["libraries"]
    assert "xaigate verdict" in run.output and "region_focus" in run.output


def test_planted_shortcut_fails_and_reference_passes_on_the_same_probes(
    tmp_path: Path, marker_probes: Path, shortcut_card: Path
) -> None:
    thresholds = fast_thresholds(tmp_path)
    flawed = run_gate(
        tmp_path, "--probes", marker_probes, "--model", shortcut_card, "--thresholds", thresholds
    )
    assert_corner_marker_caught(flawed)
    [dominance] = flawed.results(check="border_dominance", explainer="gradcam", target="smile")
    assert dominance["reference"]["border_swap_flip_rate"] >= 0.5

    reference = run_gate(
        tmp_path, "--probes", marker_probes, "--model", REFERENCE_CARD, "--thresholds", thresholds
    )
    assert reference.returncode == 0, reference.output
    assert reference.verdict is not None and reference.verdict["passed"] is True


def test_dash_k_selects_one_explainer(tmp_path: Path, smile_probes: Path) -> None:
    thresholds = fast_thresholds(tmp_path)
    run = run_gate(
        tmp_path,
        "--probes",
        smile_probes,
        "--thresholds",
        thresholds,
        "-k",
        "lime",
        "--collect-only",
        "-q",
    )
    assert run.returncode == 0, run.output
    ids = [line for line in run.output.splitlines() if line.startswith("suites/")]
    # Three per-class checks for two classes, and one class pair.
    assert len(ids) == 3 * 2 + 1, run.output
    assert all("-lime-" in line and "gradcam" not in line for line in ids)
    assert "suites/test_localisation.py::test_region_focus[smile-cnn-lime-smile-mouth]" in ids


def test_dash_k_selects_gradcam(tmp_path: Path, smile_probes: Path) -> None:
    run = run_gate(
        tmp_path,
        "--probes",
        smile_probes,
        "--thresholds",
        fast_thresholds(tmp_path),
        "-k",
        "gradcam-",  # as README says: `gradcam` alone also matches gradcam_pp
        "--collect-only",
        "-q",
    )
    ids = [line for line in run.output.splitlines() if line.startswith("suites/")]
    assert ids and all("-gradcam-" in line for line in ids), run.output


@pytest.mark.parametrize(
    ("pattern", "replacement", "expected"),
    [
        (r"^seed: 0", "sede: 0", "sede: unknown key"),
        (r"(^  border_dominance:.*\n)    max: .*\n", r"\1", "border_dominance: no threshold"),
    ],
    ids=["misspelt-key", "check-without-threshold"],
)
def test_bad_thresholds_are_usage_errors(
    tmp_path: Path, smile_probes: Path, pattern: str, replacement: str, expected: str
) -> None:
    text = (ROOT / "thresholds.yaml").read_text()
    edited, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1
    bad = tmp_path / "thresholds.yaml"
    bad.write_text(edited)
    run = run_gate(tmp_path, "--probes", smile_probes, "--thresholds", bad)
    assert run.returncode == 4, run.output
    assert expected in run.output and str(bad) in run.output
    assert run.verdict is not None and run.verdict["passed"] is False
    assert expected in run.verdict["errors"][0]


def test_missing_probe_image_is_a_usage_error(tmp_path: Path, smile_probes: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    lines = (smile_probes / "manifest.jsonl").read_text().splitlines()
    (broken / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    run = run_gate(tmp_path, "--probes", broken)
    assert run.returncode == 4, run.output
    assert "manifest.jsonl:1:" in run.output and "not found" in run.output


def test_card_naming_a_missing_artifact_is_a_usage_error(
    tmp_path: Path, smile_probes: Path
) -> None:
    card = tmp_path / "model.yaml"
    card.write_text(REFERENCE_CARD.read_text().replace("weights.pt", "absent.pt"))
    run = run_gate(tmp_path, "--probes", smile_probes, "--model", card)
    assert run.returncode == 4, run.output
    assert str(card) in run.output and "artifact" in run.output and "absent.pt" in run.output


def test_dash_k_selects_stability_of_lime(tmp_path: Path, smile_probes_with_variants: Path) -> None:
    """With the shipped thresholds: `-k "stability and lime"` runs just those cases."""
    run = run_gate(
        tmp_path,
        "--probes",
        smile_probes_with_variants,
        "-k",
        "stability and lime",
        "--collect-only",
        "-q",
    )
    assert run.returncode == 0, run.output
    ids = [line for line in run.output.splitlines() if line.startswith("suites/")]
    assert len(ids) == 3 * 2, run.output  # reproducibility, rank and IoU, for two classes
    assert all(line.startswith("suites/test_stability.py::") and "-lime-" in line for line in ids)


def test_partial_run_is_not_a_pass(tmp_path: Path, smile_probes: Path) -> None:
    """`-k` selects a subset: pytest passes, but the verdict says the gate did not complete."""
    thresholds = fast_thresholds(tmp_path)
    run = run_gate(tmp_path, "--probes", smile_probes, "--thresholds", thresholds, "-k", "accuracy")
    assert run.returncode == 0, run.output
    assert run.verdict is not None
    assert run.verdict["passed"] is False and run.verdict["complete"] is False
    assert [result["check"] for result in run.verdict["results"]] == ["model_accuracy"]
    assert len(run.verdict["not_run"]) == run.verdict["configured"] - 1
    assert "gate INCOMPLETE" in run.output
    # The progress line counts the group's cases that run, not all it has configured.
    assert "xaigate: smile-cnn-model: starting (1 case)" in run.output, run.output


def _values(run: GateRun) -> dict[str, tuple[str, float | None, float | None]]:
    assert run.verdict is not None, run.output
    return {r["id"]: (r["status"], r["value"], r["bound"]) for r in run.verdict["results"]}


def _same_values(a: dict, b: dict) -> bool:
    # Batches of a different make-up may move a gradient map in the 8th decimal.
    return a.keys() == b.keys() and all(
        a[key][0] == b[key][0]
        and all(
            x == y or (x is not None and y is not None and abs(x - y) < 1e-5)
            for x, y in zip(a[key][1:], b[key][1:], strict=True)
        )
        for key in a
    )


def test_xdist_workers_and_merged_shards_give_the_single_run_verdict(
    tmp_path: Path, smile_probes: Path
) -> None:
    given = ("--probes", smile_probes, "--thresholds", fast_thresholds(tmp_path))
    single = run_gate(tmp_path, *given)
    assert single.returncode == 0 and single.verdict and single.verdict["passed"], single.output
    # The run knows its own efficiency: time inside the model, within the wall time.
    provenance = single.verdict["provenance"]
    assert 0 < provenance["model_seconds"] <= provenance["wall_seconds"]
    assert provenance["wall_over_model"] >= 1.0

    parallel = run_gate(tmp_path, *given, "-n", "2", "--dist", "loadgroup", "-v")
    assert parallel.returncode == 0, parallel.output
    assert parallel.verdict is not None and parallel.verdict["passed"] is True
    assert parallel.verdict["provenance"]["workers"] == 2
    # Each model-and-explainer group ran whole on one worker (both were used): split, both
    # workers would compute the same maps.
    worker_of = {
        f"{test}[{case}]": worker
        for worker, test, case in re.findall(
            r"^\[(gw\d)\] .*?::test_(\w+)\[([^\]]+)\]", parallel.output, re.MULTILINE
        )
    }
    workers_of_group: dict[str, set[str]] = {}
    for result in parallel.verdict["results"]:
        group = f"{result['model']}-{result['explainer'] or 'model'}"
        workers_of_group.setdefault(group, set()).add(worker_of[result["id"]])
    assert len(workers_of_group) >= 3 and set.union(*workers_of_group.values()) == {"gw0", "gw1"}
    assert all(len(workers) == 1 for workers in workers_of_group.values()), workers_of_group
    assert parallel.verdict["provenance"]["model_seconds"] > 0  # summed over the workers
    # The controller's progress lines count each group's cases, as its workers collected them.
    lime_cases = sum(1 for result in parallel.verdict["results"] if result["explainer"] == "lime")
    assert f"xaigate: smile-cnn-lime: starting ({lime_cases} cases)" in parallel.output
    assert _same_values(_values(single), _values(parallel))

    parts = []
    for index in (1, 2):
        part = run_gate(tmp_path, *given, "--shard", f"{index}/2")
        assert part.returncode == 0, part.output
        assert part.verdict is not None and part.verdict["complete"] is False
        assert part.verdict["passed"] is False and part.verdict["shard"] == f"{index}/2"
        assert f"gate INCOMPLETE (shard {index}/2)" in part.output
        path = tmp_path / f"shard-{index}.json"
        path.write_text(json.dumps(part.verdict))
        parts.append(path)
    # Every case ran in exactly one shard.
    ids = [set(json.loads(path.read_text())["timings"]) for path in parts]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == set(_values(single))

    merged_path = tmp_path / "merged.json"
    assert merge.main([*map(str, parts), "--out", str(merged_path)]) == 0
    merged = GateRun(0, "", json.loads(merged_path.read_text()))
    assert merged.verdict is not None
    assert merged.verdict["passed"] is True and merged.verdict["complete"] is True
    assert _same_values(_values(single), _values(merged))
    # One shard alone is not the whole gate.
    assert merge.main([str(parts[0]), "--out", str(tmp_path / "half.json")]) == 1


def test_bad_shard_option_is_a_usage_error(tmp_path: Path, smile_probes: Path) -> None:
    run = run_gate(tmp_path, "--probes", smile_probes, "--shard", "3/2", "--collect-only")
    assert run.returncode == 4, run.output
    assert "--shard 3/2" in run.output


def test_shipped_thresholds_open_a_gate_with_latency(smile_probes_with_variants: Path) -> None:
    """The shipped thresholds.yaml, latency section included, opens a gate on the reference
    model (the end-to-end runs above use cut-down copies)."""
    from xaigate.context import GateContext
    from xaigate.gate import Gate

    context = GateContext.open(
        ROOT / "thresholds.yaml", [REFERENCE_CARD], smile_probes_with_variants
    )
    gate = Gate(context)
    assert (
        gate.cases("latency") and gate.cases("region_focus") and gate.cases("occlusion_flip_rate")
    )
