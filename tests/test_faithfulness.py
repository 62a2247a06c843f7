"""Deletion and insertion: known answers on a model that reads one pixel window, and batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from gate_runner import REFERENCE_CARD, ROOT

from xaigate.context import GateContext
from xaigate.gate import FAILED, NOT_APPLICABLE, PASSED, Gate
from xaigate.metrics import faithfulness
from xaigate.metrics.faithfulness import (
    area_under_curve,
    baseline_images,
    clear_caches,
    deletion_curves,
    deletion_ratio,
    evident_baselines,
    insertion_curves,
    insertion_ratio,
    patch_orders,
    pixel_orders,
    random_maps,
    random_orders,
)
from xaigate.models.card import load_card
from xaigate.models.loading import load_model
from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces

SHAPE = (16, 16)
WINDOW = (slice(4, 8), slice(4, 8))  # the only pixels the synthetic model looks at
SMILE = TASK_CLASSES["smile"].index("smile")
CURVES = (deletion_curves, insertion_curves)


def window_model(images: np.ndarray) -> np.ndarray:
    """Two classes; P(class 1) = sigmoid of the window's mean brightness, centred on 0.5."""
    brightness = images[:, WINDOW[0], WINDOW[1], :].mean(axis=(1, 2, 3))
    p = 1.0 / (1.0 + np.exp(-10.0 * (brightness - 0.5)))
    return np.stack([1.0 - p, p], axis=1)


class Counted:
    """predict_proba that records the batch size of every call."""

    def __init__(self, predict_proba) -> None:  # noqa: ANN001
        self.predict_proba = predict_proba
        self.sizes: list[int] = []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.sizes.append(len(images))
        return self.predict_proba(images)


def window_images(count: int, seed: int = 0) -> np.ndarray:
    images = np.random.default_rng(seed).random((count, *SHAPE, 3), dtype=np.float32)
    images[:, WINDOW[0], WINDOW[1], :] = 1.0
    return images


def window_maps(count: int) -> np.ndarray:
    maps = np.zeros((count, *SHAPE))
    maps[:, WINDOW[0], WINDOW[1]] = 1.0
    return maps


