"""shap's Partition explainer without the costs of its generality, for `ShapExplainer`.

shap 0.51 spends, per process, about 6 s compiling numba code (the image hierarchy, its
membership matrix, the spreading of outputs over masks, the lowering of credit down the tree)
and, per image, about 8 ms in Python around the model's calls. Each replacement here computes
what shap computes, bit for bit (tests/test_shap_explainer.py compares with stock shap), and is
swapped into shap's private module names for one explanation only (`lean_partition`). They rely
on shap's internals, so pyproject.toml bounds shap's version.
"""

from __future__ import annotations

import heapq
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache, lru_cache
from types import ModuleType, SimpleNamespace
from typing import Any, NamedTuple
from unittest import mock

import numpy as np


def shap_module() -> ModuleType:
    """shap, imported on first use: it takes seconds to import (numba, pandas, its plots),
    which a gate that never runs SHAP should not pay, and its plots module raises
    matplotlib's PendingDeprecationWarnings that are not ours to fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap

    return shap


def _axis_aligned_tree(shape: tuple[int, ...]) -> np.ndarray:
    """shap's Image masker's hierarchy of an (H, W, C) shape (`Image.build_partition_tree`).

    Built with the plain-Python body of shap's own numba function (`py_func`): 50 ms, where
    compiling it cost each process 1.6 s. The setup around it is shap's, on a list instead of
    a numba typed list (heapq works on either).
    """
    shap_module()  # first: it imports shap with its warnings silenced
    from shap.maskers import _image

    height, width, channels = shape
    leaves = height * width * channels
    clustering = np.zeros((leaves - 1, 4))
    queue = [(0, 0, height, 0, width, 0, channels, -1, False)]
    build = _image._jit_build_partition_tree
    # Under NUMBA_DISABLE_JIT, njit hands back the plain function, which has no py_func.
    getattr(build, "py_func", build)(
        0, height, 0, width, 0, channels, width, channels, leaves, clustering, queue
    )
    return clustering


class _Walk(NamedTuple):
    """Per node of a hierarchy (leaves first, then one node per clustering row): its size,
    its first position in the depth-first order of the leaves, and its depth."""

    size: np.ndarray
    start: np.ndarray
    depth: np.ndarray


def _walk(clustering: np.ndarray) -> _Walk:
    leaves = len(clustering) + 1
    size = np.ones(2 * leaves - 1, dtype=np.int64)
    size[leaves:] = clustering[:, 3]
    start = np.zeros(2 * leaves - 1, dtype=np.int64)
    depth = np.zeros(2 * leaves - 1, dtype=np.int64)
    # A node's row comes after its children's (shap numbers rows from the root down), so the
    # rows backwards visit every parent before its children.
    for row in range(len(clustering) - 1, -1, -1):
        node = leaves + row
        left, right = int(clustering[row, 0]), int(clustering[row, 1])
        start[left], start[right] = start[node], start[node] + size[left]
        depth[left] = depth[right] = depth[node] + 1
    return _Walk(size, start, depth)


class MaskRows:
    """Rows of shap's node-membership matrix, dense: what `owen` adds to a coalition mask.

    shap's Partition explainer keeps, per node of the hierarchy, the set of features below it
    as a row of a scipy CSR matrix (`make_masks`, numba, 2 s to compile per process) and ORs
    one row into a mask per evaluation (`m10[:] += self._mask_matrix[lind, :]`). Slicing a CSR
    row goes through scipy's index validation and builds a new sparse matrix each time: for 500
    evaluations of a 64x64x3 image that cost as much as a third of the model's forward passes.
    The same rows as dense boolean vectors give the same masks (a boolean add is an OR). They
    are kept as the leaves in depth-first order, where a node's leaves are one run.
    """

    def __init__(self, walk: _Walk) -> None:
        leaves = (len(walk.size) + 1) // 2
        self.order = np.empty(leaves, dtype=np.int64)
        self.order[walk.start[:leaves]] = np.arange(leaves)
        self.start, self.stop = walk.start, walk.start + walk.size
        self.shape = (len(walk.size), leaves)

    def __getitem__(self, key: tuple[int, slice]) -> np.ndarray:
        row, columns = key
        if columns != slice(None):
            raise IndexError("only whole rows of the mask matrix are kept")
        dense = np.zeros(self.shape[1], dtype=bool)
        dense[self.order[self.start[row] : self.stop[row]]] = True
        return dense


class CreditLowering:
    """shap's `lower_credit` over the whole of one hierarchy, a level at a time.

    After `owen`, Partition SHAP hands each node's value down to its two children in proportion
    to their sizes, recursively from the root (`lower_credit`, numba, 0.7-2.8 s to compile per
    process). Every node gets exactly one share, from its parent, so the nodes of one depth can
    be done at once: the same float64 operations, `values[parent] * size / group size` added to
    the child, give the same values bit for bit.
    """

    def __init__(self, clustering: np.ndarray, walk: _Walk) -> None:
        leaves = len(clustering) + 1
        self.clustering = clustering
        row_depth = walk.depth[leaves:]
        self.levels = [np.flatnonzero(row_depth == d) for d in range(int(row_depth.max()) + 1)]
        self.children = clustering[:, :2].astype(np.int64)
        self.group_size = walk.size[leaves:]
        self.child_size = walk.size[self.children]

    def __call__(self, values: np.ndarray) -> None:
        """`lower_credit(root, 0, M, values, clustering)` in place: `values` (nodes, ...)."""
        leaves = len(self.clustering) + 1
        extra = (slice(None),) + (None,) * (values.ndim - 1)  # broadcast over outputs
        for rows in self.levels:
            share = values[rows + leaves]
            group = self.group_size[rows][extra]
            for side in (0, 1):
                child_size = self.child_size[rows, side][extra]
                values[self.children[rows, side]] += share * child_size / group


class PartitionTree(NamedTuple):
    """shap's hierarchy of one image shape, with what the replacements need of it."""

    clustering: np.ndarray
    mask_rows: MaskRows
    lowering: CreditLowering


