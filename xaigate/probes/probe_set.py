"""The probe-set folder: `manifest.jsonl` plus PNG images and masks, read and written.

Each manifest line is one JSON object::

    {"id": "smile-0001", "image": "images/smile-0001.png", "label": "smile",
     "regions": {"mouth": "masks/smile-0001-mouth.png", ...}, "tags": {...}}

Paths are relative to the folder; a mask pixel is inside its region when nonzero. Every problem
is a `UsageError` naming the manifest, the line and the value at fault.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from skimage.transform import resize

from xaigate.errors import UsageError
from xaigate.probes.faces import Face

MANIFEST = "manifest.jsonl"
_KEYS = {"id": str, "image": str, "label": str, "regions": dict, "tags": dict}
_REQUIRED = ("id", "image", "label")
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, eq=False)
class Probe:
    """One probe image with its label, region masks and tags, and where the manifest lists it."""

    id: str
    image: np.ndarray  # (H, W, 3) float32 RGB in [0, 1]
    label: str
    regions: dict[str, np.ndarray]  # name -> (H, W) bool
    tags: dict[str, object]
    line: int  # 1-based manifest line, for error messages


@dataclass(frozen=True, eq=False)
class ProbeSet:
    """The probes of one folder, in manifest order.

    `digest` is the sha256 of the files on disk (see `load_probe_set`); derived sets
    (`resized`, `filtered`) keep it, since they name where their probes came from.
    """

    root: Path
    probes: list[Probe]
    digest: str

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def __len__(self) -> int:
        return len(self.probes)

    def __iter__(self) -> Iterator[Probe]:
        return iter(self.probes)

    @property
    def labels(self) -> list[str]:
        """Distinct labels in first-seen order."""
        return list(dict.fromkeys(probe.label for probe in self.probes))

    def of_class(self, label: str) -> list[Probe]:
        return [probe for probe in self.probes if probe.label == label]

    def region_names(self) -> set[str]:
        """Every region name that at least one probe carries."""
        return {name for probe in self.probes for name in probe.regions}

    def filtered(self, predicate: Callable[[Probe], bool]) -> ProbeSet:
        return replace(self, probes=[probe for probe in self.probes if predicate(probe)])

    def resized(self, size: tuple[int, int]) -> ProbeSet:
        """Every probe at (height, width): images bilinear with antialiasing, masks nearest."""
        size = (int(size[0]), int(size[1]))
        if all(probe.image.shape[:2] == size for probe in self.probes):
            return self
        return replace(self, probes=[_resize_probe(probe, size) for probe in self.probes])

    def check_labels(self, classes: Sequence[str], model: str) -> None:
        """Raise when a probe's label is not one of `model`'s classes."""
        for probe in self.probes:
            if probe.label not in classes:
                raise UsageError(
                    f"{self.manifest}:{probe.line}: label {probe.label!r} of probe {probe.id!r} "
                    f"is not a class of model {model} (classes: {', '.join(classes)})"
                )

    def images(self) -> np.ndarray:
        """(N, H, W, 3) float32 stack of the images; they must share one size."""
        sizes = {probe.image.shape[:2] for probe in self.probes}
        if len(sizes) > 1:
            raise UsageError(
                f"{self.manifest}: probe images have {len(sizes)} different sizes; "
                "resize the set first"
            )
        if not self.probes:
            return np.zeros((0, 0, 0, 3), np.float32)
        return np.stack([probe.image for probe in self.probes]).astype(np.float32, copy=False)


def _resize_probe(probe: Probe, size: tuple[int, int]) -> Probe:
    if probe.image.shape[:2] == size:
        return probe
    image = resize(probe.image, (*size, 3), order=1, anti_aliasing=True, preserve_range=True)
    regions = {
        name: resize(mask, size, order=0, anti_aliasing=False, preserve_range=True).astype(bool)
        for name, mask in probe.regions.items()
    }
    return replace(probe, image=image.clip(0, 1).astype(np.float32), regions=regions)


def load_probe_set(root: Path | str) -> ProbeSet:
    """Read and validate a probe-set folder.

    The digest is sha256 over the manifest's bytes, then each referenced file's bytes (image,
    then masks in the order listed) in manifest order, each part preceded by its length as 8
    little-endian bytes so that no two different sets hash alike.
    """
    root = Path(root)
    manifest = root / MANIFEST
    if not root.is_dir():
        raise UsageError(f"{manifest}: probe-set folder {str(root)!r} not found")
    if not manifest.is_file():
        raise UsageError(f"{manifest}: manifest not found")
    data = manifest.read_bytes()
    digest = hashlib.sha256()
    parts = [data]
    probes: list[Probe] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        where = f"{manifest}:{number}"
        if not raw.strip():
            continue
        entry = _parse_line(raw, where)
        if entry["id"] in first_line:
            raise UsageError(
                f"{where}: duplicate id {entry['id']!r} (first on line {first_line[entry['id']]})"
            )
        first_line[entry["id"]] = number
        probes.append(_load_probe(root, entry, number, where, parts))
    if not probes:
        raise UsageError(f"{manifest}: manifest lists no probes")
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return ProbeSet(root, probes, digest.hexdigest())


def _parse_line(raw: bytes, where: str) -> dict:
    """One manifest line as a dict with valid keys and types."""
    try:
        entry = json.loads(raw.decode("utf-8-sig"))  # tolerate a BOM
    except UnicodeDecodeError as error:
        raise UsageError(f"{where}: not UTF-8 text ({error.reason})") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{where}: malformed JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    for key in entry:
        if key not in _KEYS:
            raise UsageError(f"{where}: unknown key {key!r} (expected {', '.join(_KEYS)})")
    for key in _REQUIRED:
        if key not in entry:
            raise UsageError(f"{where}: missing key {key!r}")
    for key, kind in _KEYS.items():
        if key in entry and not isinstance(entry[key], kind):
            raise UsageError(
                f"{where}: key {key!r} must be a {_json_type(kind)}, "
                f"got {json.dumps(entry[key])[:60]}"
            )
    for key in _REQUIRED:
        if not entry[key]:
            raise UsageError(f"{where}: key {key!r} is empty")
    for name, path in entry.get("regions", {}).items():
        if not isinstance(path, str) or not path:
            raise UsageError(f"{where}: region {name!r} must name a mask file, got {path!r}")
    return entry


def _json_type(kind: type) -> str:
    return {str: "string", dict: "JSON object"}[kind]


def _load_probe(root: Path, entry: dict, number: int, where: str, parts: list[bytes]) -> Probe:
    """Read one probe's image and masks; their bytes are appended to `parts` for the digest."""
    image_path = _existing(root, entry["image"], f"image {entry['image']!r}", where)
    parts.append(image_path.read_bytes())
    image = _read_image(image_path, f"image {entry['image']!r}", where)
    regions: dict[str, np.ndarray] = {}
    for name, relative in entry.get("regions", {}).items():
        what = f"mask {relative!r} of region {name!r}"
        path = _existing(root, relative, what, where)
        parts.append(path.read_bytes())
        mask = _read_mask(path, what, where)
        if mask.shape != image.shape[:2]:
            raise UsageError(
                f"{where}: {what} is {_hw(mask.shape)} but image {entry['image']!r} is "
                f"{_hw(image.shape)}"
            )
        regions[name] = mask
    return Probe(entry["id"], image, entry["label"], regions, entry.get("tags", {}), number)


