"""Faithfulness: does removing what the map ranks first change the model's mind quickly?

Deletion and insertion curves (Petsiuk et al. 2018, "RISE: Randomized input sampling for
explanation of black-box models"). Pixels are ranked by decreasing attribution and moved, in
`steps` equal chunks, between the image and a baseline that carries no evidence; the curve is
the target-class probability after each chunk.

Every curve function takes `maps` as either (N, H, W) attribution maps or (N, H*W) integer
pixel orders (flat indices, most important first), so the random-order reference is computed
by the same code: pass `random_maps(n, shape, seed)` or `random_orders(n, shape, seed)`.
Passing `pixel_orders(maps)` and one `baseline_images(images)` lets deletion and insertion
share the sort and the blur, which cost about as much as the moving of pixels itself.

A gate calls the curve functions four times per explainer and class on the same images (deletion
and insertion, each for the explainer's map and for a random order) and with the same random
orders for every explainer. The blur and the stable sort are pure and cost about as much as a
fifth of the curves' forward passes, so both are kept per content in a small cache (bounded in
bytes; `clear_caches` empties it): a repeated call gets the same arrays it would have computed.

For gating, an explainer's AUC is compared per image with a random order's on the same image
(`deletion_ratio`, `insertion_ratio`): the raw AUC depends on how confident the model is and on
the baseline, the ratio less so.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Literal

import numpy as np
from scipy import ndimage

PredictProba = Callable[[np.ndarray], np.ndarray]
Baseline = Literal["blur", "black", "mean"]
BASELINES: tuple[str, ...] = ("blur", "black", "mean")
# RISE blurs with sigma 5 (its `gkern(11, 5)`); at 64x64 that erases a mouth's shape.
BLUR_SIGMA = 5.0
# Images per predict_proba call; whole steps are stacked up to this, never split.
BATCH_SIZE = 256
# A random-order area below this means the model gives the target (almost) no probability at
# all, so a ratio to it would measure noise.
RATIO_FLOOR = 1e-6
# With the baseline's level subtracted: a random-order area above it below this (a hundredth
# of the unit square) means the image holds almost no evidence the baseline lacks.
GAIN_FLOOR = 0.01
# Bytes of blurred baselines and pixel orders kept (30 probes: 1.5 MB and 0.5 MB per entry).
CACHE_BYTES = 64 << 20


def baseline_images(
    images: np.ndarray, baseline: Baseline = "blur", *, blur_sigma: float = BLUR_SIGMA
) -> np.ndarray:
    """What a removed pixel becomes: a blurred copy, black, or the image's mean colour.

    The blur is the default because it removes detail without painting a new shape (a black
    square is itself evidence for some classes), so the curve measures the removal.
    """
    images = np.asarray(images, dtype=np.float32)
    if baseline == "blur":
        if blur_sigma <= 0:
            raise ValueError(f"blur_sigma must be positive, got {blur_sigma}")
        # Blur within each image and channel only: sigma 0 along the batch and channel axes.
        return ndimage.gaussian_filter(images, sigma=(0, blur_sigma, blur_sigma, 0))
    if baseline == "black":
        return np.zeros_like(images)
    if baseline == "mean":
        return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape).copy()
    raise ValueError(f"baseline {baseline!r} is not one of {', '.join(BASELINES)}")


def evident_baselines(
    predict_proba: PredictProba,
    images: np.ndarray,
    targets: np.ndarray,
    candidates: tuple[Baseline, ...],
    min_evidence: float,
    *,
    blur_sigma: float = BLUR_SIGMA,
) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the first candidate baseline that the model gives the target at least
    `min_evidence` less probability than the intact image: (N, H, W, 3) baselines and (N,)
    candidate indices, -1 where none does (those images keep the first candidate).

    Deletion and insertion need a baseline without the evidence (Petsiuk et al. 2018; the
    same demand as for IG's baseline, Sundararajan et al. 2017). Which reference is empty of
    it is the model's own reading: an MLP on flat pixels reads a blurred face as a smile
    (p = 0.9), a CNN reads it as a coin toss; so the next candidate is tried, per image.
    """
    images = np.asarray(images, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    if not candidates:
        raise ValueError("no baseline candidates given")
    rows = np.arange(len(images))
    intact = np.asarray(predict_proba(images), dtype=np.float64)[rows, targets]
    chosen = np.full(len(images), -1)
    result = _baseline(images, candidates[0], blur_sigma).copy()
    for index, candidate in enumerate(candidates):
        pending = np.flatnonzero(chosen < 0)
        if not pending.size:
            break
        baseline = _baseline(images, candidate, blur_sigma)
        level = np.asarray(predict_proba(baseline[pending]), dtype=np.float64)
        evident = pending[
            intact[pending] - level[np.arange(pending.size), targets[pending]] >= min_evidence
        ]
        chosen[evident] = index
        result[evident] = baseline[evident]
    return result, chosen


def random_maps(n: int, shape: tuple[int, int], seed: int) -> np.ndarray:
    """(n, H, W) uniform random maps: the random-order reference, as attribution maps."""
    return np.random.default_rng(seed).random((n, *shape))


def random_orders(n: int, shape: tuple[int, int], seed: int) -> np.ndarray:
    """(n, H*W) random pixel orders; the orders that `random_maps(n, shape, seed)` induce."""
    return pixel_orders(random_maps(n, shape, seed))


def pixel_orders(maps: np.ndarray) -> np.ndarray:
    """(N, H*W) flat pixel indices by decreasing attribution; ties keep raster order."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values; there is no order to follow")
    # A stable sort, so a flat or partly flat map gives one deterministic order.
    return np.argsort(-maps.reshape(len(maps), -1), axis=1, kind="stable")


def patch_orders(maps: np.ndarray, patch: int) -> np.ndarray:
    """(N, H*W) flat pixel indices, moved a square `patch` at a time, patches by decreasing mean
    attribution (region perturbation, Samek et al. 2017, "Evaluating the visualization of what
    a deep neural network has learned"); pixels of a patch follow each other in raster order.

    Moving single pixels in a random order sprinkles salt-and-pepper noise over the image,
    which a model reads as evidence of its own, so the random reference would measure noise;
    patches keep both orders' intermediate images alike. `patch=1` is `pixel_orders(maps)`.
    Edge patches are smaller when `patch` does not divide the image. Kept in the module's
    content cache (read-only arrays): deletion and insertion sort the same maps, and every
    explainer's random reference is the same random maps.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if patch < 1:
        raise ValueError(f"patch must be at least 1 pixel, got {patch}")
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values; there is no order to follow")
    return _CACHE.get(maps, ("patch", patch), lambda: _patch_orders(maps, patch))


def _patch_orders(maps: np.ndarray, patch: int) -> np.ndarray:
    if patch == 1:
        return pixel_orders(maps)
    n, height, width = maps.shape
    rows, cols = np.divmod(np.arange(height * width), width)
    per_row = -(-width // patch)
    patch_of = (rows // patch) * per_row + cols // patch
    count = np.bincount(patch_of)
    orders = np.empty((n, height * width), dtype=np.int64)
    for i, attribution in enumerate(maps.reshape(n, -1)):
        mean = np.bincount(patch_of, weights=attribution) / count
        rank = np.empty_like(count)
        rank[np.argsort(-mean, kind="stable")] = np.arange(count.size)
        # Sort by patch rank, then by raster position inside the patch.
        orders[i] = np.lexsort((np.arange(height * width), rank[patch_of]))
    return orders


def deletion_curves(
    predict_proba: PredictProba,
    images: np.ndarray,
    maps: np.ndarray,
    targets: np.ndarray,
    *,
    steps: int = 20,
    baseline: Baseline | np.ndarray = "blur",
    blur_sigma: float = BLUR_SIGMA,
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    """(N, steps + 1) target probability as top-ranked pixels turn into the baseline.

    Column 0 is the intact image, column `steps` the baseline. Petsiuk et al. 2018 (RISE).
    Its area (`area_under_curve`) is lower for a better map: the evidence goes first.
    `baseline` may also be the (N, H, W, 3) baseline images themselves (one blur can then
    serve deletion and insertion); `batch_size` caps images per `predict_proba` call, but a
    call always holds whole steps, so there are at most `steps + 1` calls whatever N is.
    """
    start = np.asarray(images, dtype=np.float32)
    end = _baseline(start, baseline, blur_sigma)
    return _curves(predict_proba, start, end, maps, targets, steps, batch_size)


def insertion_curves(
    predict_proba: PredictProba,
    images: np.ndarray,
    maps: np.ndarray,
    targets: np.ndarray,
    *,
    steps: int = 20,
    baseline: Baseline | np.ndarray = "blur",
    blur_sigma: float = BLUR_SIGMA,
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    """(N, steps + 1) target probability as top-ranked pixels return onto the baseline.

    Column 0 is the baseline, column `steps` the intact image. Petsiuk et al. 2018 (RISE).
    Its area (`area_under_curve`) is higher for a better map: the evidence comes back first.
    Options as for `deletion_curves`.
    """
    end = np.asarray(images, dtype=np.float32)
    start = _baseline(end, baseline, blur_sigma)
    return _curves(predict_proba, start, end, maps, targets, steps, batch_size)


def area_under_curve(curves: np.ndarray) -> np.ndarray:
    """(N,) trapezoid area of each curve over x in [0, 1] (the share of pixels moved)."""
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2 or curves.shape[1] < 2:
        raise ValueError(f"curves must be (N, steps + 1) with steps >= 1, got {curves.shape}")
    steps = curves.shape[1] - 1
    return (curves[:, 1:] + curves[:, :-1]).sum(axis=1) / (2 * steps)


def deletion_ratio(
    auc: np.ndarray,
    random_auc: np.ndarray,
    *,
    level: np.ndarray | float = 0.0,
    floor: float = RATIO_FLOOR,
) -> np.ndarray:
    """(N,) deletion AUC of the explainer over that of a random order, per image.

    Lower is better: below 1 the map finds evidence faster than chance (Petsiuk et al. 2018
    give the AUCs; the ratio to a random order is ours, for thresholds that hold across models).
    `level` (scalar or (N,)), when given, is subtracted from both areas first: pass the
    probability of the baseline image, where both curves end, and the ratio compares only the
    evidence removed. Without it a class the model already gives to the baseline (a blurred
    face read as surprised) has both areas dominated by what no order can remove, and its
    ratio is squeezed towards 1 whatever the map. `random_auc` may be (R, N) for R random
    orders; they are averaged first. NaN where the random area is below `floor`.
    """
    return _ratio(auc, random_auc, level, floor)


def insertion_ratio(
    auc: np.ndarray,
    random_auc: np.ndarray,
    *,
    level: np.ndarray | float = 0.0,
    floor: float = RATIO_FLOOR,
) -> np.ndarray:
    """(N,) insertion AUC of the explainer over that of a random order, per image.

    Higher is better: above 1 the map restores the evidence faster than chance (Petsiuk et al.
    2018). `level`: the baseline image's probability, where both curves start, subtracted from
    both areas (see `deletion_ratio`). `random_auc` may be (R, N), averaged first. NaN where
    the random area is below `floor` (the image holds almost no evidence for the target).
    """
    return _ratio(auc, random_auc, level, floor)


class _ContentCache:
    """Arrays computed from arrays, by the inputs' bytes: a least-recently-used cache."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self.bytes = 0

    def get(
        self, array: np.ndarray, params: Hashable, compute: Callable[[], np.ndarray]
    ) -> np.ndarray:
        contiguous = np.ascontiguousarray(array)
        digest = hashlib.sha256(contiguous.data).digest()  # ~25 us for a 64x64x3 image
        key = (digest, array.shape, array.dtype.str, params)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        value = compute()
        value.flags.writeable = False  # shared with every later caller
        if value.nbytes <= self.max_bytes:
            self.entries[key] = value
            self.bytes += value.nbytes
            while self.bytes > self.max_bytes:
                self.bytes -= self.entries.popitem(last=False)[1].nbytes
        return value

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


_CACHE = _ContentCache(CACHE_BYTES)


def clear_caches() -> None:
    """Forget the blurred baselines and pixel orders kept from earlier calls."""
    _CACHE.clear()


def _baseline(images: np.ndarray, baseline: Baseline | np.ndarray, blur_sigma: float) -> np.ndarray:
    if isinstance(baseline, np.ndarray):
        if baseline.shape != images.shape:
            raise ValueError(f"baseline {baseline.shape} and images {images.shape} differ")
        return baseline.astype(np.float32, copy=False)
    if baseline != "blur":  # black and mean cost less than looking them up
        return baseline_images(images, baseline, blur_sigma=blur_sigma)
    return _CACHE.get(
        images,
        ("blur", float(blur_sigma)),
        lambda: baseline_images(images, baseline, blur_sigma=blur_sigma),
    )


def _ratio(
    auc: np.ndarray, random_auc: np.ndarray, level: np.ndarray | float, floor: float
) -> np.ndarray:
    auc = np.asarray(auc, dtype=np.float64)
    reference = np.asarray(random_auc, dtype=np.float64)
    if reference.ndim == 2:
        reference = reference.mean(axis=0)
    if auc.ndim != 1 or reference.shape != auc.shape:
        raise ValueError(f"auc {auc.shape} and random_auc {np.shape(random_auc)} do not match")
    level = np.broadcast_to(np.asarray(level, dtype=np.float64), auc.shape)
    auc, reference = auc - level, reference - level
    safe = reference > floor
    return np.divide(auc, reference, out=np.full_like(auc, np.nan), where=safe)


def _orders(maps: np.ndarray, count: int, shape: tuple[int, int]) -> np.ndarray:
    """(N, H*W) pixel orders from maps, or the given orders once checked."""
    maps = np.asarray(maps)
    pixels = shape[0] * shape[1]
    if not (maps.ndim == 2 and np.issubdtype(maps.dtype, np.integer)):
        if maps.shape != (count, *shape):
            raise ValueError(
                f"maps must be ({count}, {shape[0]}, {shape[1]}) attribution maps or "
                f"({count}, {pixels}) integer orders, got {maps.dtype} {maps.shape}"
            )
        # int32 in the cache: half the bytes, and the same indices.
        return _CACHE.get(maps, "orders", lambda: pixel_orders(maps).astype(np.int32))
    if maps.shape != (count, pixels):
        raise ValueError(f"orders must be ({count}, {pixels}), got {maps.shape}")
    seen = np.zeros((count, pixels), dtype=bool)
    if maps.size and (maps.min() < 0 or maps.max() >= pixels):
        raise ValueError("each order must be a permutation of the flat pixel indices")
    seen[np.arange(count)[:, None], maps] = True
    if not seen.all():
        raise ValueError("each order must be a permutation of the flat pixel indices")
    return maps


def _curves(
    predict_proba: PredictProba,
    start: np.ndarray,
    end: np.ndarray,
    maps: np.ndarray,
    targets: np.ndarray,
    steps: int,
    batch_size: int,
) -> np.ndarray:
    """Probability of `targets` as pixels pass from `start` to `end` in the maps' order."""
    if start.ndim != 4 or start.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3), got {start.shape}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps ({steps}) and batch_size ({batch_size}) must be positive")
    count, height, width = start.shape[:3]
    pixels = height * width
    targets = np.asarray(targets, dtype=np.int64)
    if targets.shape != (count,):
        raise ValueError(f"targets must be ({count},), got {targets.shape}")
    orders = _orders(maps, count, (height, width))
    curves = np.empty((count, steps + 1), dtype=np.float64)
    if count == 0:
        return curves
    # Integer chunk ends, so the last step moves every pixel whatever H*W is.
    moved = np.arange(steps + 1) * pixels // steps
    # Whole steps per call: the number of model calls is at most steps + 1, whatever N is.
    per_call = max(1, batch_size // count)
    # One working image per input, updated by each step's chunk only: O(N * H * W) in all,
    # where rebuilding every step from masks would cost that per step. Flat (N * H * W, 3)
    # views let one take/assign move a step's pixels of every image at once.
    current = start.reshape(count * pixels, 3).copy()
    source = end.reshape(count * pixels, 3)
    flat_orders = orders + (np.arange(count) * pixels)[:, None]
    rows = np.arange(count)
    for first in range(0, steps + 1, per_call):
        chunk = range(first, min(first + per_call, steps + 1))
        batch = np.empty((len(chunk), count * pixels, 3), dtype=np.float32)
        for index, step in enumerate(chunk):
            if step > 0:
                moving = flat_orders[:, moved[step - 1] : moved[step]].ravel()
                current[moving] = np.take(source, moving, axis=0)
            batch[index] = current
        probabilities = np.asarray(
            predict_proba(batch.reshape(-1, height, width, 3)), dtype=np.float64
        )
        if probabilities.ndim != 2 or probabilities.shape[0] != len(chunk) * count:
            raise ValueError(
                f"predict_proba returned shape {probabilities.shape} for "
                f"{len(chunk) * count} images"
            )
        for index, step in enumerate(chunk):
            curves[:, step] = probabilities[index * count + rows, targets]
    return curves
