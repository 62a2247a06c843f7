"""Partition SHAP: reproducible from its seed, efficient, and looking at the smile's mouth."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from gate_runner import REFERENCE_CARD, ROOT
from pydantic import ValidationError

from xaigate.explainers import EXPLAINERS, Explanation
from xaigate.explainers.shap_explainer import ShapConfig, background, seeded_global_numpy
from xaigate.explainers.shap_internals import lean_partition, partition_tree, shap_module
from xaigate.metrics.localisation import area_share, relevance_mass
from xaigate.models.card import load_card
from xaigate.models.loading import load_model
from xaigate.probes import TASK_CLASSES, Face, faces_to_arrays, generate_faces

CONFIG = ShapConfig()  # the defaults: what thresholds.yaml gets unless it says otherwise
QUICK = ShapConfig(max_evals=100)  # reproducibility does not need fine maps
SEEDS = [5, 6, 7, 8, 9, 10]


@pytest.fixture(scope="module")
def model():  # noqa: ANN201
    return load_model(load_card(REFERENCE_CARD))


@pytest.fixture(scope="module")
def smiles() -> list[Face]:
    faces = generate_faces(12, seed=31)
    return [face for face in faces if face.label == "smile"]


@pytest.fixture(scope="module")
def arrays(smiles: list[Face]) -> tuple[np.ndarray, np.ndarray]:
    return faces_to_arrays(smiles, TASK_CLASSES["smile"])


@pytest.fixture(scope="module")
def explanations(model, arrays: tuple[np.ndarray, np.ndarray]) -> list[Explanation]:  # noqa: ANN001
    images, labels = arrays
    return EXPLAINERS["shap"](CONFIG).explain(model, images, labels, SEEDS)


@pytest.fixture
def global_rng() -> Iterator[None]:
    """Lets a test reseed numpy's global RNG without leaking that into later tests."""
    saved = np.random.get_state()
    yield
    np.random.set_state(saved)


def digest(maps: list[Explanation]) -> str:
    return hashlib.sha256(np.stack([e.attribution for e in maps]).tobytes()).hexdigest()


def test_maps_are_float32_in_image_coordinates(explanations: list[Explanation]) -> None:
    for explanation in explanations:
        assert explanation.attribution.shape == (64, 64)
        assert explanation.attribution.dtype == np.float32
        assert np.isfinite(explanation.attribution).all()


def test_same_seed_same_map_in_one_process(model, arrays, global_rng) -> None:  # noqa: ANN001
    images, labels = arrays
    explainer = EXPLAINERS["shap"](QUICK)
    first = explainer.explain(model, images[:2], labels[:2], SEEDS[:2])
    # Explaining something else in between, and a disturbed global RNG, must change nothing.
    explainer.explain(model, images[2:3], labels[2:3], [99])
    np.random.seed(12345)
    again = EXPLAINERS["shap"](QUICK).explain(model, images[:2], labels[:2], SEEDS[:2])
    assert digest(again) == digest(first) and first[0].attribution.std() > 0


def test_same_seed_same_map_across_processes(model, arrays) -> None:  # noqa: ANN001
    """Also: a process compiles none of shap's numba code (it cost each process 6 s)."""
    images, labels = arrays
    here = digest(EXPLAINERS["shap"](QUICK).explain(model, images[:2], labels[:2], SEEDS[:2]))
    script = (
        "import hashlib, numpy as np\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "compiled = []\n"
        "stock = Dispatcher._compile_for_args\n"
        "def counted(self, *args, **kwargs):\n"
        "    compiled.append(self.py_func.__name__)\n"
        "    return stock(self, *args, **kwargs)\n"
        "Dispatcher._compile_for_args = counted\n"
        "from xaigate.explainers import EXPLAINERS\n"
        "from xaigate.explainers.shap_explainer import ShapConfig\n"
        "from xaigate.models.card import load_card\n"
        "from xaigate.models.loading import load_model\n"
        "from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces\n"
        f"model = load_model(load_card({str(REFERENCE_CARD)!r}))\n"
        "faces = [f for f in generate_faces(12, seed=31) if f.label == 'smile']\n"
        "images, labels = faces_to_arrays(faces[:2], TASK_CLASSES['smile'])\n"
        f"explainer = EXPLAINERS['shap'](ShapConfig(max_evals={QUICK.max_evals}))\n"
        f"maps = explainer.explain(model, images, labels, {SEEDS[:2]})\n"
        "print(hashlib.sha256(np.stack([m.attribution for m in maps]).tobytes()).hexdigest())\n"
        "print(','.join(compiled))\n"
    )
    there, compiled = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")[:2]
    assert there == here
    assert compiled == ""


