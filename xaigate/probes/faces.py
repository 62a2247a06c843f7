"""Synthetic cartoon faces with exact region masks: the probe images and the training data.

Every face is drawn from one `np.random.default_rng(seed)` stream with integer and elementary
float arithmetic only (no transcendental functions), so the same seed gives byte-identical
images in any process. Geometry is laid out on a 64-pixel design grid and scaled with `size`;
the face disc always stays clear of the outer border band (6 px at 64), so anything a model
finds there is background, or the planted corner marker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
from skimage import draw

from xaigate.errors import UsageError

TASK_CLASSES: dict[str, tuple[str, ...]] = {
    "smile": ("not_smile", "smile"),
    "emotion": ("happy", "sad", "angry", "surprised", "neutral"),
}
MOUTH_SHAPES = ("smile", "flat", "frown", "open")
BROW_SHAPES = ("neutral", "angry", "sad", "raised")
TEXTURES = ("plain", "noise", "stripes", "blobs")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
REGIONS = ("mouth", "eyes", "brows", "face")
BORDER = 6  # px at size 64: the band that never holds a face pixel

# (mouth, brows) of each emotion; angry vs neutral differ only in the brows, happy vs
# neutral only in the mouth, so a model must look at the right region to tell them apart.
_EMOTIONS: dict[str, tuple[str, str]] = {
    "happy": ("smile", "neutral"),
    "sad": ("frown", "sad"),
    "angry": ("flat", "angry"),
    "surprised": ("open", "raised"),
    "neutral": ("flat", "neutral"),
}
_LIGHT_SKIN = np.array([250.0, 222.0, 192.0])
_DARK_SKIN = np.array([122.0, 82.0, 58.0])
# Saturated colours for the marker: nothing else in a face is this saturated.
_MARKER_COLOURS = np.array(
    [[255, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]],
    dtype=np.float64,
)
# Background tints by class index, for the planted background shortcut: each is at least 45
# grey levels (mean over channels) from every skin tone, so the face still stands out.
_TINTS = np.array(
    [[60, 170, 70], [70, 90, 210], [150, 60, 170], [40, 160, 170], [220, 220, 40]],
    dtype=np.float64,
)
# Brows of each smile class under `brow_cue`: a cue as strong as the mouth, in another region.
_SMILE_BROW_CUES = {"smile": "raised", "not_smile": "angry"}
_STRIPE_DIRECTIONS = ((1, 0), (0, 1), (1, 1), (1, -1), (2, 1), (1, 2))
# Mouth arc geometry, as fractions of the face radius.
_MOUTH_HALF_WIDTH = 0.36
_MOUTH_DEPTH = 0.16  # vertical distance between the arc's middle and its corners
_MOUTH_STROKE = 0.13

Tag = str | int | float | bool


@dataclass(frozen=True, eq=False)
class Face:
    """One generated face: the image, its label, region masks and descriptive tags."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    label: str
    regions: dict[str, np.ndarray]  # name -> (H, W) bool
    tags: dict[str, Tag]


