"""Explainers: LIME is reproducible from its seed and computes what lime computes; Grad-CAM maps
are well-formed."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from gate_runner import REFERENCE_CARD, ROOT
from lime import lime_image

from xaigate.explainers import EXPLAINERS
from xaigate.explainers.gradcam import GradCamConfig
from xaigate.explainers.lime_explainer import (
    LimeConfig,
    LimeExplainer,
    _LimeImageExplainer,
    segment,
    segment_means,
)
from xaigate.explainers.masking import MaskedImages
from xaigate.models.card import load_card
from xaigate.models.loading import load_model
from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces

LIME_CONFIG = LimeConfig(num_samples=300)


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    return load_model(load_card(REFERENCE_CARD))


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    return faces_to_arrays(generate_faces(4, seed=21), TASK_CLASSES["smile"])


def lime_maps(model, images: np.ndarray, targets: np.ndarray, seeds: list[int]) -> np.ndarray:  # noqa: ANN001
    explainer = EXPLAINERS["lime"](LIME_CONFIG)
    return np.stack([e.attribution for e in explainer.explain(model, images, targets, seeds)])


def test_lime_same_seed_same_map_in_one_process(model, faces) -> None:  # noqa: ANN001
    images, labels = faces
    first = lime_maps(model, images, labels, [5, 6, 7, 8])
    # Explaining something else in between must not shift the perturbations.
    lime_maps(model, images[:1], labels[:1], [99])
    again = lime_maps(model, images, labels, [5, 6, 7, 8])
    assert first.shape == (4, 64, 64) and first.dtype == np.float32
    assert np.array_equal(first, again)


def test_lime_different_seed_different_map(model, faces) -> None:  # noqa: ANN001
    images, labels = faces
    one = lime_maps(model, images[:1], labels[:1], [1])
    other = lime_maps(model, images[:1], labels[:1], [2])
    assert not np.array_equal(one, other)


def test_lime_same_seed_same_map_across_processes(model, faces) -> None:  # noqa: ANN001
    images, labels = faces
    here = hashlib.sha256(lime_maps(model, images[:2], labels[:2], [5, 6]).tobytes()).hexdigest()
    script = (
        "import hashlib, numpy as np\n"
        "from xaigate.explainers import EXPLAINERS\n"
        "from xaigate.explainers.lime_explainer import LimeConfig\n"
        "from xaigate.models.card import load_card\n"
        "from xaigate.models.loading import load_model\n"
        "from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces\n"
        f"model = load_model(load_card({str(REFERENCE_CARD)!r}))\n"
        "images, labels = faces_to_arrays(generate_faces(4, seed=21), TASK_CLASSES['smile'])\n"
        "explainer = EXPLAINERS['lime'](LimeConfig(num_samples=300))\n"
        "maps = explainer.explain(model, images[:2], labels[:2], [5, 6])\n"
        "print(hashlib.sha256(np.stack([m.attribution for m in maps]).tobytes()).hexdigest())\n"
    )
    there = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert there == here


def test_lime_records_its_parameters(model, faces) -> None:  # noqa: ANN001
    images, labels = faces
    [explanation] = EXPLAINERS["lime"](LIME_CONFIG).explain(model, images[:1], labels[:1], [3])
    assert explanation.method == "lime" and explanation.seed == 3
    assert explanation.params["num_samples"] == 300 and explanation.seconds > 0
    assert explanation.extras["segments"] > 10  # SLIC, not quickshift's handful


def test_masked_images_are_np_where_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    kept = rng.random((4, 5, 3), dtype=np.float32)
    replaced = rng.random((4, 5, 3), dtype=np.float32)
    special = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-45, -3.4e38]
    kept.flat[: len(special)] = special
    replaced.flat[-len(special) :] = special[::-1]
    masks = rng.random((6, kept.size)) < 0.5
    expected = np.where(masks.reshape(6, 4, 5, 3), replaced, kept)
    blend = MaskedImages(kept, replaced)
    bit_masks = np.where(masks, np.uint32(0xFFFFFFFF), np.uint32(0))
    for images in (blend.images(masks), blend.images_from_bit_masks(bit_masks)):
        assert images.shape == (6, 4, 5, 3) and images.dtype == np.float32
        assert images.tobytes() == expected.tobytes()  # NaN payloads and -0.0 included


class Recorder:
    """predict_proba that keeps a float32 copy of every batch it is given."""

    def __init__(self, model) -> None:  # noqa: ANN001
        self.model = model
        self.batches: list[np.ndarray] = []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.batches.append(np.asarray(images, dtype=np.float32))
        return self.model.predict_proba(self.batches[-1])


def test_lime_perturbations_are_lime_own(model, faces) -> None:  # noqa: ANN001
    """The vectorised data_labels draws, builds and classifies what lime 0.2.0.1's loop does."""
    images, _ = faces
    image = images[0].astype(np.float64)
    segments = segment(image, LIME_CONFIG)
    fill = segment_means(image, segments)
    results = []
    for explainer_class in (lime_image.LimeImageExplainer, _LimeImageExplainer):
        recorder = Recorder(model)
        explainer = explainer_class(random_state=4)
        with mock.patch.object(lime_image, "tqdm", lambda iterable, **_: iterable):
            data, labels = explainer.data_labels(image, fill, segments, recorder, 70, 16)
        results.append((data, labels, recorder.batches))
    (data, labels, batches), (fast_data, fast_labels, fast_batches) = results
    assert [len(b) for b in fast_batches] == [len(b) for b in batches] == [16] * 4 + [6]
    assert np.array_equal(fast_data, data) and np.array_equal(fast_labels, labels)
    for fast, slow in zip(fast_batches, batches, strict=True):
        assert np.array_equal(fast, slow)


