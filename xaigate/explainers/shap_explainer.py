"""Partition SHAP with an image masker (Lundberg & Lee 2017, "A unified approach to
interpreting model predictions"; Owen values over shap's axis-aligned pixel hierarchy).

Why Partition rather than KernelSHAP on SLIC superpixels, measured on the reference smile model
with 64x64 faces (two sets of 6 smile faces, 500 model evaluations each, box blur 8x8; seconds
with one torch thread on a busy 2-core machine):

=================  ===========  ===========================  ======================
algorithm          s per image  mouth mass (area share .04)  rank corr. seed 0 vs 1
=================  ===========  ===========================  ======================
Partition (this)   0.45         0.72, 0.74                   1.00
KernelSHAP + SLIC  0.23         0.95, 0.75                   0.63
=================  ===========  ===========================  ======================

KernelSHAP is faster and its segments follow the drawing, but with 500 samples its map depends
on the seed about as much as on the model (a gate would then be judging the sampler), and its
region scores inherit the segmentation's. Partition SHAP is exact for its hierarchy within the
budget: the seed only breaks ties in the order nodes are refined, so maps satisfy efficiency
(they sum to f(image) - f(masked image)) and barely move across seeds. Its price is blockiness:
500 evaluations give some 25 distinct rectangles; 1000 give about 40 (mouth mass 0.79) at 1.5x
the time. shap compiles numba code on first use in every process (6 s); this module runs none
of it (see `_partition_tree` and `_lean_partition`).

The masker hides pixels by replacing them with a background image computed here, not with
shap's string maskers: those need OpenCV (`cv2`), which is not a dependency. `blur(kx,ky)` is
the box blur `cv2.blur` applies (kx wide, ky high, mirrored borders), `mean` the image's mean
colour, `constant(v)` a grey level v in [0, 1]. Inpainting is not offered for the same reason.
"""

from __future__ import annotations

import heapq
import re
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache, lru_cache
from types import ModuleType, SimpleNamespace
from typing import Any
from unittest import mock

import numpy as np
from pydantic import Field, field_validator
from scipy import ndimage

from xaigate.explainers.base import (
    ExplainerConfig,
    Explanation,
    PerImageExplainer,
    register_explainer,
)
from xaigate.explainers.masking import MaskedImages
from xaigate.models.adapter import ModelAdapter

_BLUR = re.compile(r"blur\((\d+),\s*(\d+)\)")
_CONSTANT = re.compile(r"constant\(([0-9]*\.?[0-9]+)\)")


class ShapConfig(ExplainerConfig):
    max_evals: int = Field(500, ge=10, description="model evaluations per image")
    batch_size: int = Field(32, ge=1, description="images per classifier call")
    masker: str = Field(
        "blur(8,8)", description="what hidden pixels become: blur(kx,ky), mean or constant(v)"
    )

    @field_validator("masker")
    @classmethod
    def _known_masker(cls, value: str) -> str:
        blur = _BLUR.fullmatch(value)
        constant = _CONSTANT.fullmatch(value)
        if blur and min(int(blur[1]), int(blur[2])) >= 1:
            return value
        if constant and 0.0 <= float(constant[1]) <= 1.0:
            return value
        if value == "mean":
            return value
        raise ValueError(
            f"masker {value!r} is not blur(kx,ky) with kernel sizes >= 1, mean, or constant(v) "
            "with v in [0, 1]"
        )


def background(image: np.ndarray, masker: str) -> np.ndarray:
    """What `image` looks like with every pixel hidden by `masker` (HxWx3 float32)."""
    if blur := _BLUR.fullmatch(masker):
        width, height = int(blur[1]), int(blur[2])
        # scipy's "mirror" is OpenCV's default BORDER_REFLECT_101, so this is cv2.blur.
        hidden = ndimage.uniform_filter(image, size=(height, width, 1), mode="mirror")
    elif constant := _CONSTANT.fullmatch(masker):
        hidden = np.full_like(image, float(constant[1]))
    elif masker == "mean":
        hidden = np.broadcast_to(image.mean(axis=(0, 1)), image.shape)
    else:
        raise ValueError(f"unknown masker {masker!r}")
    return np.ascontiguousarray(hidden, dtype=np.float32)


def _shap() -> ModuleType:
    # Imported on first use: shap takes seconds to import (numba, pandas, its plots), which a
    # gate that never runs SHAP should not pay, and its plots module raises matplotlib's
    # PendingDeprecationWarnings that are not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap

    return shap