@lru_cache(maxsize=8)
def partition_tree(shape: tuple[int, ...]) -> PartitionTree:
    """shap's axis-aligned hierarchy of an (H, W, C) shape, built once per shape: shap's Image
    masker builds it every time one is constructed, which with a masker per image cost more
    than the evaluations themselves."""
    clustering = _axis_aligned_tree(shape)
    clustering.flags.writeable = False
    walk = _walk(clustering)
    return PartitionTree(clustering, MaskRows(walk), CreditLowering(clustering, walk))


@cache
def direct_masked_model_class() -> type:
    """shap's `MaskedModel` that hands a whole batch of coalition masks to the model at once,
    built on first use (shap is imported lazily).

    shap's `_full_masking_call` asks the masker for each mask's inputs in a Python loop,
    concatenates them, calls the model once, then spreads the outputs back over the masks with
    `_build_fixed_multi_output` (numba, 2-3.5 s to compile per process). For a masker that
    hands over the mask itself (`hands_over_masks`: one row per mask, no invariants, no delta
    masking) under the identity link, that is one model call on the masks, and row i of the
    result is shap's running mean of one output, 0.0 + output. Anything else goes to shap.
    """
    shap_module()  # first: it imports shap with its warnings silenced
    from shap import links
    from shap.utils._masked_model import MaskedModel

    class DirectMaskedModel(MaskedModel):
        def _full_masking_call(
            self, masks: np.ndarray, zero_index: int | None = None, batch_size: int | None = None
        ) -> np.ndarray:
            if not (
                getattr(self.masker, "hands_over_masks", False)
                and self._masker_rows == 1
                and self._variants is None
                and self.link is links.identity
            ):
                return super()._full_masking_call(masks, zero_index, batch_size)
            outputs = np.asarray(self.model(masks))
            if len(outputs) != len(masks):
                raise ValueError(f"{len(outputs)} outputs for {len(masks)} masks")
            averaged = np.zeros(outputs.shape)  # float64, as shap's accumulator
            averaged += outputs  # 0.0 + x, as shap's: a -0.0 output becomes +0.0 there too
            return averaged

    return DirectMaskedModel


class _HeapQueue:
    """`queue.PriorityQueue` without its locks, for shap's `owen` (see `lean_partition`)."""

    def __init__(self) -> None:
        self.heap: list[Any] = []

    def put(self, item: Any) -> None:  # noqa: ANN401 - shap's frontier entries
        heapq.heappush(self.heap, item)

    def get(self) -> Any:  # noqa: ANN401
        return heapq.heappop(self.heap)

    def empty(self) -> bool:
        return not self.heap

    def qsize(self) -> int:
        return len(self.heap)


@contextmanager
def lean_partition(tree: PartitionTree) -> Iterator[None]:
    """shap's Partition explainer with the replacements, for one explanation of an image whose
    hierarchy is `tree`. The caller holds a lock around it: the patches are module-wide.

    - `owen` keeps its frontier in a `queue.PriorityQueue`, local to the call: two thread-safe
      puts or gets per evaluation, whose locking cost as much as a tenth of the model's
      forward passes; a plain heap gives the same order (PriorityQueue is heapq on a list);
    - `MaskedModel` masks one image at a time (see `direct_masked_model_class`);
    - `lower_credit` is numba code (see `CreditLowering`); another hierarchy goes to shap's.
    """
    shap_module()  # first: it imports shap with its warnings silenced
    from shap.explainers import _partition

    stock_lower_credit = _partition.lower_credit

    def lower_credit(
        i: int, value: float, leaves: int, values: np.ndarray, clustering: Any
    ) -> None:  # noqa: ANN401
        if clustering is not tree.clustering or i != len(values) - 1:
            stock_lower_credit(i, value, leaves, values, clustering)
            return
        values[i] += value
        tree.lowering(values)

    with (
        mock.patch.object(_partition, "queue", SimpleNamespace(PriorityQueue=_HeapQueue)),
        mock.patch.object(_partition, "MaskedModel", direct_masked_model_class()),
        mock.patch.object(_partition, "lower_credit", lower_credit),
    ):
        yield


def partition_explainer(model: Any, masker: Any, tree: PartitionTree) -> Any:  # noqa: ANN401
    """shap's Partition explainer of `model` over `masker`, whose hierarchy is `tree`: its
    constructor expands the hierarchy with `make_masks`, and gets `tree.mask_rows` instead.
    The caller holds a lock around it: the patch is module-wide."""
    shap = shap_module()
    from shap.explainers import _partition

    with mock.patch.object(_partition, "make_masks", lambda _: tree.mask_rows):
        return shap.Explainer(model, masker, algorithm="partition")