def test_lime_map_is_stock_lime_map_with_one_ridge_fit(model, faces) -> None:  # noqa: ANN001
    """Every segment's weight is what stock lime (default feature selection) gives, from one
    ridge fit per explanation instead of lime's ranking fit plus the fit that counts."""
    from lime import lime_base

    images, labels = faces
    image, target, seed = images[2], int(labels[2]), 9
    segments = segment(image.astype(np.float64), LIME_CONFIG)
    stock = lime_image.LimeImageExplainer(random_state=seed)
    with mock.patch.object(lime_image, "tqdm", lambda iterable, **_: iterable):
        expected = stock.explain_instance(
            image.astype(np.float64),
            model.predict_proba,
            labels=(target,),
            top_labels=None,
            num_features=int(segments.max()) + 1,
            num_samples=LIME_CONFIG.num_samples,
            segmentation_fn=lambda _: segments,
            hide_color=segment_means(image.astype(np.float64), segments),
            random_seed=seed,
        )
    weights = np.zeros(int(segments.max()) + 1)
    for segment_id, weight in expected.local_exp[target]:
        weights[segment_id] = weight
    with mock.patch.object(lime_base, "Ridge", side_effect=lime_base.Ridge) as ridge:
        found = LimeExplainer(LIME_CONFIG).explain(model, images[2:3], labels[2:3], [seed])
    assert ridge.call_count == 1
    assert np.abs(weights).max() > 0
    np.testing.assert_allclose(found[0].attribution, weights[segments], rtol=0, atol=1e-6)


def test_lime_fill_is_lime_own_segment_mean(faces) -> None:  # noqa: ANN001
    images, _ = faces
    image = images[1].astype(np.float64)
    segments = segment(image, LIME_CONFIG)
    expected = image.copy()  # lime_image.explain_instance with hide_color=None
    for x in np.unique(segments):
        expected[segments == x] = (
            np.mean(image[segments == x][:, 0]),
            np.mean(image[segments == x][:, 1]),
            np.mean(image[segments == x][:, 2]),
        )
    assert np.array_equal(segment_means(image, segments), expected)