# shap's Partition explainer draws its tie-breakers from numpy's global RandomState; the lock
# keeps two threads explaining at once from seeding each other's draws.
_GLOBAL_RNG = threading.Lock()


@contextmanager
def seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG for the block, then put back whatever state it had before."""
    with _GLOBAL_RNG:
        saved = np.random.get_state()
        # Through a SeedSequence, so any non-negative int works (np.random.seed wants < 2**32).
        np.random.set_state(
            np.random.RandomState(np.random.MT19937(np.random.SeedSequence(seed))).get_state()
        )
        try:
            yield
        finally:
            np.random.set_state(saved)


class _MaskRows:
    """Rows of shap's node-membership matrix, dense: what `owen` adds to a coalition mask.

    shap's Partition explainer keeps, per node of the hierarchy, the set of features below it
    as a row of a scipy CSR matrix (`make_masks`) and ORs one row into a mask per evaluation
    (`m10[:] += self._mask_matrix[lind, :]`). Slicing a CSR row goes through scipy's index
    validation and builds a new sparse matrix each time: for 500 evaluations of a 64x64x3
    image that cost as much as a third of the model's forward passes. The same rows as dense
    boolean vectors give the same masks (a boolean add is an OR) at a fraction of the cost.

    Kept as the leaves in depth-first order, where every node's leaves are one run
    `order[start[node]:start[node] + size[node]]`, rather than from shap's `make_masks`: that
    is numba code whose compilation cost each process 2 s, for 20 ms of work.
    """

    def __init__(self, clustering: np.ndarray) -> None:
        leaves = len(clustering) + 1
        size = np.ones(2 * leaves - 1, dtype=np.int64)
        size[leaves:] = clustering[:, 3]
        start = np.zeros(2 * leaves - 1, dtype=np.int64)
        # A node's row comes after its children's, so the rows backwards are top-down.
        for row in range(len(clustering) - 1, -1, -1):
            left, right = int(clustering[row, 0]), int(clustering[row, 1])
            start[left] = start[leaves + row]
            start[right] = start[leaves + row] + size[left]
        self.order = np.empty(leaves, dtype=np.int64)
        self.order[start[:leaves]] = np.arange(leaves)
        self.start, self.stop = start, start + size
        self.shape = (2 * leaves - 1, leaves)

    def __getitem__(self, key: tuple[int, slice]) -> np.ndarray:
        row, columns = key
        if columns != slice(None):
            raise IndexError("only whole rows of the mask matrix are kept")
        dense = np.zeros(self.shape[1], dtype=bool)
        dense[self.order[self.start[row] : self.stop[row]]] = True
        return dense


def _axis_aligned_tree(shape: tuple[int, ...]) -> np.ndarray:
    """shap's Image masker's hierarchy of an image shape (`Image.build_partition_tree`).

    Built with the plain-Python body of shap's own numba function (`py_func`): 50 ms, where
    compiling it cost each process 1.6 s. The setup around it is shap's, on a list instead of
    a numba typed list (heapq works on either).
    """
    _shap()  # first: it imports shap with its warnings silenced
    from shap.maskers import _image

    height, width, channels = shape
    leaves = height * width * channels
    clustering = np.zeros((leaves - 1, 4))
    queue = [(0, 0, height, 0, width, 0, channels, -1, False)]
    _image._jit_build_partition_tree.py_func(
        0, height, 0, width, 0, channels, width, channels, leaves, clustering, queue
    )
    return clustering


class _CreditLowering:
    """shap's `lower_credit` over the whole of one hierarchy, a level at a time.

    After `owen`, Partition SHAP hands each node's value down to its two children in proportion
    to their sizes, recursively from the root (`lower_credit`, numba, whose compilation cost
    each process 0.7-2.8 s). Every node gets exactly one share, from its parent, so the nodes
    of one depth can be done at once: the same float operations, `values[parent] * size /
    group size` added to the child, give the same values bit for bit.
    """

    def __init__(self, clustering: np.ndarray) -> None:
        leaves = len(clustering) + 1
        depth = np.zeros(len(clustering), dtype=np.int64)
        children = clustering[:, :2].astype(np.int64)
        # A node's row comes after its children's, so the rows backwards are top-down.
        for row in range(len(clustering) - 1, -1, -1):
            for child in children[row]:
                if child >= leaves:
                    depth[child - leaves] = depth[row] + 1
        self.clustering = clustering
        self.levels = [np.flatnonzero(depth == d) for d in range(int(depth.max()) + 1)]
        size = np.ones(2 * leaves - 1, dtype=np.int64)
        size[leaves:] = clustering[:, 3]
        self.children = children
        self.group_size = clustering[:, 3].astype(np.int64)
        self.child_size = size[children]

    def __call__(self, values: np.ndarray) -> None:
        """`lower_credit(root, 0, M, values, clustering)` in place: `values` (nodes, ...)."""
        leaves = len(self.clustering) + 1
        extra = (slice(None),) + (None,) * (values.ndim - 1)  # broadcast over outputs
        for rows in self.levels:
            share = values[rows + leaves]
            group = self.group_size[rows][extra]
            for side in (0, 1):
                values[self.children[rows, side]] += (
                    share * self.child_size[rows, side][extra] / group
                )


@lru_cache(maxsize=8)
def _partition_tree(shape: tuple[int, ...]) -> tuple[np.ndarray, _MaskRows, _CreditLowering]:
    """shap's axis-aligned hierarchy of an image shape, with its node-membership rows and its
    credit lowering.

    shap's Image masker builds this tree every time one is constructed, which with a masker per
    image cost more than the evaluations themselves; it depends on the shape only.
    """
    clustering = _axis_aligned_tree(shape)
    clustering.flags.writeable = False
    return clustering, _MaskRows(clustering), _CreditLowering(clustering)


class _MaskMasker:
    """A shap masker that hands the model the coalition mask itself.

    shap's Image masker with a background array fills each masked image in its own Python call
    (`out = x.copy(); out[~mask] = background[~mask]`) and then concatenates them; the model
    function (`_Game`) does the same fill for a whole batch at once (`MaskedImages`), which
    gives the same images bit for bit. The hierarchy is shap's Image masker's.
    """

    immutable_outputs = True  # the mask rows handed on are not written to afterwards
    fixed_background = False  # f(all hidden) depends on the image: evaluate it every call

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = (1, int(np.prod(shape)))
        self.clustering, self.mask_rows, self.lower_credit = _partition_tree(shape)

    def __call__(self, mask: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
        return (mask.reshape(1, -1),)


class _Game:
    """The set function Partition SHAP explains: coalition masks -> class probabilities.

    One per explainer, bound to the image being explained for the length of one call.
    """

    def __init__(self) -> None:
        self.model: ModelAdapter | None = None
        self.images: MaskedImages | None = None
        self.batch_size = 1

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        assert self.model is not None and self.images is not None, "bound to no image"
        # Partition asks for up to batch_size + 1 masked images at once (two per node).
        step = self.batch_size
        return np.concatenate(
            [
                self.model.predict_proba(self.images.images(masks[start : start + step]))
                for start in range(0, len(masks), step)
            ]
        )


class _HeapQueue:
    """`queue.PriorityQueue` without its locks, for shap's `owen` (see `_lean_partition`)."""

    def __init__(self) -> None:
        self.heap: list[Any] = []

    def put(self, item: Any) -> None:
        heapq.heappush(self.heap, item)

    def get(self) -> Any:
        return heapq.heappop(self.heap)

    def empty(self) -> bool:
        return not self.heap

    def qsize(self) -> int:
        return len(self.heap)


