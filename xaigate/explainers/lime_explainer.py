"""LIME on SLIC superpixels (Ribeiro et al. 2016, "Why should I trust you?").

Cost (`python -m bench.explainer_floor`): lime's own `data_labels` builds each perturbed image
in a Python loop (a deepcopy and one boolean mask per hidden segment) and its `hide_color=None`
fills segments with their mean colour segment by segment; at 64x64 with 1000 samples the two
cost more than the model's 1000 forward passes. `_LimeImageExplainer` builds each batch of
perturbed images in one numpy operation from the same random draws, and the mean-colour image
is computed here and handed to lime as `hide_color`; both give lime's images bit for bit, so
the maps are unchanged. lime's sampling, distances and ridge regression are used as they are,
with one fit (no feature selection: every segment is kept) and BLAS held to one thread: its
products are 1000x50, too small to share, and two OpenBLAS threads beside torch's spin against
each other (on 2 busy cores lime's ridge fits, two then, took 70 ms per image instead of 4).

A gate explains one image for several classes (class contrast) with the same seed. lime's
perturbations do not depend on the class, and the model's outputs on them hold every class, so
the outputs of the first explanation are kept (up to `SAMPLES_MEMO_BYTES`) and the next class only
refits lime's regression: the same map bit for bit, without the model's 1000 passes again.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np
from pydantic import Field
from skimage.segmentation import slic
from threadpoolctl import ThreadpoolController

from xaigate.digests import exact_digest
from xaigate.explainers.base import (
    ExplainerConfig,
    Explanation,
    PerImageExplainer,
    register_explainer,
)
from xaigate.explainers.masking import MaskedImages
from xaigate.models.adapter import ModelAdapter

# Segmentations kept per explainer: a gate explains one image several times (two classes for
# class contrast, two seeds for stability, the randomised model), and SLIC costs about a tenth
# of the model's passes. About 100 KB each.
SEGMENTATION_CACHE = 256
# The model's outputs on images' perturbations, kept for their other classes: 1000 samples x
# the classes, 16-40 KB per image for the reference models. A gate asks for all of a class
# pair's images for one class before the other, and a probe set holds a few hundred originals.
SAMPLES_MEMO_BYTES = 64 * 2**20


@cache
def _thread_pools() -> ThreadpoolController:
    # Built once: finding the loaded BLAS libraries costs ~1 ms, a limit on them ~15 us.
    return ThreadpoolController()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS (numpy's and scipy's OpenBLAS) on one thread for the block; torch is not BLAS."""
    with _thread_pools().limit(limits=1, user_api="blas"):
        yield


class LimeConfig(ExplainerConfig):
    num_samples: int = Field(1000, ge=10)
    batch_size: int = Field(100, ge=1, description="images per classifier call; lime's is 10")
    n_segments: int = Field(50, ge=2, description="SLIC: approximate number of superpixels")
    compactness: float = Field(10.0, gt=0)
    sigma: float = Field(1.0, ge=0)
    kernel_width: float = Field(0.25, gt=0)
    hide_color: float | None = Field(None, description="fill of hidden segments; None: mean")


def segment(image: np.ndarray, config: LimeConfig) -> np.ndarray:
    """SLIC superpixels: quickshift, lime's default, yields only a handful at 64x64."""
    return slic(
        image.astype(np.float64),
        n_segments=config.n_segments,
        compactness=config.compactness,
        sigma=config.sigma,
        start_label=0,
        channel_axis=-1,
    )


