"""The persistent explanation cache: one `.npz` file per explanation, on disk between runs.

It also keeps, each under a key of its own, the reproducibility check's recomputed maps and
arrays the model computes from known inputs (deletion and insertion curves, `put_array`); its
hit and miss counts cover all three.

An explanation is keyed by everything that determines it: the model (artifact digest and card),
the exact image, the explainer's name and fingerprint (parameters and prepared state), the seed,
the target, and the environment that computes it (library versions, xaigate's explainer and model
code, torch's threads and CPU kernels). Any change of these is another key, so nothing is ever
invalidated in place; stale files are simply never read again (`make clean` removes them).

Files hold the map and JSON metadata, never pickles. Each is written to a temporary file in its
own folder and renamed into place, so concurrent writers (pytest-xdist workers) of the same key
leave one complete file and a reader never sees half of one. A file that cannot be read back
exactly (truncated, corrupt, another format) is a miss, and the recomputed explanation replaces it.

Every edit of xaigate's explainer or model code, library upgrade or new model writes a new set of
keys (one cold `make gate`: about 7,000 files, 130 MB), so the folder is kept under a size
(`$XAIGATE_CACHE_MAX_SIZE`, default 4G): a run that wrote to it removes the least recently used
files (a hit renews a file's time) until it is under 80% of that size.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from xaigate.digests import array_digest, exact_digest, json_digest
from xaigate.errors import UsageError
from xaigate.explainers.base import Explainer, Explanation
from xaigate.models.adapter import ModelAdapter
from xaigate.verdict import write_bytes_atomic

CACHE_FORMAT = 1  # bump when the file layout or the meaning of a key changes
ENV_VAR = "XAIGATE_CACHE"
DEFAULT_FOLDER = Path(".cache") / "xaigate"
SIZE_ENV_VAR = "XAIGATE_CACHE_MAX_SIZE"
DEFAULT_MAX_SIZE = "4G"
PRUNE_TO = 0.8  # of the size limit: a little room, so that not every run prunes
STALE_TEMPORARY_SECONDS = 3600  # a writer's temporary file this old was left by a crash
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([KMG]?)B?", re.IGNORECASE | re.ASCII)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}
LIBRARIES = (
    "numpy",
    "scipy",
    "torch",
    "captum",
    "lime",
    "shap",
    "scikit-image",
    "scikit-learn",
    # Read from package metadata, never imported: a PyTorch gate does not load them.
    "tensorflow-cpu",
    "keras",
    "onnxruntime",
)
# The packages whose code turns (model, image, parameters) into a map.
CODE = ("explainers", "models")

_log = logging.getLogger(__name__)
T = TypeVar("T")


def cache_root(project_root: Path | str) -> Path:
    """`$XAIGATE_CACHE` when set, else `.cache/xaigate/` under the project root; absolute."""
    moved = os.environ.get(ENV_VAR)
    root = Path(moved) if moved else Path(project_root) / DEFAULT_FOLDER
    return root.absolute()


def max_size() -> int | None:
    """The cache's size limit in bytes from `$XAIGATE_CACHE_MAX_SIZE`: a number of bytes, or of
    K, M or G in binary units (`4G` is 4 GiB, the default; `500M`, `800K`, `1.5G`); None for
    `0`, no limit."""
    given = os.environ.get(SIZE_ENV_VAR, "")
    match = _SIZE.fullmatch(given.strip() or DEFAULT_MAX_SIZE)
    number = Decimal(match.group(1)) if match else None
    size = 0 if number is None else int(number * _UNITS[match.group(2).upper()])
    if number is None or (number and not size):
        raise UsageError(
            f"{SIZE_ENV_VAR}={given!r}: expected a size of at least a byte, such as 4G, 500M "
            "or 800K (binary units; 0: no limit)"
        )
    return size or None


@dataclass
class Pruned:
    """What `prune` removed, and the cache's size after it."""

    removed_files: int = 0
    removed_bytes: int = 0
    size_after: int = 0


def prune(root: Path | str, limit: int, *, now: float | None = None) -> Pruned:
    """Keep the cache folder `root` under `limit` bytes: when it is over, remove its least
    recently used files (oldest modification time: a hit renews it) until it holds at most
    `PRUNE_TO` of the limit. Writers' temporary files left by a crash are removed on the way.

    Safe beside other runs: a file removed under a reader is a miss and is computed again. A
    file or folder that cannot be listed or removed is left as it is: pruning only saves disk,
    and never costs a run its verdict.
    """
    pruned = Pruned()
    entries, total = _scan(Path(root), time.time() if now is None else now, pruned)
    if total > limit:
        for _, size, path in sorted(entries):
            if total <= limit * PRUNE_TO:
                break
            if _remove(path, size, pruned):
                total -= size
    pruned.size_after = total
    return pruned