@cache
def _direct_masked_model() -> type:
    """shap's `MaskedModel` that hands a whole batch of coalition masks to the model at once,
    built on first use (shap is imported lazily).

    shap's `_full_masking_call` asks the masker for each mask's inputs in a Python loop,
    concatenates them, calls the model, then spreads the outputs back over the masks with
    `_build_fixed_multi_output`, numba code whose compilation cost each process 2-3.5 s. With
    `_MaskMasker` (one row per mask, the mask itself, no invariants, no delta masking) and the
    identity link, all of that returns the model's outputs on the masks as they are: row i is
    the mean of one output, which is that output. Anything else goes to shap's own code.
    """
    _shap()  # first: it imports shap with its warnings silenced
    from shap import links
    from shap.utils._masked_model import MaskedModel

    class _DirectMaskedModel(MaskedModel):
        def _full_masking_call(
            self, masks: np.ndarray, zero_index: int | None = None, batch_size: int | None = None
        ) -> np.ndarray:
            if not (
                isinstance(self.masker, _MaskMasker)
                and self._variants is None
                and self.link is links.identity
            ):
                return super()._full_masking_call(masks, zero_index, batch_size)
            outputs = np.asarray(self.model(masks))
            if len(outputs) != len(masks):
                raise ValueError(f"{len(outputs)} outputs for {len(masks)} masks")
            averaged = np.zeros(outputs.shape)  # float64, as shap's
            averaged[:] = outputs
            return averaged

    return _DirectMaskedModel


