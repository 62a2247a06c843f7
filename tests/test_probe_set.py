"""The probe-set folder: round trip, digest, every malformed input named by file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xaigate.errors import UsageError
from xaigate.probes import (
    TASK_CLASSES,
    Face,
    faces_to_arrays,
    generate_faces,
    load_probe_set,
    write_probe_set,
)
from xaigate.probes.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def faces() -> list[Face]:
    return generate_faces(6, seed=31, task="smile")


@pytest.fixture
def written(tmp_path: Path, faces: list[Face]) -> Path:
    root = tmp_path / "probes"
    write_probe_set(root, faces, prefix="smile")
    return root


def manifest_lines(root: Path) -> list[str]:
    return (root / "manifest.jsonl").read_text().splitlines()


def rewrite_line(root: Path, number: int, edit: Callable[[dict], object]) -> None:
    """Replace manifest line `number` (1-based) by `edit(entry)`, written back as JSON."""
    lines = manifest_lines(root)
    lines[number - 1] = json.dumps(edit(json.loads(lines[number - 1])))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")


def test_round_trip_equals_the_generated_faces(written: Path, faces: list[Face]) -> None:
    probe_set = load_probe_set(written)
    images, labels = faces_to_arrays(faces, TASK_CLASSES["smile"])
    assert len(probe_set) == 6 and [p.id for p in probe_set] == [f"smile-{i:04d}" for i in range(6)]
    assert np.abs(probe_set.images() - images).max() <= 1 / 255
    assert probe_set.images().dtype == np.float32
    assert [p.label for p in probe_set] == [TASK_CLASSES["smile"][i] for i in labels]
    for probe, face in zip(probe_set, faces, strict=True):
        assert probe.tags == face.tags
        assert set(probe.regions) == set(face.regions)
        assert all(np.array_equal(probe.regions[k], face.regions[k]) for k in face.regions)
    assert [p.line for p in probe_set] == [1, 2, 3, 4, 5, 6]


def test_set_queries(written: Path) -> None:
    probe_set = load_probe_set(written)
    assert probe_set.labels == ["not_smile", "smile"]
    assert [p.id for p in probe_set.of_class("smile")] == ["smile-0001", "smile-0003", "smile-0005"]
    assert probe_set.region_names() == {"mouth", "eyes", "brows", "face"}
    assert len(probe_set.filtered(lambda p: p.tags["mouth"] == "smile")) == 3


def test_digest_is_stable_and_sees_one_pixel(tmp_path: Path, faces: list[Face]) -> None:
    one = write_probe_set(tmp_path / "one", faces)
    two = write_probe_set(tmp_path / "two", faces)
    assert one.digest == two.digest and len(one.digest) == 64
    assert load_probe_set(tmp_path / "one").digest == one.digest
    path = tmp_path / "two" / "images" / "face-0002.png"
    pixels = np.array(Image.open(path))
    pixels[30, 30, 0] ^= 1
    Image.fromarray(pixels).save(path)
    assert load_probe_set(tmp_path / "two").digest != one.digest


def test_blank_lines_are_allowed_and_counted(written: Path) -> None:
    lines = manifest_lines(written)
    (written / "manifest.jsonl").write_text("\n" + lines[0] + "\n\n   \n" + "\n".join(lines[1:]))
    probe_set = load_probe_set(written)
    assert len(probe_set) == 6 and [p.line for p in probe_set][:2] == [2, 5]


def bad_json(root: Path) -> int:
    lines = manifest_lines(root)
    lines[1] = lines[1][:-1]
    (root / "manifest.jsonl").write_text("\n".join(lines))
    return 2


def set_key(key: str, value: object, line: int = 2) -> Callable[[Path], int]:
    def edit(root: Path) -> int:
        rewrite_line(root, line, lambda entry: {**entry, key: value})
        return line

    return edit


def drop_key(key: str) -> Callable[[Path], int]:
    def edit(root: Path) -> int:
        rewrite_line(root, 3, lambda entry: {k: v for k, v in entry.items() if k != key})
        return 3

    return edit


def not_an_object(root: Path) -> int:
    rewrite_line(root, 2, lambda entry: [entry])
    return 2


def remove(relative: str, line: int) -> Callable[[Path], int]:
    def edit(root: Path) -> int:
        (root / relative).unlink()
        return line

    return edit


def garbage_image(root: Path) -> int:
    (root / "images" / "smile-0003.png").write_bytes(b"not a png at all")
    return 4


def small_mask(root: Path) -> int:
    Image.new("L", (32, 32)).save(root / "masks" / "smile-0004-eyes.png")
    return 5


@pytest.mark.parametrize(
    ("break_it", "says"),
    [
        (bad_json, "malformed JSON"),
        (not_an_object, "expected a JSON object, got list"),
        (drop_key("id"), "missing key 'id'"),
        (drop_key("image"), "missing key 'image'"),
        (drop_key("label"), "missing key 'label'"),
        (set_key("label", 3), "key 'label' must be a string"),
        (set_key("regions", ["mouth"]), "key 'regions' must be a JSON object"),
        (set_key("tags", "smile"), "key 'tags' must be a JSON object"),
        (set_key("regions", {"mouth": 7}), "region 'mouth' must name a mask file"),
        (set_key("imgae", "x.png"), "unknown key 'imgae'"),
        (set_key("id", "smile-0000", line=4), "duplicate id 'smile-0000' (first on line 1)"),
        (set_key("image", "images/x.png"), "image 'images/x.png' not found"),
        (remove("masks/smile-0002-mouth.png", 3), "mask 'masks/smile-0002-mouth.png' of region"),
        (garbage_image, "cannot read image 'images/smile-0003.png'"),
        (small_mask, "is 32x32 (WxH) but image 'images/smile-0004.png' is 64x64"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_each_error_names_manifest_line_and_value(
    written: Path, break_it: Callable[[Path], int], says: str
) -> None:
    line = break_it(written)
    with pytest.raises(UsageError) as error:
        load_probe_set(written)
    message = str(error.value)
    assert message.startswith(f"{written / 'manifest.jsonl'}:{line}: ") and says in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        (lambda root: None, "folder"),
        (lambda root: root.mkdir(), "manifest not found"),
        (lambda root: (root.mkdir(), (root / "manifest.jsonl").write_text("\n  \n")), "no probes"),
    ],
    ids=["no-folder", "no-manifest", "empty-manifest"],
)
def test_set_level_errors_name_the_manifest(
    tmp_path: Path, setup: Callable[[Path], object], says: str
) -> None:
    root = tmp_path / "absent"
    setup(root)
    with pytest.raises(UsageError, match=says) as error:
        load_probe_set(root)
    assert str(error.value).startswith(f"{root / 'manifest.jsonl'}: ")


def test_check_labels_names_line_label_and_model(written: Path) -> None:
    probe_set = load_probe_set(written)
    probe_set.check_labels(["not_smile", "smile"], "model.yaml")
    with pytest.raises(UsageError) as error:
        probe_set.check_labels(["smile", "frown"], "models/x/model.yaml")
    message = str(error.value)
    assert message.startswith(f"{written / 'manifest.jsonl'}:1: ")
    assert "'not_smile'" in message and "models/x/model.yaml" in message


def test_resized_keeps_masks_nearest_and_boolean(written: Path) -> None:
    probe_set = load_probe_set(written)
    assert probe_set.resized((64, 64)) is probe_set
    small = probe_set.resized((32, 48))
    probe = small.probes[0]
    assert probe.image.shape == (32, 48, 3) and probe.image.dtype == np.float32
    assert probe.image.min() >= 0.0 and probe.image.max() <= 1.0
    for mask in probe.regions.values():
        assert mask.shape == (32, 48) and mask.dtype == bool
    # Doubling the size copies each mask pixel into a 2x2 block: nearest neighbour, no blur.
    large = probe_set.resized((128, 128)).probes[0]
    for name, mask in large.regions.items():
        source = probe_set.probes[0].regions[name]
        assert np.array_equal(mask, source.repeat(2, axis=0).repeat(2, axis=1)), name
    assert small.images().shape == (6, 32, 48, 3) and small.digest == probe_set.digest


def test_images_of_mixed_sizes_need_resizing(written: Path) -> None:
    pixels = np.zeros((40, 40, 3), np.uint8)
    Image.fromarray(pixels).save(written / "images" / "smile-0005.png")
    rewrite_line(written, 6, lambda entry: {**entry, "regions": {}})
    probe_set = load_probe_set(written)
    with pytest.raises(UsageError, match="different sizes"):
        probe_set.images()
    assert probe_set.resized((64, 64)).images().shape == (6, 64, 64, 3)


def test_grayscale_and_rgba_images_load_as_rgb(written: Path) -> None:
    gray = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) % 256
    Image.fromarray(gray.astype(np.uint8), "L").save(written / "images" / "smile-0000.png")
    rgba = np.full((64, 64, 4), (10, 20, 30, 0), np.uint8)
    Image.fromarray(rgba, "RGBA").save(written / "images" / "smile-0001.png")
    probe_set = load_probe_set(written)
    image = probe_set.probes[0].image
    assert image.shape == (64, 64, 3)
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(
        image[..., 0], image[..., 2]
    )
    assert np.allclose(image[..., 0], gray / 255)
    assert np.allclose(probe_set.probes[1].image, np.array([10, 20, 30]) / 255)


def test_write_refuses_to_overwrite_and_leaves_no_temporaries(
    tmp_path: Path, written: Path, faces: list[Face]
) -> None:
    before = load_probe_set(written).digest
    with pytest.raises(UsageError, match="not empty"):
        write_probe_set(written, faces[:2])
    assert load_probe_set(written).digest == before
    replaced = write_probe_set(written, faces[:2], overwrite=True)
    assert len(replaced) == 2 and len(load_probe_set(written)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probes"]


def test_write_into_an_empty_folder(tmp_path: Path, faces: list[Face]) -> None:
    (tmp_path / "empty").mkdir()
    assert len(write_probe_set(tmp_path / "empty", faces[:1])) == 1


def test_failed_write_leaves_nothing_behind(tmp_path: Path, faces: list[Face]) -> None:
    broken = Face(np.zeros((64, 64), np.uint8), "smile", {}, {})
    with pytest.raises((ValueError, TypeError)):
        write_probe_set(tmp_path / "probes", [faces[0], broken])
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_unsafe_or_duplicate_ids(tmp_path: Path, faces: list[Face]) -> None:
    with pytest.raises(UsageError, match="'../x'"):
        write_probe_set(tmp_path / "a", faces[:1], ids=["../x"])
    with pytest.raises(UsageError, match="twice"):
        write_probe_set(tmp_path / "a", faces[:2], ids=["a", "a"])


def test_cli_writes_a_loadable_set_with_variants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "emotion"
    argv = ["--task", "emotion", "--n", "5", "--seed", "3", "--out", str(out)]
    assert main([*argv, "--variants", "glasses,bright", "--marker", "label_corner"]) == 0
    assert "wrote 15 probes" in capsys.readouterr().out
    probe_set = load_probe_set(out)
    assert [p.id for p in probe_set][:3] == [
        "emotion-0000",
        "emotion-0000-glasses",
        "emotion-0000-bright",
    ]
    glasses = probe_set.probes[1]
    assert glasses.tags["variant"] == "glasses" and glasses.tags["occlusion"] == "glasses"
    assert "glasses" in glasses.regions and probe_set.probes[0].tags["marker"] == "top-left"
    assert main(argv) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--variants", "sunburn"])


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    out = tmp_path / "smile"
    command = [sys.executable, "-m", "xaigate.probes", "--n", "4", "--seed", "1", "--out", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len(load_probe_set(out)) == 4