def segment_means(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Each pixel replaced by its segment's mean colour: lime's fill for `hide_color=None`.

    lime averages each channel of `image[segments == s]` with `np.mean` segment by segment;
    this takes the same pixels in the same (raster) order, one sort for all segments, and
    averages each channel with `np.mean` too, so every value is lime's bit for bit.
    """
    pixels = image.reshape(-1, 3)
    labels = segments.ravel()
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    channels = [np.ascontiguousarray(pixels[order, c]) for c in range(3)]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    ends = np.r_[starts[1:], len(labels)]
    means = np.zeros((int(labels.max()) + 1, 3), dtype=pixels.dtype)
    for first, last in zip(starts, ends, strict=True):
        means[sorted_labels[first]] = [np.mean(channel[first:last]) for channel in channels]
    return means[segments]


class _OutputsMemo:
    """The model's outputs on an image's lime samples, by (model, image, seed), for the image's
    other classes; at most `max_bytes`, the least recently used dropped first.

    Models are held weakly: the memo never keeps a model alive (a randomised copy), and an entry
    whose model is gone is never served, though another model may get its id.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple, tuple[weakref.ref, np.ndarray]] = OrderedDict()
        self.bytes = 0

    def get(self, model: ModelAdapter, image_key: str, seed: int) -> np.ndarray | None:
        key = (id(model), model.digest, image_key, seed)
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry[0]() is not model:
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        return entry[1]

    def put(self, model: ModelAdapter, image_key: str, seed: int, outputs: np.ndarray) -> None:
        try:
            held = weakref.ref(model)
        except TypeError:  # a model object that takes no weak reference is not memoised
            return
        key = (id(model), model.digest, image_key, seed)
        if key in self.entries or outputs.nbytes > self.max_bytes:
            return
        outputs.flags.writeable = False  # served to later explanations as it is
        self.entries[key] = (held, outputs)
        self.bytes += outputs.nbytes
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self.entries)))

    def _drop(self, key: tuple) -> None:
        self.bytes -= self.entries.pop(key)[1].nbytes


@cache
def _lime_image_explainer() -> type:
    """lime's `LimeImageExplainer` with a vectorised `data_labels`, built on first use: importing
    lime (and scikit-learn under it) costs a gate process 0.8 s that it may never need."""
    from lime import lime_image

    class _LimeImageExplainer(lime_image.LimeImageExplainer):
        """lime's explainer with a vectorised `data_labels` (see the module docstring).

        The same draws from `self.random_state`, the same images and the same classifier calls
        (`batch_size` images each, in lime's order) as lime 0.2.0.1, without its per-image loop
        and without its progress bar. Images are float32, what `ModelAdapter.predict_proba` takes
        (lime would pass float64 copies of float32 probes).

        `known_labels`: the model's outputs on these very samples (same image, segments and seed),
        from an explanation of another class; they are returned instead of calling the model.
        `labels` holds the outputs of the last call.
        """

        def __init__(self, *args, known_labels: np.ndarray | None = None, **kwargs) -> None:  # noqa: ANN002, ANN003 - lime's own
            super().__init__(*args, **kwargs)
            self.known_labels = known_labels
            self.labels: np.ndarray | None = None

        def data_labels(
            self,
            image: np.ndarray,
            fudged_image: np.ndarray,
            segments: np.ndarray,
            classifier_fn: Callable[[np.ndarray], np.ndarray],
            num_samples: int,
            batch_size: int = 10,
        ) -> tuple[np.ndarray, np.ndarray]:
            n_features = np.unique(segments).shape[0]
            data = self.random_state.randint(0, 2, num_samples * n_features).reshape(
                (num_samples, n_features)
            )
            data[0, :] = 1
            if self.known_labels is not None:  # drawn all the same: the same data either way
                self.labels = self.known_labels
                return data, self.known_labels
            # lime hides the pixels whose segment label z has data[row, z] == 0 (labels are
            # column numbers; a label beyond the columns is never hidden): all ones where hidden.
            hidden = np.zeros((num_samples, max(n_features, int(segments.max()) + 1)), np.uint32)
            hidden[:, :n_features] = np.where(data == 0, np.uint32(0xFFFFFFFF), np.uint32(0))
            perturbed = MaskedImages(image, fudged_image)
            per_value = np.repeat(segments.ravel(), image.shape[-1])  # segment of each H*W*C value
            labels = []
            for start in range(0, num_samples, batch_size):
                masks = np.take(hidden[start : start + batch_size], per_value, axis=1)
                labels.append(np.asarray(classifier_fn(perturbed.images_from_bit_masks(masks))))
            self.labels = np.concatenate(labels)
            return data, self.labels

    return _LimeImageExplainer