def test_lime_segmentation_is_computed_once_per_image(model, faces) -> None:  # noqa: ANN001
    images, labels = faces
    explainer = LimeExplainer(LIME_CONFIG)
    with mock.patch("xaigate.explainers.lime_explainer.segment", side_effect=segment) as counted:
        first = explainer.explain(model, images[:2], labels[:2], [5, 6])
        again = explainer.explain(model, images[:2], 1 - labels[:2], [5, 6])
    assert counted.call_count == 2  # the other class reuses each image's segments
    fresh = lime_maps(model, images[:2], 1 - labels[:2], [5, 6])
    assert np.array_equal(np.stack([e.attribution for e in again]), fresh)
    assert not np.array_equal(first[0].attribution, again[0].attribution)


class _CountingModel:
    """The model, counting the images it is asked to classify."""

    def __init__(self, model) -> None:  # noqa: ANN001
        self.model, self.images = model, 0
        self.digest, self.card = model.digest, model.card

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        self.images += len(images)
        return self.model.predict_proba(images)


def test_lime_other_class_reuses_the_model_outputs_bit_for_bit(model, faces) -> None:  # noqa: ANN001
    images, labels = faces
    counting = _CountingModel(model)
    explainer = LimeExplainer(LIME_CONFIG)
    explainer.explain(counting, images[:2], labels[:2], [5, 6])
    assert counting.images == 2 * LIME_CONFIG.num_samples
    other = explainer.explain(counting, images[:2], 1 - labels[:2], [5, 6])
    assert counting.images == 2 * LIME_CONFIG.num_samples  # no pass for the other class
    fresh = lime_maps(model, images[:2], 1 - labels[:2], [5, 6])
    assert np.array_equal(np.stack([e.attribution for e in other]), fresh)
    # Another seed, another model or another image is explained afresh.
    explainer.explain(counting, images[:1], labels[:1], [7])
    assert counting.images == 3 * LIME_CONFIG.num_samples
    another_model = _CountingModel(model)
    explainer.explain(another_model, images[:1], 1 - labels[:1], [5])
    assert another_model.images == LIME_CONFIG.num_samples
    explainer.explain(counting, images[2:3], labels[2:3], [5])
    assert counting.images == 4 * LIME_CONFIG.num_samples


def test_fresh_explainer_remembers_nothing(model, faces) -> None:  # noqa: ANN001
    images, labels = faces
    counting = _CountingModel(model)
    explainer = LimeExplainer(LIME_CONFIG)
    first = explainer.explain(counting, images[:1], labels[:1], [5])
    fresh = explainer.fresh()
    assert fresh.config == explainer.config and fresh is not explainer
    again = fresh.explain(counting, images[:1], 1 - labels[:1], [5])
    assert counting.images == 2 * LIME_CONFIG.num_samples  # the model ran again
    # The original's memo is its own, and the fresh one's map is a from-scratch map.
    assert len(explainer._samples.entries) == 1 and len(fresh._samples.entries) == 1
    scratch = lime_maps(model, images[:1], 1 - labels[:1], [5])
    assert np.array_equal(again[0].attribution, scratch[0])
    assert not np.array_equal(first[0].attribution, again[0].attribution)


def test_lime_memo_is_bounded_in_bytes_and_never_keeps_a_model_alive() -> None:
    import gc
    import weakref

    from xaigate.explainers.lime_explainer import _OutputsMemo

    class Model:
        digest = "d" * 64

    memo, model = _OutputsMemo(max_bytes=3 * 800), Model()
    for seed in range(4):  # 800 bytes each: the oldest goes
        memo.put(model, "image", seed, np.zeros((100, 1)))
    assert memo.bytes == 3 * 800 and memo.get(model, "image", 0) is None
    assert memo.get(model, "image", 3) is not None and memo.get(Model(), "image", 3) is None
    gone = Model()
    memo.put(gone, "other", 0, np.ones((10, 1)))
    watch = weakref.ref(gone)
    del gone
    gc.collect()
    assert watch() is None  # the memo did not keep the model alive
    # An entry whose model is gone is never served, even to a model that reuses its id.
    key = next(key for key in memo.entries if key[2] == "other")
    reused = Model()
    memo.entries[(id(reused), *key[1:])] = memo.entries.pop(key)
    assert memo.get(reused, "other", 0) is None