def _hw(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]} (WxH)"


def _existing(root: Path, relative: str, what: str, where: str) -> Path:
    if Path(relative).is_absolute():
        raise UsageError(f"{where}: {what} must be relative to the probe-set folder")
    path = root / relative
    if not path.is_file():
        raise UsageError(f"{where}: {what} not found")
    return path


def _open(path: Path, what: str, where: str) -> Image.Image:
    try:
        with Image.open(path) as opened:
            opened.load()
            return opened
    except (UnidentifiedImageError, OSError, ValueError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UsageError(f"{where}: cannot read {what}: {reason}") from None


def _read_image(path: Path, what: str, where: str) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]; grayscale is stacked to three channels, alpha dropped."""
    image = _open(path, what, where)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: PIL's convert("L") would clip, so scale by hand.
        gray = np.asarray(image, dtype=np.float64) / 65535
        rgb = np.repeat(gray[..., None], 3, axis=2)
    elif image.mode in ("1", "L", "LA"):
        rgb = np.repeat(np.asarray(image.convert("L"))[..., None], 3, axis=2) / 255
    else:
        rgb = np.asarray(image.convert("RGB")) / 255
    return rgb.clip(0, 1).astype(np.float32)


def _read_mask(path: Path, what: str, where: str) -> np.ndarray:
    """(H, W) bool: a pixel is inside when any colour channel is nonzero (alpha ignored)."""
    image = _open(path, what, where)
    if image.mode in ("P", "PA"):
        image = image.convert("RGB")  # palette index 0 need not be black
    elif image.mode in ("RGBA", "LA"):
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    array = np.asarray(image)
    return array.any(axis=2) if array.ndim == 3 else array != 0


def write_probe_set(
    root: Path | str,
    faces: Sequence[Face],
    *,
    prefix: str = "face",
    ids: Sequence[str] | None = None,
    overwrite: bool = False,
) -> ProbeSet:
    """Write `faces` as a probe set at `root` and return it, loaded back.

    Ids are `<prefix>-0000`, `<prefix>-0001`, ... unless `ids` gives them. The set is built in a
    temporary sibling folder and renamed into place, so `root` never holds a half-written set;
    an existing non-empty `root` is replaced only with `overwrite=True`.
    """
    root = Path(root)
    ids = [f"{prefix}-{index:04d}" for index in range(len(faces))] if ids is None else list(ids)
    _check_ids(root, ids, len(faces))
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise UsageError(f"{root}: folder exists and is not empty; pass overwrite to replace it")
    # Resolved, so that the sibling folders of "." or "probes/" are really siblings.
    target = root.resolve()
    if target == Path.cwd().resolve():
        raise UsageError(f"{root}: cannot replace the current directory; name another folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    temporary.mkdir()  # not mkdtemp: its 0700 mode would stick to the published folder
    try:
        _write_files(temporary, faces, ids)
        _publish(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return load_probe_set(root)


def _check_ids(root: Path, ids: list[str], count: int) -> None:
    if len(ids) != count:
        raise UsageError(f"{root}: {len(ids)} ids given for {count} faces")
    seen: set[str] = set()
    for probe_id in ids:
        if not _SAFE_ID.fullmatch(probe_id):
            raise UsageError(f"{root}: id {probe_id!r} is not a safe file name ([A-Za-z0-9._-])")
        if probe_id in seen:
            raise UsageError(f"{root}: id {probe_id!r} is given twice")
        seen.add(probe_id)


def _write_files(folder: Path, faces: Sequence[Face], ids: list[str]) -> None:
    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    lines = []
    for probe_id, face in zip(ids, faces, strict=True):
        image = f"images/{probe_id}.png"
        Image.fromarray(np.ascontiguousarray(face.image, dtype=np.uint8), "RGB").save(
            folder / image
        )
        regions = {}
        for name, mask in face.regions.items():
            relative = f"masks/{probe_id}-{name}.png"
            pixels = np.where(mask, np.uint8(255), np.uint8(0))
            Image.fromarray(pixels, "L").save(folder / relative)
            regions[name] = relative
        entry = {
            "id": probe_id,
            "image": image,
            "label": face.label,
            "regions": regions,
            "tags": {key: _plain(value) for key, value in face.tags.items()},
        }
        lines.append(json.dumps(entry))
    (folder / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _plain(value: object) -> object:
    """A JSON-ready value: numpy scalars become Python ones."""
    return value.item() if isinstance(value, np.generic) else value


def _publish(temporary: Path, root: Path) -> None:
    """Rename `temporary` to `root`; an old `root` is moved aside first and deleted after."""
    if not root.exists():
        os.rename(temporary, root)
        return
    old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:12]}"
    os.rename(root, old)
    try:
        os.rename(temporary, root)
    except OSError:
        os.rename(old, root)  # put the previous set back rather than leave nothing
        raise
    shutil.rmtree(old, ignore_errors=True)