def __getattr__(name: str) -> Any:  # noqa: ANN401 - the lazily built class, for the tests
    if name == "_LimeImageExplainer":
        return _lime_image_explainer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@register_explainer("lime")
class LimeExplainer(PerImageExplainer):
    stochastic = True
    explains_probabilities = True
    config_model = LimeConfig
    config: LimeConfig
    _segmentations: OrderedDict[str, tuple[np.ndarray, np.ndarray]]
    _samples: _OutputsMemo

    def __init__(self, config: ExplainerConfig) -> None:
        super().__init__(config)
        self.forget()

    def forget(self) -> None:
        self._segmentations = OrderedDict()
        self._samples = _OutputsMemo(SAMPLES_MEMO_BYTES)

    def passes_per_image(self) -> int:
        return self.config.num_samples

    def explain(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, seeds: list[int]
    ) -> list[Explanation]:
        with _one_blas_thread():  # see the module docstring
            return super().explain(model, images, targets, seeds)

    def segmentation(self, image: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(segments, fill of hidden segments) of `image`, whose `exact_digest` is `key`,
        computed once per image content."""
        cached = self._segmentations.get(key)
        if cached is not None:
            self._segmentations.move_to_end(key)
            return cached
        segments = segment(image, self.config)
        if self.config.hide_color is None:
            fill = segment_means(image.astype(np.float64), segments)
        else:
            fill = np.full(image.shape, self.config.hide_color, dtype=np.float64)
        for array in (segments, fill):
            array.flags.writeable = False  # shared by every explanation of this image
        self._segmentations[key] = (segments, fill)
        if len(self._segmentations) > SEGMENTATION_CACHE:
            self._segmentations.popitem(last=False)
        return segments, fill

    def explain_one(
        self, model: ModelAdapter, image: np.ndarray, target: int, seed: int
    ) -> Explanation:
        started = time.perf_counter()
        image_key = exact_digest(image)  # keys both the superpixels and the model's outputs
        segments, fill = self.segmentation(image, image_key)
        # A fresh explainer per call: its random_state drives the perturbations and advances
        # between calls, so reusing one would make a map depend on what was explained before.
        known = self._samples.get(model, image_key, seed)
        # feature_selection="none": the map takes every segment's weight, so lime's default
        # ("auto") would fit one ridge regression only to rank all the segments (and, with 6 or
        # fewer, run forward selection: a fit per candidate per step) before the one that counts.
        explainer = _lime_image_explainer()(
            kernel_width=self.config.kernel_width,
            feature_selection="none",
            random_state=seed,
            known_labels=known,
        )
        result = explainer.explain_instance(
            image.astype(np.float64),
            model.predict_proba,
            labels=(target,),
            top_labels=None,
            num_features=int(segments.max()) + 1,
            num_samples=self.config.num_samples,
            batch_size=self.config.batch_size,
            segmentation_fn=lambda _: segments,
            hide_color=fill,  # lime copies it into its fudged image: fudged[:] = hide_color
            random_seed=seed,
        )
        if known is None and explainer.labels is not None:
            self._samples.put(model, image_key, seed, explainer.labels)
        weights = np.zeros(int(segments.max()) + 1, dtype=np.float64)
        for segment_id, weight in result.local_exp[target]:
            weights[segment_id] = weight
        return Explanation(
            attribution=weights[segments].astype(np.float32),
            method=self.name,
            target=target,
            params=self.params(),
            seed=seed,
            seconds=time.perf_counter() - started,
            extras={"segments": int(segments.max()) + 1, "score": float(result.score)},
        )