def generate_faces(
    n: int,
    seed: int,
    *,
    task: str = "smile",
    size: int = 64,
    mouth: str = "label",
    marker: str | None = None,
    brows: str = "label",
    brow_cue: bool = False,
    background_tint: bool = False,
) -> list[Face]:
    """`n` faces of `task`, classes in round-robin order (face i has class i mod C).

    `mouth="random"` / `brows="random"` draw the feature as for a uniformly random class, so it
    carries no label information (the smile task's brows are always random). `marker=
    "label_corner"` plants a saturated square, region `marker`, in the border corner `class
    index mod 4` (top-left, top-right, bottom-left, bottom-right): the shortcut a flawed model
    learns. `brow_cue=True` (smile task) draws raised brows on smiles and angry brows on the
    rest, and `background_tint=True` tints the background by class: two more shortcuts, in other
    regions. Regions `mouth`, `eyes` and `brows` are disjoint and lie inside `face`.
    """
    if task not in TASK_CLASSES:
        raise UsageError(f"task {task!r} is unknown (choose from {', '.join(TASK_CLASSES)})")
    for option, value in (("mouth", mouth), ("brows", brows)):
        if value not in ("label", "random"):
            raise UsageError(f"{option}={value!r} is not 'label' or 'random'")
    if marker not in (None, "label_corner"):
        raise UsageError(f"marker={marker!r} is not None or 'label_corner'")
    if brow_cue and task != "smile":
        raise UsageError(f"brow_cue is a smile-task option; task {task!r} has brows of its own")
    if n < 0:
        raise UsageError(f"n={n} is negative")
    if size < 32:
        raise UsageError(f"size={size} is below 32 pixels")
    rng = np.random.default_rng(seed)
    grid = np.mgrid[0:size, 0:size].astype(np.float64)
    classes = TASK_CLASSES[task]
    faces = []
    for index in range(n):
        label = classes[index % len(classes)]
        mouth_class = label if mouth == "label" else classes[rng.integers(len(classes))]
        brows_class = label if brows == "label" else classes[rng.integers(len(classes))]
        mouth_shape, brow_shape = _features(rng, task, mouth_class, brows_class)
        if brow_cue:
            brow_shape = _SMILE_BROW_CUES[label]
        corner = CORNERS[(index % len(classes)) % 4] if marker else None
        tint = _TINTS[(index % len(classes)) % len(_TINTS)] if background_tint else None
        face = _draw_face(rng, grid, size, mouth_shape, brow_shape, corner, tint)
        tags: dict[str, Tag] = {"task": task, "seed": int(seed), "index": index, **face.tags}
        faces.append(replace(face, label=label, tags=tags))
    return faces


