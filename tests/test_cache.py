"""The on-disk explanation cache: exact round trips, keys that miss on any change, atomic writes,
and a store that computes only what neither memory nor disk holds."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

import numpy as np
import pytest
import yaml
from gate_runner import FAST_CHECKS, REFERENCE_CARD, fast_thresholds, run_gate

from xaigate.cache import (
    ENV_VAR,
    PRUNE_TO,
    SIZE_ENV_VAR,
    ExplanationCache,
    cache_root,
    explanation_keys,
    max_size,
    prune,
)
from xaigate.context import ExplanationStore
from xaigate.errors import UsageError
from xaigate.explainers import EXPLAINERS, Explainer, Explanation
from xaigate.explainers.integrated_gradients import IntegratedGradientsConfig
from xaigate.explainers.lime_explainer import LimeConfig
from xaigate.models.card import ModelCard, load_card
from xaigate.probes import Probe


@dataclass
class FakeModel:
    """All the cache and the store need of a model: its card, name and digest."""

    card: ModelCard
    digest: str = "a" * 64

    @property
    def name(self) -> str:
        return self.card.name


class CountingExplainer(Explainer):
    """A stochastic explainer that records every batch it is asked to explain."""

    name: ClassVar[str] = "counting"
    stochastic: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__(LimeConfig(num_samples=10))
        self.batches: list[int] = []

    def explain(
        self, model: Any, images: np.ndarray, targets: np.ndarray, seeds: list[int]
    ) -> list[Explanation]:
        self.batches.append(len(images))
        return [
            Explanation(
                attribution=(
                    image.mean(axis=2) * (target + 1)
                    + np.random.default_rng(seed).random(image.shape[:2])
                ).astype(np.float32),
                method=self.name,
                target=int(target),
                params=self.params(),
                seed=seed,
                seconds=0.25,
                extras={"score": 0.1 + 0.2, "segments": 7},
            )
            for image, target, seed in zip(images, targets, seeds, strict=True)
        ]


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return load_card(REFERENCE_CARD)


def probes(count: int, seed: int = 0) -> list[Probe]:
    rng = np.random.default_rng(seed)
    return [
        Probe(f"p{i}", rng.random((8, 8, 3), dtype=np.float32), "smile", {}, {}, i + 1)
        for i in range(count)
    ]


def explanation(seed: int = 0) -> Explanation:
    values = np.random.default_rng(seed).standard_normal((8, 8)).astype(np.float32)
    values[0, :3] = (-0.0, 1e-38, np.float32(np.pi))
    return Explanation(
        values,
        "lime",
        1,
        {"num_samples": 300, "hide_color": None, "kernel_width": 0.25, "masker": "blur(8,8)"},
        123456789012,
        1.0 / 3.0,
        {"score": 0.1 + 0.2, "evaluations": 502, "nested": {"flag": True, "list": [1, 2.5]}},
    )


def assert_identical(got: Explanation, expected: Explanation) -> None:
    assert got.attribution.dtype == expected.attribution.dtype
    assert got.attribution.shape == expected.attribution.shape
    assert got.attribution.tobytes() == expected.attribution.tobytes()
    assert replace(got, attribution=None) == replace(expected, attribution=None)
    assert type(got.seconds) is type(expected.seconds)


def test_round_trip_is_bit_identical(tmp_path: Path) -> None:
    cache = ExplanationCache(tmp_path)
    original = explanation()
    assert cache.get("ab" * 32) is None
    cache.put("ab" * 32, original)
    assert_identical(cache.get("ab" * 32), original)
    assert cache.path_of("ab" * 32) == tmp_path / "ab" / f"{'ab' * 32}.npz"
    assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (1, 1, 1)


def test_metadata_json_cannot_hold_exactly_is_not_stored(tmp_path: Path) -> None:
    cache = ExplanationCache(tmp_path)
    for extras in ({"score": float("nan")}, {"size": (8, 8)}, {"score": np.float64(0.5)}):
        cache.put("cd" * 32, replace(explanation(), extras=extras))
        assert cache.get("cd" * 32) is None
    assert cache.stats.unstorable == 3 and not list(tmp_path.rglob("*.npz"))


def keys_of(
    model: Any, explainer: Explainer, images: list[np.ndarray], seed: int = 1, target: int = 1
) -> str:
    return explanation_keys(model, explainer, images, [seed] * len(images), target)[0]


def test_any_change_of_an_input_is_another_key(card: ModelCard) -> None:
    model = FakeModel(card)
    image = probes(1)[0].image
    lime = EXPLAINERS["lime"](LimeConfig(num_samples=300))
    key = keys_of(model, lime, [image])
    assert keys_of(FakeModel(card), EXPLAINERS["lime"](LimeConfig(num_samples=300)), [image]) == key

    touched = image.copy()
    touched[3, 4, 1] = np.nextafter(touched[3, 4, 1], np.float32(2))
    changed_range = card.model_copy(
        update={"input": card.input.model_copy(update={"range": (0.0, 255.0)})}
    )
    variants = {
        "model digest": keys_of(FakeModel(card, "b" * 64), lime, [image]),
        "model card": keys_of(FakeModel(changed_range), lime, [image]),
        "image bytes": keys_of(model, lime, [touched]),
        "image shape": keys_of(model, lime, [image.reshape(4, 16, 3)]),
        "params": keys_of(model, EXPLAINERS["lime"](LimeConfig(num_samples=301)), [image]),
        "explainer": keys_of(model, EXPLAINERS["shap"](EXPLAINERS["shap"].config_model()), [image]),
        "seed": keys_of(model, lime, [image], seed=2),
        "target": keys_of(model, lime, [image], target=0),
    }
    assert all(other != key for other in variants.values()), variants
    assert len(set(variants.values())) == len(variants)


def test_integrated_gradients_mean_baseline_is_part_of_the_key(card: ModelCard) -> None:
    model = FakeModel(card)
    image = probes(1)[0].image
    first, second = (
        np.stack([p.image for p in probes(4, 1)]),
        np.stack([p.image for p in probes(4, 2)]),
    )

    def key(baseline: str, seen: np.ndarray) -> str:
        explainer = EXPLAINERS["integrated_gradients"](IntegratedGradientsConfig(baseline=baseline))
        explainer.prepare(model, seen)
        return keys_of(model, explainer, [image])

    assert key("mean", first) != key("mean", second)
    assert key("mean", first) == key("mean", first.copy())
    # The blurred baseline does not depend on the probe set: its maps stay cached.
    assert key("blur", first) == key("blur", second)


def disk_key(model: Any, explainer: Explainer, probe: Probe, target: int = 1) -> str:
    """The key under which `ExplanationStore(0)` caches `probe`'s explanation."""
    seed = ExplanationStore(0).seed_for(explainer.name, probe.id)
    return explanation_keys(model, explainer, [probe.image], [seed], target)[0]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "pickled", "other_key"])
