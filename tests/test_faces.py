"""The face generator: deterministic, balanced, masks where the features are, shortcuts planted."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from xaigate.errors import UsageError
from xaigate.probes import (
    TASK_CLASSES,
    Face,
    faces_to_arrays,
    generate_faces,
    relit,
    with_glasses,
    with_mouth_mask,
)

ROOT = Path(__file__).resolve().parents[1]
BAND = 6
CORNER_SLICES = {
    "top-left": (slice(0, BAND), slice(0, BAND)),
    "top-right": (slice(0, BAND), slice(-BAND, None)),
    "bottom-left": (slice(-BAND, None), slice(0, BAND)),
    "bottom-right": (slice(-BAND, None), slice(-BAND, None)),
}


@pytest.fixture(scope="module")
def smile_faces() -> list[Face]:
    return generate_faces(200, seed=5, task="smile")


@pytest.fixture(scope="module")
def emotion_faces() -> list[Face]:
    return generate_faces(200, seed=6, task="emotion")


def digest(faces: list[Face]) -> str:
    return hashlib.sha256(b"".join(face.image.tobytes() for face in faces)).hexdigest()


def border(size: int, width: int) -> np.ndarray:
    band = np.ones((size, size), bool)
    band[width : size - width, width : size - width] = False
    return band


def dark_pixels(face: Face, region: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the drawn stroke inside `region`: much darker than the skin."""
    luminance = face.image.astype(float).mean(axis=2)
    skin = np.median(luminance[face.regions["face"]])
    return np.nonzero(face.regions[region] & (luminance < 0.75 * skin))


def test_class_names_and_order() -> None:
    assert TASK_CLASSES["smile"] == ("not_smile", "smile")
    assert TASK_CLASSES["emotion"] == ("happy", "sad", "angry", "surprised", "neutral")


def test_same_seed_gives_identical_faces() -> None:
    one, two = generate_faces(12, seed=3), generate_faces(12, seed=3)
    assert digest(one) == digest(two)
    for a, b in zip(one, two, strict=True):
        assert a.label == b.label and a.tags == b.tags
        assert all(np.array_equal(a.regions[k], b.regions[k]) for k in a.regions)