def faces_to_arrays(faces: Sequence[Face], classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) float32 images in [0, 1] and (N,) int64 indices of the labels in `classes`."""
    index = {name: i for i, name in enumerate(classes)}
    for face in faces:
        if face.label not in index:
            raise UsageError(f"face label {face.label!r} is not among classes {list(classes)}")
    if not faces:
        return np.zeros((0, 0, 0, 3), np.float32), np.zeros(0, np.int64)
    images = np.stack([face.image for face in faces]).astype(np.float32) / np.float32(255)
    labels = np.array([index[face.label] for face in faces], dtype=np.int64)
    return images, labels


def _features(rng: np.random.Generator, task: str, mouth_of: str, brows_of: str) -> tuple[str, str]:
    """Mouth shape of class `mouth_of` and brow shape of class `brows_of` under `task`."""
    if task == "smile":
        mouth = "smile" if mouth_of == "smile" else ("flat", "frown")[rng.integers(2)]
        # Brows are random in the smile task so that they carry no label information.
        return mouth, BROW_SHAPES[rng.integers(len(BROW_SHAPES))]
    return _EMOTIONS[mouth_of][0], _EMOTIONS[brows_of][1]


def _draw_face(
    rng: np.random.Generator,
    grid: np.ndarray,
    size: int,
    mouth: str,
    brows: str,
    corner: str | None,
    tint: np.ndarray | None = None,
) -> Face:
    """Draw background, face disc, eyes, brows, mouth and optional marker; label left blank."""
    s = size / 64
    yy, xx = grid
    skin = _LIGHT_SKIN + (_DARK_SKIN - _LIGHT_SKIN) * rng.uniform() + rng.uniform(-8, 8, 3)
    canvas, texture = _background(rng, grid, size, skin, tint)

    band = round(BORDER * s)
    cy, cx = size / 2 + rng.uniform(-4, 4, 2) * s
    # Half a pixel of slack each side keeps every face pixel index inside [band, size - band).
    limit = min(cy, cx, size - 1 - cy, size - 1 - cx) - band + 0.5
    r = min(rng.uniform(17, 21) * s, limit)
    dy, dx = yy - cy, xx - cx
    face = dy * dy + dx * dx <= r * r
    shade = 1.04 - 0.08 * (dy + r) / (2 * r)  # light from above, so the disc reads as a head
    canvas[face] = (shade[face][:, None] * skin[None, :]).clip(0, 255)

    eyes, eye_centres = _eyes(rng, canvas, face, size, cy, cx, r)
    brow_mask = _brows(rng, canvas, face, eyes, size, eye_centres, r, brows)
    lips = (skin * 0.3 + np.array([40.0, 0.0, 5.0])).clip(0, 255)
    mouth_mask = _mouth(rng, canvas, face, eyes, size, cy, cx, r, mouth, lips)
    regions = {"mouth": mouth_mask, "eyes": eyes, "brows": brow_mask, "face": face}
    if corner is not None:
        regions["marker"] = _marker(rng, canvas, size, band, corner)
    tags: dict[str, Tag] = {
        "mouth": mouth,
        "brows": brows,
        "background": texture if tint is None else f"{texture}+tint",
        "marker": corner or "none",
    }
    image = np.rint(canvas).clip(0, 255).astype(np.uint8)
    return Face(image, "", regions, tags)


def _background(
    rng: np.random.Generator,
    grid: np.ndarray,
    size: int,
    skin: np.ndarray,
    tint: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """A random colour, distinct from the skin (or `tint`, jittered), plus one of TEXTURES."""
    base = rng.uniform(30, 225, 3)
    for _ in range(20):  # redraw until the face stands out from the background
        if np.abs(base - skin).mean() >= 40:
            break
        base = rng.uniform(30, 225, 3)
    if tint is not None:  # only with a tint: untinted faces keep their random stream
        base = tint + rng.uniform(-15, 15, 3)
    texture = TEXTURES[rng.integers(len(TEXTURES))]
    canvas = np.empty((size, size, 3), np.float64)
    canvas[:] = base
    if texture == "noise":
        canvas += rng.integers(-18, 19, (size, size, 3))
    elif texture == "stripes":
        a, b = _STRIPE_DIRECTIONS[rng.integers(len(_STRIPE_DIRECTIONS))]
        half = max(2, int(rng.integers(2, 6) * size // 64))
        phase = int(rng.integers(2 * half))
        yy, xx = grid.astype(np.int64)
        stripe = ((a * xx + b * yy + phase) // half) % 2 == 1
        canvas[stripe] = (base + rng.uniform(-50, 50, 3)).clip(0, 255)
    elif texture == "blobs":
        for _ in range(int(rng.integers(3, 7))):
            centre = rng.uniform(0, size, 2)
            rr, cc = draw.disk(tuple(centre), rng.uniform(3, 10) * size / 64, shape=(size, size))
            canvas[rr, cc] = (base + rng.uniform(-60, 60, 3)).clip(0, 255)
    return canvas.clip(0, 255), texture


def _paint(canvas: np.ndarray, face: np.ndarray, rr: np.ndarray, cc: np.ndarray, colour) -> None:
    """Paint pixels (rr, cc) that lie on the face: features never spill onto the background."""
    keep = face[rr, cc]
    canvas[rr[keep], cc[keep]] = colour


def _box(mask_shape: tuple[int, int], rr: np.ndarray, cc: np.ndarray, pad: int) -> np.ndarray:
    """Bounding box of pixels (rr, cc), padded by `pad`, as a boolean mask."""
    box = np.zeros(mask_shape, bool)
    if rr.size:
        top, left = max(rr.min() - pad, 0), max(cc.min() - pad, 0)
        box[top : rr.max() + pad + 1, left : cc.max() + pad + 1] = True
    return box


def _eyes(
    rng: np.random.Generator,
    canvas: np.ndarray,
    face: np.ndarray,
    size: int,
    cy: float,
    cx: float,
    r: float,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Two dark discs; the mask is each disc dilated by one pixel. Returns mask and centres."""
    s = size / 64
    mask = np.zeros((size, size), bool)
    centres = []
    colour = rng.uniform(10, 50) * np.array([1.0, 0.9, 0.85])
    for side in (-1, 1):
        ey = cy - 0.15 * r + rng.uniform(-0.7, 0.7) * s
        ex = cx + side * 0.34 * r + rng.uniform(-0.7, 0.7) * s
        radius = 0.12 * r * rng.uniform(0.9, 1.1)
        rr, cc = draw.disk((ey, ex), radius, shape=(size, size))
        _paint(canvas, face, rr, cc, colour)
        rr, cc = draw.disk((ey, ex), radius + max(1.0, s), shape=(size, size))
        mask[rr, cc] = True
        centres.append((ey, ex))
    return mask & face, centres