def _scan(root: Path, now: float, pruned: Pruned) -> tuple[list[tuple[float, int, str]], int]:
    """(time of last use, size, path) of every cache file under `root`, and their total size;
    crashed writers' temporary files are removed on the way."""
    entries: list[tuple[float, int, str]] = []
    total = 0
    try:
        folders = [path for path in root.iterdir() if path.is_dir() and len(path.name) == 2]
    except OSError:  # no cache folder yet
        return entries, total
    for folder in folders:
        try:
            with os.scandir(folder) as found:
                listed = list(found)
        except OSError:  # removed meanwhile by another run, or unreadable: skipped
            continue
        for entry in listed:
            try:
                status = entry.stat()
            except OSError:  # this file removed meanwhile: the rest of its folder still counts
                continue
            if entry.name.endswith(".npz"):
                entries.append((status.st_mtime, status.st_size, entry.path))
                total += status.st_size
            elif entry.name.endswith(".tmp") and now - status.st_mtime > STALE_TEMPORARY_SECONDS:
                _remove(entry.path, status.st_size, pruned)
    return entries, total


def _remove(path: str, size: int, pruned: Pruned) -> bool:
    """Remove one file; whether it is gone (another run may have removed it first)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    pruned.removed_files += 1
    pruned.removed_bytes += size
    return True


@cache
def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def _static_environment() -> dict[str, Any]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    package = Path(__file__).parent
    sources = sorted(path for folder in CODE for path in (package / folder).rglob("*.py"))
    code = {str(path.relative_to(package)): _file_digest(path) for path in sources}
    return {
        "libraries": versions,
        "code": json_digest(code),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def environment() -> dict[str, Any]:
    """What besides the inputs decides a map's last bits: libraries, xaigate's code, and torch's
    thread count and CPU kernels (they fix the order of floating-point reductions)."""
    import torch  # already loaded by the explainers; here only to read its settings

    return {
        **_static_environment(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu": torch.backends.cpu.get_cpu_capability(),
    }


def model_identity(model: ModelAdapter) -> dict[str, Any]:
    """The artifact's digest and the card, which says how the model is fed and read.

    The card's artifact path is left out (the digest covers its content) and a local
    architecture file is replaced by its digest, so a moved clone still hits and an edited
    architecture misses.
    """
    card = model.card.model_dump(mode="json", exclude={"artifact"})
    if model.card.architecture is not None:
        target, class_name = model.card.architecture_parts()
        if isinstance(target, Path) and target.is_file():
            card["architecture"] = f"{_file_digest(target.resolve())}:{class_name}"
    return {"digest": model.digest, "card": card}


def explanation_keys(
    model: ModelAdapter,
    explainer: Explainer,
    images: Sequence[np.ndarray],
    seeds: Sequence[int],
    target: int,
) -> list[str]:
    """The cache key of each image's explanation by `explainer` of `model` for `target`."""
    shared = {
        "format": CACHE_FORMAT,
        "environment": environment(),
        "model": model_identity(model),
        "explainer": explainer.name,
        "fingerprint": explainer.fingerprint(model),
        "target": int(target),
    }
    return [
        json_digest({**shared, "image": array_digest(image), "seed": int(seed)})
        for image, seed in zip(images, seeds, strict=True)
    ]


def model_output_key(
    model: ModelAdapter, computation: Callable[..., Any], inputs: dict[str, Any]
) -> str:
    """The cache key of what `model` computes from `inputs` (arrays by digest, other values as
    JSON) through `computation` (e.g. `deletion_curves`), in this environment: the function's
    name and the digest of its module's source are part of it, so an edit is a miss."""
    module = sys.modules[computation.__module__]
    described = {
        name: exact_digest(value) if isinstance(value, np.ndarray) else value
        for name, value in inputs.items()
    }
    return json_digest(
        {
            "format": CACHE_FORMAT,
            "environment": environment(),
            "model": model_identity(model),
            "computation": f"{computation.__module__}.{computation.__qualname__}",
            "code": _file_digest(Path(str(module.__file__)).resolve()),
            "inputs": described,
        }
    )