def test_unreadable_file_is_a_miss_and_is_rewritten(
    tmp_path: Path, card: ModelCard, damage: str
) -> None:
    model, explainer, images = FakeModel(card), CountingExplainer(), probes(2)
    cache = ExplanationCache(tmp_path)
    original = ExplanationStore(0, cache=cache).get(model, explainer, images, 1)
    key, other = (disk_key(model, explainer, probe) for probe in images)
    path = cache.path_of(key)
    content = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(content[: len(content) // 2])
    elif damage == "garbage":
        path.write_bytes(content[:200] + bytes(len(content) - 200))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "pickled":
        with path.open("wb") as stream:
            np.savez(stream, attribution=original[0].attribution, meta=np.array([{}], dtype=object))
    else:
        path.write_bytes(cache.path_of(other).read_bytes())  # a valid file, of another key

    again = ExplanationCache(tmp_path)
    recomputed = ExplanationStore(0, cache=again).get(model, explainer, images, 1)
    assert explainer.batches == [2, 1]  # only the damaged one is recomputed
    assert again.stats.rejected == 1 and again.stats.hits == 1 and again.stats.writes == 1
    assert_identical(recomputed[0], original[0])
    assert_identical(ExplanationCache(tmp_path).get(key), original[0])  # rewritten


def _write_many(root: Path, key: str, barrier: Any, times: int) -> None:
    cache = ExplanationCache(root)
    barrier.wait()
    for _ in range(times):
        cache.put(key, explanation())
        found = cache.get(key)
        # A reader during the others' writes sees a whole file or none, never a torn one.
        assert found is not None and cache.stats.rejected == 0


def test_concurrent_writers_of_one_key_leave_one_valid_file(tmp_path: Path) -> None:
    writers, key = 6, "ef" * 32
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(writers)
    processes = [
        context.Process(target=_write_many, args=(tmp_path, key, barrier, 25))
        for _ in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    assert [process.exitcode for process in processes] == [0] * writers
    assert [path.name for path in tmp_path.rglob("*") if path.is_file()] == [f"{key}.npz"]
    assert_identical(ExplanationCache(tmp_path).get(key), explanation())


def test_environment_variable_moves_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert cache_root(tmp_path) == tmp_path / ".cache" / "xaigate"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere"))
    assert cache_root(tmp_path / "project") == tmp_path / "elsewhere"
    monkeypatch.setenv(ENV_VAR, "")
    assert cache_root(tmp_path) == tmp_path / ".cache" / "xaigate"


def _entry(root: Path, key: str, size: int, mtime: float) -> Path:
    path = root / key[:2] / f"{key}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_prune_removes_the_least_recently_used_down_to_its_share_of_the_limit(
    tmp_path: Path,
) -> None:
    # Ten files of 100 bytes, used at times 0..9: 1000 bytes against a 700-byte limit.
    paths = [_entry(tmp_path, f"{i:02d}" + "a" * 62, 100, 1000.0 + i) for i in range(10)]
    stale = tmp_path / "00" / ".key.npz.x.tmp"  # a crashed writer's, two hours old
    stale.write_bytes(b"y" * 50)
    os.utime(stale, (0.0, 0.0))
    fresh = tmp_path / "01" / ".key.npz.y.tmp"  # a live writer's
    fresh.write_bytes(b"y" * 50)
    pruned = prune(tmp_path, 700, now=7200.0)
    # Down to 80% of the limit: 560 bytes, so five files stay, the five most recently used.
    assert [p.exists() for p in paths] == [False] * 5 + [True] * 5
    assert (pruned.removed_files, pruned.removed_bytes, pruned.size_after) == (6, 550, 500)
    assert not stale.exists() and fresh.exists()
    # Under the limit, nothing goes.
    assert prune(tmp_path, 700, now=7200.0).removed_files == 0
    assert all(p.exists() for p in paths[5:])
    assert prune(tmp_path / "missing", 1).removed_files == 0  # no cache folder yet


def test_a_hit_marks_the_file_as_used(tmp_path: Path) -> None:
    cache = ExplanationCache(tmp_path)
    cache.put("ab" * 32, explanation())
    cache.put("cd" * 32, explanation())
    for key in ("ab" * 32, "cd" * 32):
        os.utime(cache.path_of(key), (1000.0, 1000.0))
    assert cache.get("ab" * 32) is not None
    assert cache.path_of("ab" * 32).stat().st_mtime > 1000.0
    size = cache.path_of("ab" * 32).stat().st_size
    limited = ExplanationCache(tmp_path, limit=int(size / PRUNE_TO) + 1)
    pruned = limited.prune()  # room for one: the one not read goes
    assert pruned is not None and pruned.removed_files == 1
    assert cache.path_of("ab" * 32).exists() and not cache.path_of("cd" * 32).exists()
    assert cache.prune() is None  # no limit


def test_prune_leaves_what_it_cannot_remove_and_never_raises(tmp_path: Path) -> None:
    paths = [_entry(tmp_path, f"{i:02d}" + "b" * 62, 100, 1000.0 + i) for i in range(4)]
    with mock.patch("os.unlink", side_effect=PermissionError("read-only")):
        pruned = prune(tmp_path, 100)
    assert all(path.exists() for path in paths)
    assert (pruned.removed_files, pruned.size_after) == (0, 400)
    with mock.patch("os.scandir", side_effect=PermissionError("unreadable")):
        assert prune(tmp_path, 100).size_after == 0  # nothing it could list


def test_a_file_removed_during_the_scan_leaves_the_rest_of_its_folder_counted(
    tmp_path: Path,
) -> None:
    for i in range(3):
        _entry(tmp_path, "cc" + f"{i:02d}" + "c" * 60, 100, 1000.0 + i)
    real_scandir = os.scandir

    def scandir_then_remove_first(folder: Any) -> Any:  # noqa: ANN401 - os.scandir's own types
        listing = list(real_scandir(folder))
        os.unlink(listing[0].path)  # another run prunes it between listing and stat
        return contextlib.nullcontext(listing)

    with mock.patch("os.scandir", side_effect=scandir_then_remove_first):
        pruned = prune(tmp_path, 10_000)
    assert (pruned.removed_files, pruned.size_after) == (0, 200)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, 4 * 2**30),
        ("", 4 * 2**30),
        (" ", 4 * 2**30),
        ("500M", 500 * 2**20),
        ("800k", 800 * 2**10),
        ("1.5G", 3 * 2**29),
        ("123", 123),
        ("2GB", 2 * 2**30),
        ("0", None),
    ],
)
def test_size_limit_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, given: str | None, expected: int | None
) -> None:
    if given is None:
        monkeypatch.delenv(SIZE_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(SIZE_ENV_VAR, given)
    assert max_size() == expected


def test_huge_size_limit_does_not_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIZE_ENV_VAR, "9" * 40 + "G")
    limit = max_size()
    assert isinstance(limit, int) and limit > 10**48  # a limit never reached