def test_explaining_leaves_the_global_rng_alone(model, arrays, global_rng) -> None:  # noqa: ANN001
    images, labels = arrays
    np.random.seed(3)
    expected = np.random.random()
    np.random.seed(3)
    EXPLAINERS["shap"](ShapConfig(max_evals=20)).explain(model, images[:1], labels[:1], [1])
    assert np.random.random() == expected


class _TiedModel:
    """p = pixel (0, 0) / 2 + mean of the lower half / 2: both halves of the first split move
    the output equally, so Partition SHAP must break a tie to choose what to refine first."""

    classes = ["other", "target"]

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        p = 0.5 * images[:, 0, 0, 0] + 0.5 * images[:, 8:].mean(axis=(1, 2, 3))
        return np.stack([1 - p, p], axis=1).astype(np.float64)


def test_seed_breaks_ties_and_maps_stay_efficient() -> None:
    explainer = EXPLAINERS["shap"](ShapConfig(max_evals=10, batch_size=1, masker="constant(0)"))
    image, target = np.ones((1, 16, 16, 3), np.float32), np.array([1])
    maps = [explainer.explain(_TiedModel(), image, target, [seed])[0] for seed in range(4)]
    assert len({m.attribution.tobytes() for m in maps}) > 1
    assert explainer.stochastic
    for explanation in maps:  # Shapley efficiency: f(image) - f(all hidden) = 1 - 0
        assert explanation.attribution.sum() == pytest.approx(1.0, abs=1e-5)


def test_maps_sum_to_the_change_in_probability(model, arrays, explanations) -> None:  # noqa: ANN001
    images, labels = arrays
    hidden = np.stack([background(image, CONFIG.masker) for image in images])
    change = model.predict_proba(images)[:, 1] - model.predict_proba(hidden)[:, 1]
    sums = np.array([e.attribution.astype(np.float64).sum() for e in explanations])
    np.testing.assert_allclose(sums, change, atol=1e-4)
    assert [e.extras["base_value"] for e in explanations] == pytest.approx(
        model.predict_proba(hidden)[:, 1]
    )


def test_smile_maps_put_their_mass_on_the_mouth(smiles, explanations) -> None:  # noqa: ANN001
    pairs = zip(explanations, smiles, strict=True)
    masses = [relevance_mass(e.attribution, face.regions["mouth"]) for e, face in pairs]
    share = float(np.mean([area_share(face.regions["mouth"]) for face in smiles]))
    mass = float(np.mean(masses))
    # A map that knows nothing scores the area share; twice that leaves no room for chance.
    assert mass > 2 * share, f"shap smile/mouth relevance mass {mass:.3f} vs area {share:.3f}"


def test_parameters_and_seed_are_recorded(explanations: list[Explanation]) -> None:
    first = explanations[0]
    assert first.method == "shap" and first.target == 1 and first.seed == SEEDS[0]
    assert first.params == {"max_evals": 500, "batch_size": 32, "masker": "blur(8,8)"}
    assert first.seconds > 0 and first.extras["evaluations"] <= CONFIG.max_evals


def stock_shap_values(model, image: np.ndarray, target: int, seed: int, config: ShapConfig):  # noqa: ANN001, ANN201
    """The float64 values and base value as shap computes them unaided: its Image masker over
    the background array, its MaskedModel, its numba code."""
    shap = shap_module()
    masker = shap.maskers.Image(background(image, config.masker), image.shape)

    def predict(batch: np.ndarray) -> np.ndarray:
        step = config.batch_size
        parts = [model.predict_proba(batch[i : i + step]) for i in range(0, len(batch), step)]
        return np.concatenate(parts)

    explainer = shap.Explainer(predict, masker, algorithm="partition")
    with seeded_global_numpy(seed):
        result = explainer(
            image[None],
            max_evals=config.max_evals,
            batch_size=config.batch_size,
            outputs=[target],
            silent=True,
        )
    return np.asarray(result.values)[0, ..., 0], float(np.asarray(result.base_values).ravel()[0])