@contextmanager
def _lean_partition(lowering: _CreditLowering) -> Iterator[None]:
    """shap's Partition explainer without two costs of its generality, patched for the call
    only, under the global-RNG lock held around it:

    - `owen` keeps its frontier in a `queue.PriorityQueue`, local to the call: two
      thread-safe puts or gets per evaluation, whose locking cost as much as a tenth of the
      model's forward passes. A plain heap gives the same order (PriorityQueue is heapq on a
      list).
    - its `MaskedModel` masks one image at a time (see `_direct_masked_model`);
    - `lower_credit` is numba code compiled in each process; `lowering` does it for the
      hierarchy of the images explained (see `_CreditLowering`).
    """
    _shap()  # first: it imports shap with its warnings silenced
    from shap.explainers import _partition

    stock_lower_credit = _partition.lower_credit

    def lower_credit(
        i: int, value: float, leaves: int, values: np.ndarray, clustering: Any
    ) -> None:
        if clustering is not lowering.clustering or i != len(values) - 1:
            stock_lower_credit(i, value, leaves, values, clustering)
            return
        values[i] += value
        lowering(values)

    with (
        mock.patch.object(_partition, "queue", SimpleNamespace(PriorityQueue=_HeapQueue)),
        mock.patch.object(_partition, "MaskedModel", _direct_masked_model()),
        mock.patch.object(_partition, "lower_credit", lower_credit),
    ):
        yield


@register_explainer("shap")
class ShapExplainer(PerImageExplainer):
    """Per-pixel Partition SHAP values of one class's probability, summed over colour channels.

    Stochastic only in tie-breaking: Partition SHAP refines the hierarchy's nodes in order of
    how much the output changed, breaking exact ties with `np.random.randn`, and `max_evals`
    cuts the refinement short, so under ties the seed decides which nodes get refined.
    """

    stochastic = True
    classes_share_work = False  # each explanation evaluates the model on its own coalitions
    config_model = ShapConfig
    config: ShapConfig
    _explainers: dict[tuple[int, ...], tuple[Any, _Game]]

    def __init__(self, config: ExplainerConfig) -> None:
        super().__init__(config)
        self.forget()

    def forget(self) -> None:
        self._explainers = {}

    def passes_per_image(self) -> int:
        return self.config.max_evals

    def _explainer(self, shape: tuple[int, ...]) -> tuple[Any, _Game]:
        """shap's Partition explainer for images of `shape`, built once (its construction
        expands the hierarchy into a membership matrix, which the dense rows replace).

        Reusing it changes nothing: each call evaluates f(all hidden) afresh
        (`fixed_background` is False) and starts from zeroed values."""
        if shape not in self._explainers:
            game = _Game()
            masker = _MaskMasker(shape)
            shap = _shap()  # first: it imports shap with its warnings silenced
            from shap.explainers import _partition

            # The constructor expands the hierarchy with make_masks; it gets the rows instead.
            with mock.patch.object(_partition, "make_masks", lambda _: masker.mask_rows):
                explainer = shap.Explainer(game, masker, algorithm="partition")
            self._explainers[shape] = (explainer, game)
        return self._explainers[shape]

    def explain_one(
        self, model: ModelAdapter, image: np.ndarray, target: int, seed: int
    ) -> Explanation:
        started = time.perf_counter()
        image = np.ascontiguousarray(image, dtype=np.float32)
        _, _, lowering = _partition_tree(image.shape)
        with seeded_global_numpy(seed), _lean_partition(lowering):
            explainer, game = self._explainer(image.shape)
            game.model, game.batch_size = model, self.config.batch_size
            # A coalition mask is True where the image shows through its background.
            game.images = MaskedImages(background(image, self.config.masker), image)
            try:
                result = explainer(
                    image[None],
                    max_evals=self.config.max_evals,
                    batch_size=self.config.batch_size,
                    outputs=[target],
                    silent=True,
                )
            finally:
                game.model = game.images = None
            evaluations = int(explainer.last_eval_count) + 2  # + f(image), f(background)
        # values: (1, H, W, 3, 1), one value per pixel and channel for the one output asked for.
        attribution = np.asarray(result.values)[0, ..., 0].sum(axis=-1)
        return Explanation(
            attribution=attribution.astype(np.float32),
            method=self.name,
            target=target,
            params=self.params(),
            seed=seed,
            seconds=time.perf_counter() - started,
            extras={
                "base_value": float(np.asarray(result.base_values).reshape(-1)[0]),
                "evaluations": evaluations,
            },
        )