@pytest.mark.parametrize("given", ["lots", "-1G", "4T", "1 G B", "0.5", "\u0664G"])
def test_malformed_size_limit_is_a_usage_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv(SIZE_ENV_VAR, given)
    with pytest.raises(UsageError, match=f"^{SIZE_ENV_VAR}={given!r}: expected a size"):
        max_size()


def test_store_computes_only_what_memory_and_disk_lack(tmp_path: Path, card: ModelCard) -> None:
    model, explainer, images = FakeModel(card), CountingExplainer(), probes(5)
    cache = ExplanationCache(tmp_path)
    store = ExplanationStore(0, cache=cache)
    first = store.get(model, explainer, images[:3], 1)
    assert explainer.batches == [3] and cache.stats.misses == 3 and cache.stats.writes == 3
    store.get(model, explainer, images[:3], 1)  # from memory: the disk is not asked again
    assert explainer.batches == [3] and cache.stats.misses + cache.stats.hits == 3

    warm = ExplanationCache(tmp_path)
    again = ExplanationStore(0, cache=warm).get(model, explainer, images, 1)
    assert explainer.batches == [3, 2]  # the two new images, in one batch
    assert (warm.stats.hits, warm.stats.misses, warm.stats.writes) == (3, 2, 2)
    for got, expected in zip(again[:3], first, strict=True):
        assert_identical(got, expected)

    # Another seed (salt) or target is another explanation; without a disk cache, memory only.
    ExplanationStore(0, cache=ExplanationCache(tmp_path)).get(model, explainer, images[:1], 1, "b")
    memory_only = ExplanationStore(0)
    memory_only.get(model, explainer, images[:2], 0)
    assert explainer.batches == [3, 2, 1, 2] and memory_only.cache_summary() == "disabled"


