"""Evidence figures: colour map, overlays, grids, plots, PNG bytes; drawn from a judged case
without changing its value."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import yaml
from gate_runner import REFERENCE_CARD, ROOT
from PIL import Image

from xaigate.checks.registry import Direction
from xaigate.context import GateContext
from xaigate.evidence import (
    case_figures,
    class_grid,
    confusion_matrix,
    confusion_plot,
    curve_plot,
    diverging_colours,
    is_png,
    overlay,
    png_bytes,
    tile_grid,
)
from xaigate.evidence.figures import worst_and_best
from xaigate.evidence.render import NEGATIVE, POSITIVE
from xaigate.gate import Gate


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB"))


def test_diverging_colours_white_at_zero_red_positive_blue_negative() -> None:
    attribution = np.array([[0.0, 2.0, -2.0, 1.0]])
    colours = diverging_colours(attribution)
    assert colours[0, 0].tolist() == [255, 255, 255]
    assert colours[0, 1].tolist() == POSITIVE.astype(int).tolist()
    assert colours[0, 2].tolist() == NEGATIVE.astype(int).tolist()
    # Half the peak lies half-way between white and red.
    assert colours[0, 3].tolist() == np.rint((255 + POSITIVE) / 2).astype(int).tolist()
    assert (diverging_colours(np.zeros((2, 2))) == 255).all()  # all white, no division by zero


def test_overlay_keeps_the_image_where_the_map_is_zero_and_scales_up() -> None:
    image = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    attribution = np.zeros((8, 8))
    attribution[2, 3] = 5.0
    picture = overlay(image, attribution, scale=4)
    assert picture.shape == (32, 32, 3) and picture.dtype == np.uint8
    plain = np.rint(image * 255).astype(np.uint8)
    assert np.array_equal(picture[::4, ::4][0], plain[0])  # row 0 carries no attribution
    # The peak takes 70% of the positive colour over the image.
    expected = np.rint(0.3 * plain[2, 3].astype(float) + 0.7 * POSITIVE).astype(np.uint8)
    assert np.array_equal(picture[8, 12], expected) and np.array_equal(picture[11, 15], expected)


def test_png_round_trip_and_rejections() -> None:
    picture = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    data = png_bytes(picture)
    assert is_png(data) and np.array_equal(decoded(data), picture)
    assert png_bytes(picture) == data  # the same figure gives the same bytes
    assert not is_png(data[: len(data) // 2])  # signature, but does not decode
    assert not is_png(b"GIF89a" + data[6:])


def test_tile_grid_lays_out_rows_and_refuses_mixed_sizes() -> None:
    tiles = [np.full((4, 6, 3), value, dtype=np.uint8) for value in (10, 20, 30)]
    grid = tile_grid(tiles, columns=2, gap=1)
    assert grid.shape == (2 * 4 + 3, 2 * 6 + 3, 3)
    assert grid[1, 1, 0] == 10 and grid[1, 8, 0] == 20 and grid[6, 1, 0] == 30
    assert grid[6, 8, 0] == 255  # the empty slot stays white
    with pytest.raises(ValueError, match="tile 1"):
        tile_grid([tiles[0], np.zeros((5, 6, 3), np.uint8)], columns=2)


def test_worst_and_best_follow_the_direction_and_undefined_is_worst() -> None:
    values = {"a": 0.2, "b": 0.9, "c": 0.5}
    assert worst_and_best(values, Direction.HIGHER) == ("a", "b")
    assert worst_and_best(values, Direction.LOWER) == ("b", "a")
    assert worst_and_best({**values, "d": float("nan")}, Direction.LOWER)[0] == "d"
    assert worst_and_best({**values, "d": None}, Direction.HIGHER)[0] == "d"


def test_confusion_matrix_counts_and_plots() -> None:
    matrix = confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], 2)
    assert matrix.tolist() == [[1, 1], [1, 2]]
    picture = confusion_plot(matrix, ["not_smile", "smile"], title="m")
    assert picture.ndim == 3 and is_png(png_bytes(picture))
    curves = curve_plot(
        {"map": [1.0, 0.5, 0.1], "random": [1.0, 0.8, 0.3]}, title="t", x_label="x", y_label="y"
    )
    assert curves.shape == (320, 480, 3) and (curves != 255).any()


@pytest.fixture(scope="module")
def gradcam_context(tmp_path_factory: pytest.TempPathFactory, smile_probes: Path) -> GateContext:
    """The reference model gated by Grad-CAM only, on region focus, deletion and accuracy."""
    shipped = yaml.safe_load((ROOT / "thresholds.yaml").read_text())
    shipped["explainers"] = {"gradcam": shipped["explainers"]["gradcam"]}
    checks = ("model_accuracy", "region_focus", "deletion_ratio")
    shipped["checks"] = {name: shipped["checks"][name] for name in checks}
    shipped.pop("latency")
    path = tmp_path_factory.mktemp("evidence") / "thresholds.yaml"
    path.write_text(yaml.safe_dump(shipped))
    return GateContext.open(path, [REFERENCE_CARD], smile_probes)


def test_case_figures_are_pngs_and_leave_the_values_alone(gradcam_context: GateContext) -> None:
    gate = Gate(gradcam_context)
    names = {}
    for check in ("model_accuracy", "region_focus", "deletion_ratio"):
        case = gate.cases(check)[-1]  # the smile class for the per-class checks
        result = gate.run(case)
        before = result.to_json()
        figures = case_figures(gradcam_context, result)
        assert figures and all(is_png(figure.png) for figure in figures)
        names[check] = [figure.name for figure in figures]
        assert result.to_json() == before
        # A fresh gate on the same inputs, with no figure drawn, gives the same result.
        assert Gate(gradcam_context).run(case).to_json() == before
    assert names["model_accuracy"] == ["confusion matrix"]
    worst, best = names["region_focus"]
    assert worst.startswith("heatmap worst: face-") and "region_focus" in worst
    assert best.startswith("heatmap best: face-")
    assert names["deletion_ratio"][-1] == "deletion_ratio curves"
    assert len(names["deletion_ratio"]) == 3  # worst and best heatmaps, and the curves


def test_class_grid_shows_the_first_images_of_a_class(gradcam_context: GateContext) -> None:
    figure = class_grid(gradcam_context, "smile-cnn", "gradcam", "smile")
    assert figure.name.startswith("grid smile-cnn gradcam smile")
    picture = decoded(figure.png)
    assert picture.shape == (2 * 256 + 3 * 4, 6 * 256 + 7 * 4, 3)  # 12 images of 64 px at 4x