def both_aucs(maps: np.ndarray, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    targets = np.ones(len(images), dtype=np.int64)
    options = {"baseline": "black", "steps": 20}
    deletion = deletion_curves(window_model, images, maps, targets, **options)
    insertion = insertion_curves(window_model, images, maps, targets, **options)
    return area_under_curve(deletion), area_under_curve(insertion)


def test_map_on_the_window_beats_random_order_by_far() -> None:
    images = window_images(8)
    deletion, insertion = both_aucs(window_maps(8), images)
    random_deletion, random_insertion = both_aucs(random_maps(8, SHAPE, seed=1), images)

    assert (deletion < 0.1).all() and (random_deletion > 0.3).all()
    assert (insertion > 0.85).all() and (random_insertion < 0.7).all()
    assert (deletion_ratio(deletion, random_deletion) < 0.25).all()
    assert (insertion_ratio(insertion, random_insertion) > 1.3).all()


def test_window_last_is_worse_than_random() -> None:
    images = window_images(4)
    deletion, insertion = both_aucs(1.0 - window_maps(4), images)
    random_deletion, random_insertion = both_aucs(random_maps(4, SHAPE, seed=2), images)
    assert (deletion > random_deletion).all() and (insertion < random_insertion).all()


def test_perfect_order_beats_random_orders() -> None:
    images = window_images(3)
    window_first = np.argsort(~window_maps(1)[0].astype(bool).ravel(), kind="stable")
    perfect = np.tile(window_first, (3, 1))
    deletion, insertion = both_aucs(perfect, images)
    for seed in range(5):
        random_deletion, random_insertion = both_aucs(random_orders(3, SHAPE, seed), images)
        assert (deletion < random_deletion).all() and (insertion > random_insertion).all()


def test_curves_run_from_intact_to_baseline_and_back() -> None:
    images = window_images(5)
    targets = np.array([0, 1, 1, 0, 1])
    maps = random_maps(5, SHAPE, seed=3)
    blurred = baseline_images(images, "blur", blur_sigma=2.0)
    intact = window_model(images)[np.arange(5), targets]
    base = window_model(blurred)[np.arange(5), targets]

    deletion = deletion_curves(window_model, images, maps, targets, steps=7, blur_sigma=2.0)
    insertion = insertion_curves(window_model, images, maps, targets, steps=7, blur_sigma=2.0)

    assert deletion.shape == insertion.shape == (5, 8) and deletion.dtype == np.float64
    np.testing.assert_allclose(deletion[:, 0], intact)
    np.testing.assert_allclose(deletion[:, -1], base)
    np.testing.assert_allclose(insertion[:, 0], base)
    np.testing.assert_allclose(insertion[:, -1], intact)
    assert area_under_curve(deletion).shape == (5,)


@pytest.mark.parametrize("count", [1, 40])
def test_one_call_per_step_whatever_the_number_of_images(count: int) -> None:
    images, maps = window_images(count), random_maps(count, SHAPE, seed=4)
    targets = np.ones(count, dtype=np.int64)
    for curves in (deletion_curves, insertion_curves):
        one_step_each = Counted(window_model)
        curves(one_step_each, images, maps, targets, steps=20, batch_size=1)
        assert one_step_each.sizes == [count] * 21

        stacked = Counted(window_model)
        curves(stacked, images, maps, targets, steps=20)
        assert len(stacked.sizes) <= 21 and all(size % count == 0 for size in stacked.sizes)
        assert sum(stacked.sizes) == 21 * count


def test_batched_curves_equal_curves_of_one_image_at_a_time() -> None:
    images, maps = window_images(6), random_maps(6, SHAPE, seed=5)
    targets = np.array([1, 0, 1, 0, 1, 0])
    together = deletion_curves(window_model, images, maps, targets, steps=10, batch_size=25)
    alone = np.concatenate(
        [
            deletion_curves(window_model, images[i : i + 1], maps[i : i + 1], targets[i : i + 1])[
                :, ::2
            ]  # steps=20 visits every point of steps=10 (256 pixels split evenly)
            for i in range(6)
        ]
    )
    np.testing.assert_allclose(together, alone)


def test_maps_and_the_orders_they_induce_give_the_same_curves() -> None:
    images = window_images(4)
    targets = np.ones(4, dtype=np.int64)
    maps = random_maps(4, SHAPE, seed=6)
    assert np.array_equal(pixel_orders(maps), random_orders(4, SHAPE, seed=6))
    from_maps = insertion_curves(window_model, images, maps, targets, baseline="mean")
    from_orders = insertion_curves(
        window_model, images, random_orders(4, SHAPE, seed=6), targets, baseline="mean"
    )
    np.testing.assert_array_equal(from_maps, from_orders)


def test_ties_keep_raster_order() -> None:
    maps = np.zeros((1, 3, 4))
    maps[0, 2, 1] = 1.0
    assert pixel_orders(maps)[0].tolist() == [9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11]


def test_patch_orders_move_whole_patches_best_first() -> None:
    maps = np.zeros((1, 4, 6))
    maps[0, 2:4, 2:4] = 1.0  # the middle 2x2 patch of the lower row
    maps[0, 0, 5] = 0.5  # one pixel lifts the top-right patch's mean to 0.125
    order = patch_orders(maps, 2)[0]
    assert order[:4].tolist() == [14, 15, 20, 21]
    assert order[4:8].tolist() == [4, 5, 10, 11]
    # The rest: patches in raster order, each patch's pixels in raster order.
    assert order[8:].tolist() == [0, 1, 6, 7, 2, 3, 8, 9, 12, 13, 18, 19, 16, 17, 22, 23]
    assert sorted(order.tolist()) == list(range(24))


def test_patch_orders_of_one_pixel_are_pixel_orders_and_edges_are_partial() -> None:
    maps = random_maps(3, (5, 7), seed=2)
    assert np.array_equal(patch_orders(maps, 1), pixel_orders(maps))
    orders = patch_orders(maps, 3)  # 3 does not divide 5 or 7: edge patches are smaller
    for order in orders:
        assert sorted(order.tolist()) == list(range(35))
    with pytest.raises(ValueError, match="at least 1"):
        patch_orders(maps, 0)


def test_patch_order_of_a_perfect_map_beats_random_patch_orders() -> None:
    images = window_images(6)
    targets = np.ones(6, dtype=np.int64)
    perfect = np.zeros((6, *SHAPE))
    perfect[:, WINDOW[0], WINDOW[1]] = 1.0
    auc = area_under_curve(
        deletion_curves(window_model, images, patch_orders(perfect, 4), targets, baseline="black")
    )
    random_auc = area_under_curve(
        deletion_curves(
            window_model,
            images,
            patch_orders(random_maps(6, SHAPE, seed=3), 4),
            targets,
            baseline="black",
        )
    )
    ratio = deletion_ratio(auc, random_auc)
    # A random order that happens to start with the window ties; on average it is far behind.
    assert np.all(ratio <= 1.0 + 1e-9)
    assert ratio.mean() < 0.5


def test_baselines() -> None:
    flat = np.full((2, *SHAPE, 3), 0.3, dtype=np.float32)
    np.testing.assert_allclose(baseline_images(flat, "blur"), flat, atol=1e-6)
    images = window_images(2)
    assert not baseline_images(images, "black").any()
    mean = baseline_images(images, "mean")
    np.testing.assert_allclose(mean[:, 0, 0], images.mean(axis=(1, 2)), rtol=1e-6)
    assert np.ptp(mean, axis=(1, 2)).max() == 0.0
    with pytest.raises(ValueError, match="baseline 'grey'"):
        baseline_images(images, "grey")  # type: ignore[arg-type]


def test_evident_baselines_fall_back_per_image() -> None:
    # Image 0 is white all over: its mean colour is white too, which the window model reads as
    # the class, so it falls back to black; image 1's mean colour (about 0.52) carries little.
    images = window_images(2)
    images[0] = 1.0
    targets = np.ones(2, dtype=np.int64)
    chosen_images, chosen = evident_baselines(
        window_model, images, targets, ("mean", "black"), min_evidence=0.1
    )
    np.testing.assert_array_equal(chosen, [1, 0])
    assert not chosen_images[0].any()
    np.testing.assert_allclose(chosen_images[1], baseline_images(images[1:], "mean")[0])
    # With no candidate left, the image keeps the first and is marked -1.
    kept, none = evident_baselines(window_model, images, targets, ("mean",), min_evidence=0.1)
    np.testing.assert_array_equal(none, [-1, 0])
    np.testing.assert_allclose(kept[0], images[0])


def test_area_under_curve_known_answers() -> None:
    curves = np.array([[0.4, 0.4, 0.4], [1.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(area_under_curve(curves), [0.4, 0.5, 0.25])


def test_ratio_is_nan_where_random_auc_vanishes() -> None:
    ratio = deletion_ratio(np.array([0.2, 0.1]), np.array([[0.4, 0.0], [0.4, 0.0]]))
    assert ratio[0] == pytest.approx(0.5) and np.isnan(ratio[1])
    assert insertion_ratio(np.array([0.9]), np.array([0.6]))[0] == pytest.approx(1.5)


def test_baseline_level_is_taken_off_both_areas() -> None:
    # Curves from 1.0 down to a baseline the model still gives 0.6: the map's curve drops at
    # once, the random one linearly.
    explained = np.array([[1.0, 0.6, 0.6, 0.6, 0.6]])
    random = np.array([[1.0, 0.9, 0.8, 0.7, 0.6]])
    auc, random_auc = area_under_curve(explained), area_under_curve(random)
    np.testing.assert_allclose([auc[0], random_auc[0]], [0.65, 0.8])
    # Raw, the ratio is squeezed towards 1; above the shared level it is 0.05 / 0.2.
    assert deletion_ratio(auc, random_auc)[0] == pytest.approx(0.8125)
    assert deletion_ratio(auc, random_auc, level=0.6)[0] == pytest.approx(0.25)
    # A random area barely above the level is undefined, not a huge or tiny ratio.
    assert np.isnan(insertion_ratio(np.array([0.7]), np.array([0.605]), level=0.6, floor=0.01))[0]


def test_invalid_inputs_are_refused() -> None:
    images, targets = window_images(2), np.ones(2, dtype=np.int64)
    not_a_permutation = np.zeros((2, SHAPE[0] * SHAPE[1]), dtype=np.int64)
    with pytest.raises(ValueError, match="permutation"):
        deletion_curves(window_model, images, not_a_permutation, targets)
    with pytest.raises(ValueError, match="maps must be"):
        deletion_curves(window_model, images, np.zeros((2, 8, 8)), targets)
    with pytest.raises(ValueError, match="NaN"):
        deletion_curves(window_model, images, np.full((2, *SHAPE), np.nan), targets)
    with pytest.raises(ValueError, match="targets"):
        deletion_curves(window_model, images, window_maps(2), targets[:1])


def test_mouth_first_deletes_a_smile_faster_than_random_order() -> None:
    model = load_model(load_card(REFERENCE_CARD))
    faces = [face for face in generate_faces(24, seed=31) if face.label == "smile"]
    images, targets = faces_to_arrays(faces, TASK_CLASSES["smile"])
    assert (targets == SMILE).all()
    mouth = np.stack([face.regions["mouth"] for face in faces]).astype(np.float64)
    shape = images.shape[1:3]

    deletion = area_under_curve(deletion_curves(model.predict_proba, images, mouth, targets))
    insertion = area_under_curve(insertion_curves(model.predict_proba, images, mouth, targets))
    random_deletion = np.stack(
        [
            area_under_curve(
                deletion_curves(model.predict_proba, images, random_maps(12, shape, s), targets)
            )
            for s in range(2)
        ]
    )
    random_insertion = area_under_curve(
        insertion_curves(model.predict_proba, images, random_maps(12, shape, 0), targets)
    )

    assert deletion.mean() < random_deletion.mean() - 0.2
    assert np.nanmean(deletion_ratio(deletion, random_deletion)) < 0.7
    assert insertion.mean() > random_insertion.mean()


def test_a_precomputed_baseline_gives_the_same_curves() -> None:
    images, maps = window_images(3), random_maps(3, SHAPE, seed=7)
    targets = np.ones(3, dtype=np.int64)
    blurred = baseline_images(images, "blur")
    for curves in (deletion_curves, insertion_curves):
        named = curves(window_model, images, maps, targets)
        given = curves(window_model, images, maps, targets, baseline=blurred)
        np.testing.assert_array_equal(named, given)


def test_cached_blur_and_orders_give_the_curves_computed_afresh() -> None:
    images, maps = window_images(4), random_maps(4, SHAPE, seed=8)
    targets = np.ones(4, dtype=np.int64)
    clear_caches()
    fresh = [curves(window_model, images, maps, targets) for curves in CURVES]
    assert faithfulness._CACHE.entries  # the blur and the orders were kept
    again = [curves(window_model, images, maps, targets) for curves in CURVES]
    for first, second in zip(fresh, again, strict=True):
        np.testing.assert_array_equal(first, second)
    uncached = deletion_curves(
        window_model, images, pixel_orders(maps), targets, baseline=baseline_images(images)
    )
    np.testing.assert_array_equal(fresh[0], uncached)


def test_cache_follows_the_content_not_the_array() -> None:
    images, maps = window_images(2), window_maps(2)
    targets = np.ones(2, dtype=np.int64)
    before = deletion_curves(window_model, images, maps, targets)
    images[:, WINDOW[0], WINDOW[1], :] = 0.0  # the same array, edited in place
    maps[:, WINDOW[0], WINDOW[1]] = 0.0
    after = deletion_curves(window_model, images, maps, targets)
    expected = deletion_curves(
        window_model, images, pixel_orders(maps), targets, baseline=baseline_images(images)
    )
    np.testing.assert_array_equal(after, expected)
    assert not np.array_equal(before, after)


def test_cache_stays_within_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = faithfulness._ContentCache(max_bytes=3 * 8 * SHAPE[0] * SHAPE[1])
    monkeypatch.setattr(faithfulness, "_CACHE", cache)
    targets = np.ones(1, dtype=np.int64)
    for seed in range(5):
        images, maps = window_images(1, seed), random_maps(1, SHAPE, seed)
        deletion_curves(window_model, images, maps, targets)
        assert cache.bytes <= cache.max_bytes
    assert cache.bytes == sum(value.nbytes for value in cache.entries.values())


def test_class_the_model_gives_to_the_baselines_is_not_measurable(
    tmp_path: Path, smile_probes: Path
) -> None:
    """The zoo's flat-pixel MLP reads blurred and black faces as smiles (p 0.8-0.9): insertion
    has no evidence to restore for `smile`, so that case is reported not applicable with the
    counts, while `not_smile` is judged."""
    content = yaml.safe_load((ROOT / "thresholds.yaml").read_text())
    content["explainers"] = {"integrated_gradients": content["explainers"]["integrated_gradients"]}
    insertion = content["checks"]["insertion_ratio"]
    insertion["params"]["classes"] = ["smile", "not_smile"]
    content["checks"] = {"insertion_ratio": insertion}
    content.pop("latency")
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    card = ROOT / "models" / "zoo" / "good-mlp" / "seed-0" / "model.yaml"
    gate = Gate(GateContext.open(path, [card], smile_probes))
    results = {case.target: gate.run(case) for case in gate.cases("insertion_ratio")}
    assert results["smile"].status == NOT_APPLICABLE, results["smile"].message
    assert "measurable" in results["smile"].message and "baseline" in results["smile"].message
    assert results["not_smile"].status in (PASSED, FAILED), results["not_smile"].message
    assert results["not_smile"].n >= 10