def _small_thresholds(folder: Path) -> Path:
    """The fast thresholds cut further: LIME with 100 samples and Grad-CAM, three checks."""
    content = yaml.safe_load(fast_thresholds(folder).read_text())
    content["explainers"]["lime"]["num_samples"] = 100
    kept = ("model_accuracy", "region_focus", "class_contrast")
    assert set(kept) <= set(FAST_CHECKS)
    content["checks"] = {name: content["checks"][name] for name in kept}
    path = folder / "thresholds-small.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


@pytest.mark.slow
def test_warm_gate_reads_every_explanation_from_the_cache(
    tmp_path: Path, smile_probes: Path
) -> None:
    cache = tmp_path / "cache"
    arguments = ("--probes", smile_probes, "--thresholds", _small_thresholds(tmp_path))
    cold = run_gate(tmp_path, *arguments, cache=cache)
    warm = run_gate(tmp_path, *arguments, cache=cache)
    assert cold.verdict is not None and warm.verdict is not None, cold.output + warm.output
    assert cold.verdict["results"] and warm.verdict["results"] == cold.verdict["results"]
    cold_use = cold.verdict["provenance"]["explanation_cache"]
    warm_use = warm.verdict["provenance"]["explanation_cache"]
    assert cold_use["root"] == str(cache) == warm_use["root"]
    assert cold_use["hits"] == 0 and cold_use["misses"] == cold_use["writes"] > 0
    assert warm_use["hits"] == cold_use["misses"] and warm_use["misses"] == 0
    assert warm_use["writes"] == 0
    # Under the default limit nothing went; a run that wrote nothing does not even look.
    assert (cold_use["pruned_files"], cold_use["pruned_bytes"]) == (0, 0)
    assert "pruned_files" not in warm_use

    # A limit of half what one run writes: the run prunes its cache to 80% of it, oldest first.
    written = sum(path.stat().st_size for path in cache.rglob("*.npz"))
    limited = tmp_path / "limited"
    run = run_gate(tmp_path, *arguments, cache=limited, env={SIZE_ENV_VAR: str(written // 2)})
    assert run.returncode == 0 and run.verdict is not None, run.output
    use = run.verdict["provenance"]["explanation_cache"]
    left = sum(path.stat().st_size for path in limited.rglob("*.npz"))
    # What went and what is left make up what the run wrote (timings in the metadata vary).
    assert use["pruned_files"] > 0 and abs(use["pruned_bytes"] + left - written) < written / 100
    assert 0 < left <= written // 2 * PRUNE_TO
    assert "explanation cache pruned to" in run.output
    malformed = run_gate(tmp_path, *arguments, cache=limited, env={SIZE_ENV_VAR: "lots"})
    assert malformed.returncode == 4, malformed.output
    assert f"{SIZE_ENV_VAR}='lots': expected a size" in malformed.output

    bypassed = tmp_path / "bypassed"
    run = run_gate(
        tmp_path, *arguments, "--no-cache", "-k", "region_focus and gradcam", cache=bypassed
    )
    assert run.verdict is not None and run.verdict["results"], run.output
    assert run.verdict["provenance"]["explanation_cache"] == "disabled"
    assert not bypassed.exists()


def test_recomputation_is_fresh_and_kept_on_disk_under_its_own_key(
    tmp_path: Path, card: ModelCard
) -> None:
    model, explainer, images = FakeModel(card), CountingExplainer(), probes(3)
    first = ExplanationStore(seed=0, cache=ExplanationCache(tmp_path))
    stored = first.get(model, explainer, images, 1)
    again = first.recompute(model, explainer, images, 1)
    assert explainer.batches == [3, 3]  # computed again, not taken from memory or disk
    for got, expected in zip(again, stored, strict=True):
        assert got.attribution.tobytes() == expected.attribution.tobytes()
    # A later run on unchanged inputs reads both from disk; without a cache it recomputes.
    later = ExplanationStore(seed=0, cache=ExplanationCache(tmp_path))
    later.get(model, explainer, images, 1)
    later.recompute(model, explainer, images, 1)
    assert explainer.batches == [3, 3] and later.cache.stats.hits == 6
    ExplanationStore(seed=0).recompute(model, explainer, images, 1)
    assert explainer.batches == [3, 3, 3]
    # The cache carried to another machine: the recomputation is made there again.
    from unittest import mock

    with mock.patch("platform.node", return_value="another-runner"):
        moved = ExplanationStore(seed=0, cache=ExplanationCache(tmp_path))
        moved.get(model, explainer, images, 1)
        moved.recompute(model, explainer, images, 1)
    assert explainer.batches == [3, 3, 3, 3]


class LeakingExplainer(CountingExplainer):
    """Its maps depend on what it explained before (state it keeps, as a seed leak would);
    `forget` clears that state, as `Explainer.fresh` expects."""

    def __init__(self) -> None:
        super().__init__()
        self.history = 0

    def forget(self) -> None:
        self.history = 0

    def explain(
        self, model: Any, images: np.ndarray, targets: np.ndarray, seeds: list[int]
    ) -> list[Explanation]:
        explained = super().explain(model, images, targets, seeds)
        self.history += 1
        return [replace(e, attribution=e.attribution + self.history) for e in explained]


def test_recomputation_shows_a_seed_leak(tmp_path: Path, card: ModelCard) -> None:
    model, explainer, images = FakeModel(card), LeakingExplainer(), probes(4)
    store = ExplanationStore(seed=0, cache=ExplanationCache(tmp_path))
    store.get(model, explainer, images[2:], 1)  # some history first, as in a gate run
    stored = store.get(model, explainer, images[:2], 1)
    again = store.recompute(model, explainer, images[:2], 1)
    assert not any(
        np.array_equal(a.attribution, b.attribution) for a, b in zip(stored, again, strict=True)
    )


def _curves(predict_proba: Any, *, images: np.ndarray, steps: int) -> np.ndarray:
    """A stand-in model computation: the model's outputs on the images, `steps` times."""
    return np.repeat(predict_proba(images)[:, :1], steps, axis=1)


def test_model_outputs_are_kept_on_disk_by_their_inputs(tmp_path: Path, card: ModelCard) -> None:
    from types import SimpleNamespace

    from xaigate.context import GateContext

    calls: list[int] = []

    class Model(FakeModel):
        def predict_proba(self, images: np.ndarray) -> np.ndarray:
            calls.append(len(images))
            return np.stack([images.mean(axis=(1, 2, 3)), 1 - images.mean(axis=(1, 2, 3))], 1)

    images = np.stack([probe.image for probe in probes(3)])

    def context(root: Path | None) -> Any:
        store = ExplanationStore(0, cache=None if root is None else ExplanationCache(root))
        return SimpleNamespace(models={"m": Model(card)}, store=store)

    first = GateContext.model_outputs(context(tmp_path), "m", _curves, images=images, steps=4)
    assert first.shape == (3, 4) and calls == [3]
    later = context(tmp_path)
    again = GateContext.model_outputs(later, "m", _curves, images=images, steps=4)
    assert calls == [3] and again.tobytes() == first.tobytes()  # read from disk
    assert later.store.cache.stats.hits == 1
    # Another input, another model or no cache: computed.
    GateContext.model_outputs(later, "m", _curves, images=images, steps=5)
    GateContext.model_outputs(later, "m", _curves, images=images[:2], steps=4)
    other = context(tmp_path)
    other.models["m"] = Model(card, "b" * 64)
    GateContext.model_outputs(other, "m", _curves, images=images, steps=4)
    GateContext.model_outputs(context(None), "m", _curves, images=images, steps=4)
    assert calls == [3, 3, 2, 3, 3]


def test_array_entries_round_trip_and_refuse_what_is_not_theirs(tmp_path: Path) -> None:
    cache = ExplanationCache(tmp_path)
    curves = np.linspace(0, 1, 12, dtype=np.float64).reshape(3, 4)
    cache.put_array("ef" * 32, curves)
    got = cache.get_array("ef" * 32)
    assert got is not None and got.dtype == curves.dtype and got.tobytes() == curves.tobytes()
    cache.put_array("ab" * 32, np.array(["text"]))  # not numbers: not stored
    assert cache.get_array("ab" * 32) is None and cache.stats.unstorable == 1
    # A file moved under another key, or an explanation's file, is a miss.
    cache.path_of("cd" * 32).parent.mkdir(parents=True, exist_ok=True)
    cache.path_of("ef" * 32).rename(cache.path_of("cd" * 32))
    cache.put("12" * 32, explanation())
    assert cache.get_array("cd" * 32) is None and cache.get_array("12" * 32) is None
    assert cache.stats.rejected == 2