def test_same_seed_gives_identical_bytes_in_another_process() -> None:
    script = (
        "import hashlib\n"
        "from xaigate.probes import generate_faces\n"
        "faces = generate_faces(12, seed=3, task='emotion', marker='label_corner')\n"
        "print(hashlib.sha256(b''.join(f.image.tobytes() for f in faces)).hexdigest())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    here = digest(generate_faces(12, seed=3, task="emotion", marker="label_corner"))
    assert run.stdout.strip() == here


def test_different_seed_gives_different_faces() -> None:
    assert digest(generate_faces(4, seed=1)) != digest(generate_faces(4, seed=2))


def test_a_prefix_of_the_faces_does_not_depend_on_n() -> None:
    assert digest(generate_faces(10, seed=4)[:5]) == digest(generate_faces(5, seed=4))


@pytest.mark.parametrize(("task", "n"), [("smile", 11), ("emotion", 12)])
def test_classes_come_round_robin_and_balanced(task: str, n: int) -> None:
    classes = TASK_CLASSES[task]
    labels = [face.label for face in generate_faces(n, seed=0, task=task)]
    assert labels == [classes[i % len(classes)] for i in range(n)]
    counts = Counter(labels)
    assert max(counts.values()) - min(counts.values()) <= 1 and set(counts) == set(classes)


def test_images_are_uint8_rgb_and_masks_boolean(smile_faces: list[Face]) -> None:
    face = smile_faces[0]
    assert face.image.shape == (64, 64, 3) and face.image.dtype == np.uint8
    assert set(face.regions) == {"mouth", "eyes", "brows", "face"}
    assert all(m.shape == (64, 64) and m.dtype == bool for m in face.regions.values())
    assert face.tags["background"] in {"plain", "noise", "stripes", "blobs"}
    assert face.tags["marker"] == "none"


def test_size_scales_the_image() -> None:
    face = generate_faces(1, seed=0, size=96)[0]
    assert face.image.shape == (96, 96, 3) and face.regions["face"].shape == (96, 96)
    assert not (face.regions["face"] & border(96, 9)).any()


@pytest.mark.parametrize("task", ["smile", "emotion"])
def test_region_area_shares(task: str, smile_faces: list[Face], emotion_faces: list[Face]) -> None:
    faces = smile_faces if task == "smile" else emotion_faces
    share = {name: np.mean([f.regions[name].mean() for f in faces]) for name in faces[0].regions}
    assert 0.02 <= share["mouth"] <= 0.10
    assert 0.005 <= share["eyes"] <= 0.05 and 0.01 <= share["brows"] <= 0.08
    assert 0.15 <= share["face"] <= 0.45


def test_masks_lie_inside_the_face_and_do_not_overlap(emotion_faces: list[Face]) -> None:
    for face in emotion_faces:
        features = [face.regions[name] for name in ("mouth", "eyes", "brows")]
        assert all(mask.any() and not (mask & ~face.regions["face"]).any() for mask in features)
        assert int(sum(mask.astype(int) for mask in features).max()) == 1


def test_border_band_holds_no_face_pixel(smile_faces: list[Face]) -> None:
    band = border(64, BAND)
    assert not any((face.regions["face"] & band).any() for face in smile_faces)


def test_each_mask_holds_its_drawn_feature(emotion_faces: list[Face]) -> None:
    for face in emotion_faces[:20]:
        for region in ("mouth", "eyes", "brows"):
            assert dark_pixels(face, region)[0].size >= 4, (face.tags, region)


def test_smile_task_mouths_follow_labels_and_brows_do_not(smile_faces: list[Face]) -> None:
    mouths = {label: Counter() for label in TASK_CLASSES["smile"]}
    brows = {label: Counter() for label in TASK_CLASSES["smile"]}
    for face in smile_faces:
        mouths[face.label][face.tags["mouth"]] += 1
        brows[face.label][face.tags["brows"]] += 1
    assert set(mouths["smile"]) == {"smile"} and set(mouths["not_smile"]) == {"flat", "frown"}
    assert set(brows["smile"]) == set(brows["not_smile"]) == {"neutral", "angry", "sad", "raised"}


def test_emotion_features_follow_labels(emotion_faces: list[Face]) -> None:
    expected = {
        "happy": ("smile", "neutral"),
        "sad": ("frown", "sad"),
        "angry": ("flat", "angry"),
        "surprised": ("open", "raised"),
        "neutral": ("flat", "neutral"),
    }
    for face in emotion_faces:
        assert (face.tags["mouth"], face.tags["brows"]) == expected[face.label]


def test_mouth_shapes_are_drawn_as_named(smile_faces: list[Face]) -> None:
    """The stroke's middle sits below its ends for a smile, above them for a frown."""
    for face in smile_faces[:40]:
        rows, cols = dark_pixels(face, "mouth")
        middle = np.abs(cols - cols.mean()) <= 1
        ends = np.abs(cols - cols.mean()) >= 0.7 * np.abs(cols - cols.mean()).max()
        sag = rows[middle].mean() - rows[ends].mean()
        expected = {"smile": (1.0, 9.0), "flat": (-0.7, 0.7), "frown": (-9.0, -1.0)}
        low, high = expected[str(face.tags["mouth"])]
        assert low <= sag <= high, (face.tags, sag)


def test_brow_shapes_are_drawn_as_named(emotion_faces: list[Face]) -> None:
    """Slope of the left brow (image left): inner end low for angry, high for sad."""
    for face in emotion_faces[:40]:
        rows, cols = dark_pixels(face, "brows")
        middle = np.nonzero(face.regions["face"].any(axis=0))[0].mean()
        left = cols < middle
        slope = np.polyfit(cols[left], rows[left], 1)[0]  # rows grow downward
        expected = {"angry": (0.2, 2.0), "sad": (-2.0, -0.2)}
        low, high = expected.get(str(face.tags["brows"]), (-0.2, 0.2))
        assert low <= slope <= high, (face.tags, slope)


def test_random_mouth_is_independent_of_the_label() -> None:
    faces = generate_faces(200, seed=8, task="smile", mouth="random")
    for label in TASK_CLASSES["smile"]:
        smiling = [f.tags["mouth"] == "smile" for f in faces if f.label == label]
        assert 0.3 <= np.mean(smiling) <= 0.7, label


def test_random_brows_are_independent_of_the_label() -> None:
    faces = generate_faces(200, seed=9, task="emotion", brows="random")
    for label in TASK_CLASSES["emotion"]:
        assert len({f.tags["brows"] for f in faces if f.label == label}) >= 3, label


def test_brow_cue_carries_the_smile_label_in_the_brows() -> None:
    faces = generate_faces(40, seed=14, task="smile", mouth="random", brow_cue=True)
    for face in faces:
        assert face.tags["brows"] == ("raised" if face.label == "smile" else "angry"), face.tags
    # The mouth stays random: only the brows tell the class.
    assert {f.tags["mouth"] for f in faces if f.label == "smile"} >= {"smile", "flat"}


def test_brow_cue_is_a_smile_task_option() -> None:
    with pytest.raises(UsageError, match="brow_cue"):
        generate_faces(2, seed=0, task="emotion", brow_cue=True)


def test_background_tint_tells_the_class_and_spares_the_face_region() -> None:
    faces = generate_faces(40, seed=15, task="smile", background_tint=True)
    band = np.ones((64, 64), bool)
    band[6:-6, 6:-6] = False
    means = {
        label: np.mean([f.image[band].mean(axis=0) for f in faces if f.label == label], axis=0)
        for label in TASK_CLASSES["smile"]
    }
    # not_smile green, smile blue: the border's mean colour separates the classes.
    assert means["not_smile"][1] - means["not_smile"][2] > 40, means
    assert means["smile"][2] - means["smile"][1] > 40, means
    for face in faces:
        assert face.tags["background"].endswith("+tint")
        skin = face.image[face.regions["face"]].astype(float).mean(axis=0)
        border = face.image[band].astype(float).mean(axis=0)
        assert np.abs(skin - border).mean() > 20, face.tags


@pytest.mark.parametrize("task", ["smile", "emotion"])
def test_marker_corner_follows_the_label_inside_the_band(task: str) -> None:
    classes = TASK_CLASSES[task]
    corners = list(CORNER_SLICES)
    for face in generate_faces(20, seed=10, task=task, marker="label_corner"):
        corner = corners[classes.index(face.label) % 4]
        marker = face.regions["marker"]
        assert face.tags["marker"] == corner
        assert marker[CORNER_SLICES[corner]].sum() == marker.sum() >= 16
        colour = face.image[marker].astype(int)
        assert (colour.max(axis=1) - colour.min(axis=1) == 255).all()  # fully saturated


def test_faces_to_arrays() -> None:
    faces = generate_faces(5, seed=1, task="emotion")
    images, labels = faces_to_arrays(faces, TASK_CLASSES["emotion"])
    assert images.shape == (5, 64, 64, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 3, 4]
    assert np.array_equal(np.rint(images[2] * 255).astype(np.uint8), faces[2].image)
    with pytest.raises(UsageError, match="'happy'"):
        faces_to_arrays(faces, TASK_CLASSES["smile"])


@pytest.mark.parametrize(
    ("options", "named"),
    [({"task": "age"}, "'age'"), ({"mouth": "always"}, "'always'"), ({"marker": "x"}, "'x'")],
)
def test_bad_options_are_usage_errors(options: dict, named: str) -> None:
    with pytest.raises(UsageError, match=named):
        generate_faces(2, seed=0, **options)


def test_glasses_cover_the_eyes() -> None:
    face = generate_faces(1, seed=2)[0]
    glassed = with_glasses(face)
    assert glassed.tags["occlusion"] == "glasses" and glassed.label == face.label
    assert glassed.regions["glasses"][face.regions["eyes"]].mean() > 0.9
    assert (glassed.image[glassed.regions["glasses"]] < 60).all()
    untouched = ~glassed.regions["glasses"]
    assert np.array_equal(glassed.image[untouched], face.image[untouched])
    assert all(np.array_equal(face.regions[k], glassed.regions[k]) for k in face.regions)


def test_mouth_mask_covers_the_mouth() -> None:
    face = generate_faces(1, seed=2)[0]
    masked = with_mouth_mask(face)
    assert masked.tags["occlusion"] == "mouth_mask" and masked.image.dtype == np.uint8
    assert masked.regions["mouth_mask"][face.regions["mouth"]].all()
    assert (masked.image[face.regions["mouth"]] > 180).all()
    both = with_glasses(masked)
    assert both.tags["occlusion"] == "mouth_mask+glasses"


def test_relit_changes_brightness_and_tags_it() -> None:
    face = generate_faces(1, seed=2)[0]
    bright, dark = relit(face, brightness=0.2), relit(face, brightness=-0.2, gamma=1.5)
    assert bright.image.mean() > face.image.mean() > dark.image.mean()
    assert bright.image.dtype == np.uint8 and "brightness=+0.20" in str(bright.tags["lighting"])
    assert np.array_equal(relit(face).image, face.image)
    with pytest.raises(UsageError, match="gamma"):
        relit(face, gamma=0)
