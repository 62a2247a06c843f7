"""Content digests shared by the explanation cache and the explainers' fingerprints."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def array_digest(array: np.ndarray) -> str:
    """sha256 of an array's exact float32 bytes and its shape.

    float32 because that is what explainers are given: two arrays that differ only in a dtype
    the explainer never sees give the same maps, and any change of a value gives another digest.
    """
    values = np.ascontiguousarray(array, dtype=np.float32)
    sha = hashlib.sha256(json.dumps(list(values.shape)).encode())
    sha.update(values.tobytes())
    return sha.hexdigest()


def exact_digest(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes (orders are integers, images floats)."""
    values = np.ascontiguousarray(array)
    sha = hashlib.sha256(json.dumps([values.dtype.str, list(values.shape)]).encode())
    sha.update(values.tobytes())
    return sha.hexdigest()


def json_digest(content: Any) -> str:
    """sha256 of the canonical JSON of `content` (sorted keys, no spaces, no NaN).

    Raises TypeError for anything JSON cannot represent exactly, rather than keying on its repr.
    """
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def randomised_model_digest(trained_digest: str, seed: int, layers: list[str]) -> str:
    """The digest of a model whose `layers` were re-initialised from `seed`: another digest
    than the trained model's (whose artifact it shares), so no cached map of it is served."""
    text = f"{trained_digest}:randomised:{seed}:{','.join(layers)}"
    return hashlib.sha256(text.encode()).hexdigest()