def test_gradcam_maps_are_nonnegative_and_batch_independent(model, faces) -> None:  # noqa: ANN001
    images, labels = faces
    explainer = EXPLAINERS["gradcam"](GradCamConfig(batch_size=3))
    batch = np.stack([e.attribution for e in explainer.explain(model, images, labels, [0] * 4)])
    single = EXPLAINERS["gradcam"](GradCamConfig(batch_size=1))
    alone = np.stack([e.attribution for e in single.explain(model, images, labels, [0] * 4)])
    assert batch.shape == (4, 64, 64) and (batch >= 0).all() and batch.max() > 0
    np.testing.assert_allclose(batch, alone, rtol=1e-4, atol=1e-6)


def test_gradcam_not_applicable_without_convolution(tmp_path: Path) -> None:
    (tmp_path / "mlp.py").write_text(
        "from torch import nn\n"
        "class MLP(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 2))\n"
        "    def forward(self, x):\n"
        "        return self.net(x)\n"
    )
    state = {"net.1.weight": torch.zeros(2, 3 * 64 * 64), "net.1.bias": torch.zeros(2)}
    torch.save(state, tmp_path / "weights.pt")
    (tmp_path / "model.yaml").write_text(
        "name: mlp\nframework: torch\nformat: state_dict\narchitecture: mlp.py:MLP\n"
        "artifact: weights.pt\ninput: {size: [64, 64], channels: 3, layout: NCHW, range: [0, 1]}\n"
        "output: logits\nclasses: [not_smile, smile]\n"
    )
    mlp = load_model(load_card(tmp_path / "model.yaml"))
    reason = EXPLAINERS["gradcam"](GradCamConfig()).not_applicable_reason(mlp)
    assert reason is not None and "convolution" in reason


@pytest.mark.parametrize("baseline", ["black", "white", "blur", "mean"])
def test_integrated_gradients_baselines_complete(model, faces, baseline: str) -> None:  # noqa: ANN001
    """IG's completeness: the map sums to score(image) - score(baseline) (Sundararajan 2017)."""
    from xaigate.explainers.integrated_gradients import IntegratedGradientsConfig, baselines

    images, labels = faces
    config = IntegratedGradientsConfig(baseline=baseline, n_steps=64)
    explainer = EXPLAINERS["integrated_gradients"](config)
    explainer.prepare(model, images)
    [explanation] = explainer.explain(model, images[:1], labels[:1], [0])
    batch = torch.from_numpy(np.ascontiguousarray(images[:1].transpose(0, 3, 1, 2)))
    reference = baselines(batch, config, images.mean(axis=0))
    with torch.no_grad():
        scores = model.scores_module()(torch.cat([batch, reference]))[:, int(labels[0])]
    assert explanation.attribution.shape == (64, 64)
    assert explanation.attribution.sum() == pytest.approx(float(scores[0] - scores[1]), abs=0.05)


def test_gradcam_plus_plus_maps(model, faces) -> None:  # noqa: ANN001
    images, labels = faces
    maps = EXPLAINERS["gradcam_pp"](EXPLAINERS["gradcam_pp"].config_model()).explain(
        model, images, labels, [0] * len(images)
    )
    stacked = np.stack([m.attribution for m in maps])
    assert stacked.shape == (4, 64, 64) and (stacked >= 0).all() and stacked.max() > 0


def test_controls_known_answers(model, faces) -> None:  # noqa: ANN001
    images, labels = faces
    centre = EXPLAINERS["centre_prior"](EXPLAINERS["centre_prior"].config_model())
    [peak] = centre.explain(model, images[:1], labels[:1], [0])
    assert np.unravel_index(peak.attribution.argmax(), (64, 64)) in {
        (31, 31),
        (32, 32),
        (31, 32),
        (32, 31),
    }
    random = EXPLAINERS["random"](EXPLAINERS["random"].config_model())
    one, again = (random.explain(model, images[:1], labels[:1], [7])[0] for _ in range(2))
    assert np.array_equal(one.attribution, again.attribution)
    edges = EXPLAINERS["edges"](EXPLAINERS["edges"].config_model())
    [edge] = edges.explain(model, np.zeros((1, 64, 64, 3), np.float32), labels[:1], [0])
    assert edge.attribution.max() == 0.0  # a flat image has no edges