def test_values_are_what_shap_computes_unaided(model, arrays) -> None:  # noqa: ANN001
    """The mask-passing masker and shap_internals change the cost, not a bit of the values."""
    images, labels = arrays
    config = ShapConfig(max_evals=150, batch_size=7)  # odd: Partition then asks for 8 at once
    explainer = EXPLAINERS["shap"](config)
    maps = explainer.explain(model, images[:2], labels[:2], SEEDS[:2])
    for explanation, image, label, seed in zip(maps, images, labels, SEEDS, strict=False):
        values, base_value, _ = explainer.shap_values(model, image, int(label), seed)
        expected, expected_base = stock_shap_values(model, image, int(label), seed, config)
        assert values.dtype == np.float64 and np.array_equal(values, expected)
        assert base_value == expected_base
        assert np.array_equal(explanation.attribution, expected.sum(axis=-1).astype(np.float32))


def test_other_maskers_and_hierarchies_get_shaps_own_code(model, arrays) -> None:  # noqa: ANN001
    """Inside lean_partition, stock shap (its Image masker, another hierarchy object) takes the
    fallbacks, to shap's MaskedModel and lower_credit, and gets the same values."""
    images, labels = arrays
    config = ShapConfig(max_evals=100, batch_size=8)
    outside = stock_shap_values(model, images[0], int(labels[0]), SEEDS[0], config)
    with lean_partition(partition_tree(images[0].shape)):
        inside = stock_shap_values(model, images[0], int(labels[0]), SEEDS[0], config)
    assert np.array_equal(inside[0], outside[0]) and inside[1] == outside[1]


def test_shaps_module_is_restored_after_an_explanation_even_a_failed_one(model, arrays) -> None:  # noqa: ANN001
    from shap.explainers import _partition

    names = ("queue", "MaskedModel", "lower_credit", "make_masks")
    before = {name: getattr(_partition, name) for name in names}
    images, labels = arrays
    explainer = EXPLAINERS["shap"](QUICK)
    explainer.explain(model, images[:1], labels[:1], SEEDS[:1])
    assert {name: getattr(_partition, name) for name in names} == before

    class Failing:
        def predict_proba(self, batch: np.ndarray) -> np.ndarray:
            raise RuntimeError("the model failed")

    with pytest.raises(RuntimeError, match="the model failed"):
        explainer.explain(Failing(), images[:1], labels[:1], SEEDS[:1])  # type: ignore[arg-type]
    assert {name: getattr(_partition, name) for name in names} == before
    assert explainer.explain(model, images[:1], labels[:1], SEEDS[:1])  # still usable


@pytest.mark.parametrize("shape", [(8, 8, 3), (5, 7, 3), (6, 3, 1)])
def test_hierarchy_and_mask_rows_are_shaps(shape: tuple[int, int, int]) -> None:
    from shap.utils._masked_model import make_masks

    tree = partition_tree(shape)
    stock = shap_module().maskers.Image(np.zeros(shape), shape).clustering
    assert np.array_equal(tree.clustering, stock)
    sparse = make_masks(tree.clustering)
    assert tree.mask_rows.shape == sparse.shape
    for node in range(sparse.shape[0]):
        assert np.array_equal(tree.mask_rows[node, :], sparse[node, :].toarray().ravel()), node


@pytest.mark.parametrize("outputs", [(), (1,), (3,)])
def test_credit_lowering_is_shaps_bit_for_bit(outputs: tuple[int, ...]) -> None:
    from shap.explainers._partition import lower_credit

    tree = partition_tree((8, 6, 3))
    leaves = len(tree.clustering) + 1
    before = np.random.default_rng(3).normal(size=(2 * leaves - 1, *outputs))
    expected, values = before.copy(), before.copy()
    lower_credit(len(expected) - 1, 0, leaves, expected, tree.clustering)
    tree.lowering(values)
    assert np.array_equal(values, expected)
    assert not np.array_equal(values[:leaves], before[:leaves])  # credit did move down


@pytest.mark.parametrize("masker", ["blur(0,8)", "blur(8)", "inpaint_telea", "constant(2)", ""])
def test_unknown_maskers_are_refused(masker: str) -> None:
    with pytest.raises(ValidationError, match="masker"):
        ShapConfig(masker=masker)


def test_maskers_hide_what_they_say() -> None:
    image = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    assert np.allclose(background(image, "constant(0.5)"), 0.5)
    assert np.allclose(background(image, "mean"), image.mean(axis=(0, 1)))
    blurred = background(image, "blur(3,3)")
    assert blurred.dtype == np.float32 and blurred.shape == image.shape
    assert np.allclose(blurred[4, 4], image[3:6, 3:6].mean(axis=(0, 1)))
    assert np.allclose(background(image, "blur(1,1)"), image)