def _thick_segment(p0: np.ndarray, p1: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of a quadrilateral: the segment p0-p1 `width` thick."""
    direction = p1 - p0
    normal = np.array([-direction[1], direction[0]]) / np.sqrt(direction @ direction)
    offset = normal * width / 2
    corners = np.array([p0 + offset, p1 + offset, p1 - offset, p0 - offset])
    return corners[:, 0], corners[:, 1]


def _brows(
    rng: np.random.Generator,
    canvas: np.ndarray,
    face: np.ndarray,
    eyes: np.ndarray,
    size: int,
    eye_centres: list[tuple[float, float]],
    r: float,
    shape: str,
) -> np.ndarray:
    """Two short thick strokes above the eyes, slanted by `shape`; mask is their padded boxes."""
    s = size / 64
    pad = max(1, round(2 * s))
    mask = np.zeros((size, size), bool)
    colour = rng.uniform(20, 90) * np.array([1.0, 0.8, 0.65])
    slant = 0.1 * r  # inner end moves this far down (angry) or up (sad)
    lift = 0.14 * r if shape == "raised" else 0.0
    inner_drop = {"neutral": 0.0, "angry": slant, "sad": -slant, "raised": 0.0}[shape]
    half = 0.18 * r * rng.uniform(0.9, 1.1)
    for side, (ey, ex) in zip((-1, 1), eye_centres, strict=True):
        by = ey - 0.4 * r - lift + rng.uniform(-0.7, 0.7) * s
        bx = ex + rng.uniform(-0.7, 0.7) * s
        # The inner end points toward the nose: right of the left brow, left of the right one.
        inner = np.array([by + inner_drop, bx - side * half])
        outer = np.array([by - inner_drop, bx + side * half])
        rows, cols = _thick_segment(inner, outer, 2.2 * s)
        rr, cc = draw.polygon(rows, cols, shape=(size, size))
        _paint(canvas, face, rr, cc, colour)
        # A raised brow is told by where it is not: the region spans down to the unraised
        # place, so the skin between brow and eye, which carries that evidence, is in it.
        rr = np.concatenate([rr, rr + int(np.ceil(lift))]).clip(0, size - 1)
        mask |= _box((size, size), rr, np.concatenate([cc, cc]), pad)
    return mask & face & ~eyes


def _mouth(
    rng: np.random.Generator,
    canvas: np.ndarray,
    face: np.ndarray,
    eyes: np.ndarray,
    size: int,
    cy: float,
    cx: float,
    r: float,
    shape: str,
    lips: np.ndarray,
) -> np.ndarray:
    """A thick arc (smile, flat, frown) or an 'O' (open) below centre; mask is its padded box."""
    s = size / 64
    pad = max(1, round(2 * s))
    my = cy + 0.5 * r + rng.uniform(-0.7, 0.7) * s
    mx = cx + rng.uniform(-0.7, 0.7) * s
    if shape == "open":
        ry, rx = 0.18 * r * rng.uniform(0.9, 1.1), 0.15 * r * rng.uniform(0.9, 1.1)
        rr, cc = draw.ellipse(my, mx, ry, rx, shape=(size, size))
        _paint(canvas, face, rr, cc, lips)
        inner = 0.11 * r  # the lip ring's thickness
        ir, ic = draw.ellipse(my, mx, ry - inner, rx - inner, shape=(size, size))
        _paint(canvas, face, ir, ic, lips * 0.35)
    else:
        half = _MOUTH_HALF_WIDTH * r * rng.uniform(0.9, 1.1)
        sign = {"smile": 1.0, "flat": 0.0, "frown": -1.0}[shape]
        depth = sign * _MOUTH_DEPTH * r * rng.uniform(0.9, 1.1)
        x = np.linspace(-half, half, 9)
        # Centre `depth / 2` below, corners `depth / 2` above: a U for smile, a cap for frown.
        y = my + depth * (0.5 - (x / half) ** 2)
        width = _MOUTH_STROKE * r
        rows = np.concatenate([y - width / 2, (y + width / 2)[::-1]])
        cols = np.concatenate([mx + x, (mx + x)[::-1]])
        rr, cc = draw.polygon(rows, cols, shape=(size, size))
        _paint(canvas, face, rr, cc, lips)
    return _box((size, size), rr, cc, pad) & face & ~eyes


def _marker(
    rng: np.random.Generator, canvas: np.ndarray, size: int, band: int, corner: str
) -> np.ndarray:
    """A saturated square inside the border band at `corner`, coloured to stand out."""
    side = max(2, band - 1)
    inset = int(rng.integers(0, band - side + 1))
    top = inset if corner.startswith("top") else size - inset - side
    left = inset if corner.endswith("left") else size - inset - side
    patch = canvas[top : top + side, left : left + side]
    # The colour farthest from what it covers, so the shortcut is easy to learn.
    distance = np.abs(_MARKER_COLOURS - patch.reshape(-1, 3).mean(axis=0)).sum(axis=1)
    patch[:] = _MARKER_COLOURS[int(np.argmax(distance))]
    mask = np.zeros((size, size), bool)
    mask[top : top + side, left : left + side] = True
    return mask


def _centre_columns(mask: np.ndarray, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split `mask` into its left and right halves about the face disc's centre column."""
    middle = np.nonzero(face.any(axis=0))[0].mean()
    columns = np.arange(mask.shape[1])[None, :]
    return mask & (columns < middle), mask & (columns >= middle)


def _with_occlusion(face: Face, image: np.ndarray, name: str, region: np.ndarray) -> Face:
    """A copy of `face` with a new image, an added occluder region and an `occlusion` tag."""
    previous = face.tags.get("occlusion")
    occlusion = name if previous is None else f"{previous}+{name}"
    return Face(
        image, face.label, {**face.regions, name: region}, {**face.tags, "occlusion": occlusion}
    )


def with_glasses(face: Face) -> Face:
    """Dark glasses over both eyes (region `glasses`, tag `occlusion: glasses`)."""
    size = face.image.shape[:2]
    canvas = face.image.astype(np.float64)
    glasses = np.zeros(size, bool)
    lenses = []
    for eye in _centre_columns(face.regions["eyes"], face.regions["face"]):
        rows, cols = np.nonzero(eye)
        if not rows.size:
            continue
        cy, cx = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
        ry, rx = (rows.max() - rows.min()) / 2 + 0.5, (cols.max() - cols.min()) / 2 + 2
        rr, cc = draw.ellipse(cy, cx, ry, rx, shape=size)
        glasses[rr, cc] = True
        lenses.append((cy, cx, rx))
    if len(lenses) == 2:
        (ly, lx, lrx), (ry_, rx_, rrx) = lenses
        bridge = np.array([[ly, lx + lrx - 1], [ry_, rx_ - rrx + 1]])
        rr, cc = draw.polygon(*_thick_segment(bridge[0], bridge[1], 1.5), shape=size)
        glasses[rr, cc] = True
    glasses &= face.regions["face"]
    canvas[glasses] = (25.0, 25.0, 30.0)
    return _with_occlusion(face, canvas.astype(np.uint8), "glasses", glasses)


def with_mouth_mask(face: Face) -> Face:
    """A light surgical-mask patch across the face over the mouth (tag `occlusion: mouth_mask`)."""
    rows = np.nonzero(face.regions["mouth"].any(axis=1))[0]
    height = face.image.shape[0]
    yy = np.arange(height)[:, None]
    band = (yy >= rows.min() - 1) & (yy <= rows.max() + 2) if rows.size else yy < 0
    patch = face.regions["face"] & band
    canvas = face.image.astype(np.float64)
    pleats = np.where(yy % 3 == 0, 0.93, 1.0)  # faint horizontal folds, as on a real mask
    colour = np.broadcast_to(pleats[..., None] * np.array([215.0, 228.0, 238.0]), canvas.shape)
    canvas[patch] = colour[patch]
    return _with_occlusion(face, np.rint(canvas).astype(np.uint8), "mouth_mask", patch)


def relit(
    face: Face, *, brightness: float = 0.0, contrast: float = 1.0, gamma: float = 1.0
) -> Face:
    """Change the lighting: ((x - 0.5) * contrast + 0.5 + brightness) ** gamma on [0, 1]."""
    if contrast <= 0 or gamma <= 0:
        raise UsageError(f"relit: contrast={contrast} and gamma={gamma} must both be positive")
    x = face.image.astype(np.float64) / 255
    y = ((x - 0.5) * contrast + 0.5 + brightness).clip(0, 1) ** gamma
    image = np.rint(y * 255).astype(np.uint8)
    lighting = f"brightness={brightness:+.2f} contrast={contrast:.2f} gamma={gamma:.2f}"
    return Face(image, face.label, dict(face.regions), {**face.tags, "lighting": lighting})


VARIANTS: dict[str, Callable[[Face], Face]] = {
    "glasses": with_glasses,
    "mouth_mask": with_mouth_mask,
    "bright": partial(relit, brightness=0.25),
    "dark": partial(relit, brightness=-0.25, contrast=0.8),
}