@dataclass
class CacheStats:
    """Disk use of one run. `rejected`: files there but unreadable or not the key's (counted as
    misses); `unstorable`: explanations whose metadata JSON cannot hold exactly (not written)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    rejected: int = 0
    unstorable: int = 0
    write_errors: int = 0


class ExplanationCache:
    """Explanations on disk under `root`, one file per key, in folders by the key's first byte."""

    def __init__(self, root: Path | str, limit: int | None = None) -> None:
        """`limit`: the size `prune` keeps the folder under (bytes; None: no limit)."""
        self.root = Path(root).absolute()
        self.limit = limit
        self.stats = CacheStats()

    def path_of(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> Explanation | None:
        """The stored explanation of `key`, exactly as it was put; None when there is none."""
        return self._read(
            key, lambda archive: _decode(key, archive["attribution"], archive["meta"])
        )

    def put(self, key: str, explanation: Explanation) -> None:
        """Store `explanation` under `key`, atomically; one that JSON cannot hold exactly (NaN,
        tuples, numpy scalars in its metadata) is not stored, so it is recomputed instead."""
        meta = _encode(key, explanation)
        if meta is None:
            self.stats.unstorable += 1
            return
        self._write(key, attribution=explanation.attribution, meta=meta)

    def get_array(self, key: str) -> np.ndarray | None:
        """The array stored under `key` by `put_array` (model outputs such as deletion curves,
        which are not explanations); None when there is none or it cannot be read back."""
        return self._read(
            key, lambda archive: _decode_array(key, archive["array"], archive["meta"])
        )

    def put_array(self, key: str, array: np.ndarray) -> None:
        """Store a numeric array under `key`, atomically, as `put` stores an explanation."""
        if array.dtype.kind not in "fiub":
            self.stats.unstorable += 1
            return
        meta = json.dumps({"key": key, "format": CACHE_FORMAT}).encode()
        self._write(key, array=array, meta=np.frombuffer(meta, dtype=np.uint8))

    def _read(self, key: str, decode: Callable[[Any], T | None]) -> T | None:
        """What `decode` makes of the file of `key`; a file that is missing, unreadable or not
        the key's is a miss (counted as rejected when it is there), never an error."""
        path = self.path_of(key)
        try:
            with np.load(path, allow_pickle=False) as archive:
                found = decode(archive)
        except FileNotFoundError:
            self.stats.misses += 1
            return None
        except Exception as exc:  # any unreadable file is a miss: never crash, never serve it
            _log.debug("xaigate cache: unreadable %s: %r", path, exc)
            found = None
        if found is None:
            self.stats.rejected += 1
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        # Used now: `prune` removes the least recently used first. A read-only cache still serves.
        with contextlib.suppress(OSError):
            os.utime(path)
        return found

    def _write(self, key: str, **arrays: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        try:
            # Atomic: concurrent writers of one key leave one whole file. No fsync: a file torn
            # by a crash fails its zip CRC and is read as a miss.
            write_bytes_atomic(self.path_of(key), buffer.getvalue())
        except OSError as exc:
            # The cache only saves time: a folder it cannot write costs speed, not the verdict.
            if not self.stats.write_errors:
                warnings.warn(f"xaigate cache: cannot write under {self.root}: {exc}", stacklevel=3)
            self.stats.write_errors += 1
            return
        self.stats.writes += 1

    def summary(self) -> dict[str, Any]:
        """For the verdict's provenance: where the cache is and how it was used."""
        return {"root": str(self.root), **asdict(self.stats)}

    def prune(self) -> Pruned | None:
        """`prune` this cache's folder to its limit (None: no limit, nothing done)."""
        return None if self.limit is None else prune(self.root, self.limit)


def _metadata(key: str, explanation: Explanation) -> dict[str, Any]:
    return {
        "key": key,
        "format": CACHE_FORMAT,
        "method": explanation.method,
        "target": explanation.target,
        "params": explanation.params,
        "seed": explanation.seed,
        "seconds": explanation.seconds,
        "extras": explanation.extras,
    }


def _encode(key: str, explanation: Explanation) -> np.ndarray | None:
    content = _metadata(key, explanation)
    try:
        text = json.dumps(content, allow_nan=False)
    except (TypeError, ValueError):
        return None
    decoded = json.loads(text)
    # Equality with types: 1 == 1.0 and (1,) != [1] would otherwise slip through.
    if decoded != content or _types(decoded) != _types(content):
        return None
    if explanation.attribution.ndim != 2 or explanation.attribution.dtype.kind != "f":
        return None
    return np.frombuffer(text.encode(), dtype=np.uint8)


def _decode_array(key: str, array: np.ndarray, meta: np.ndarray) -> np.ndarray | None:
    content = json.loads(meta.tobytes().decode())
    if content.get("key") != key or content.get("format") != CACHE_FORMAT:
        return None  # another key's file in this place: not ours to serve
    return array


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value)


def _decode(key: str, attribution: np.ndarray, meta: np.ndarray) -> Explanation | None:
    content = json.loads(meta.tobytes().decode())
    if content.get("key") != key or content.get("format") != CACHE_FORMAT:
        return None  # another key's file in this place: not ours to serve
    if attribution.ndim != 2 or attribution.dtype.kind != "f":
        return None
    return Explanation(
        attribution=attribution,
        method=content["method"],
        target=content["target"],
        params=content["params"],
        seed=content["seed"],
        seconds=content["seconds"],
        extras=content["extras"],
    )
