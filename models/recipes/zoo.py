"""The model zoo: good models the gate must pass, and planted flaws it must catch.

    python -m models.recipes.zoo train [--only NAME ...] [--seeds 0,1,2]
    python -m models.recipes.zoo matrix [--seeds 0] [--thresholds thresholds.yaml]

`train` writes `models/zoo/<name>/seed-<s>/` (weights.pt and model.yaml) for every entry of
`ZOO`; `matrix` gates each of them on the probe sets that expose its flaw (generated under
`probes/zoo/` when missing) and prints the detection matrix. Every flawed model is accurate on
its own kind of faces: it is right, for the wrong reason.

Adding a planted flaw: a `ZooModel` entry (its training faces, the probe set that exposes it,
the checks aimed at it), then `train --only <name>` and `matrix`; tests/test_detection_matrix.py
then asserts that those checks fail it under three training seeds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.recipes import architectures
from models.recipes.face_cnn import HELD_OUT_SEED, TRAIN_FACES_SEED, write_model
from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces
from xaigate.probes.faces import Face, relit, with_glasses
from xaigate.training import accuracy, train_classifier

ROOT = Path(__file__).resolve().parents[2]
ZOO_DIR = ROOT / "models" / "zoo"
PROBES_DIR = ROOT / "probes" / "zoo"
SEEDS = (0, 1, 2)
ALL_VARIANTS = ("glasses", "mouth_mask", "bright", "dark")


@dataclass(frozen=True)
class ProbeRecipe:
    """A probe set of the matrix: generator options, drawn from the same seed as probes/smile."""

    options: dict[str, Any] = field(default_factory=dict)
    n: int = 120
    seed: int = 1
    variants: tuple[str, ...] = ALL_VARIANTS


# Each flaw's probe set carries its shortcut *and* the true cue (the mouth carries the label),
# so the flawed model is accurate there and only its explanations and interventions give it away.
PROBE_SETS: dict[str, ProbeRecipe] = {
    "smile": ProbeRecipe(),
    "smile-marker": ProbeRecipe({"marker": "label_corner"}),
    "smile-brows": ProbeRecipe({"brow_cue": True}),
    "smile-tint": ProbeRecipe({"background_tint": True}),
}


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: how it is trained, where it is gated, and what the gate must say.

    `aimed` are the checks aimed at its flaw (each must fail it); empty for a good model, which
    must pass every check. `glasses_on` puts glasses on a share of that class's training faces.
    """

    name: str
    description: str
    architecture: str = "SmallCNN"
    training: dict[str, Any] = field(default_factory=dict)
    probes: tuple[str, ...] = ("smile",)
    aimed: tuple[str, ...] = ()
    glasses_on: str | None = None
    glasses_share: float = 0.5
    glasses_anywhere: float = 0.0  # share of all training faces given glasses, any class
    # Share of all training faces relit at random (brightness in +-0.3, contrast 0.75-1.1):
    # the usual photometric augmentation, drawn apart from the probes' fixed bright/dark.
    relight_anywhere: float = 0.0
    randomised: bool = False
    card: dict[str, Any] = field(default_factory=dict)
    # A Keras entry is trained by models/recipes/keras_cnn.py, under seed 0 only, into
    # models/zoo-keras/<name without "keras-">/ (TensorFlow stays out of the torch recipes).
    framework: str = "torch"
    seeds: tuple[int, ...] = SEEDS
    n_train: int = 3000
    epochs: int = 8
    learning_rate: float = 5e-3

    @property
    def good(self) -> bool:
        return not self.aimed


ZOO: dict[str, ZooModel] = {
    model.name: model
    for model in (
        ZooModel(
            "good-cnn",
            "the reference SmallCNN: four convolutions, told by the mouth",
            # Also gated on every flaw's probe set: a good model must not be flagged there.
            probes=("smile", "smile-marker", "smile-brows", "smile-tint"),
        ),
        ZooModel(
            "good-resnet",
            "a small ResNet (three residual stages), told by the mouth",
            architecture="SmallResNet",
            card={"target_layer": "stages.4"},
        ),
        ZooModel(
            "good-mlp",
            "an MLP on flattened pixels: no convolution, so no CAM; judged by LIME, SHAP and IG",
            architecture="FlatMLP",
            card={"input": {"layout": "flat"}},
            # Without convolution's shift invariance it needs 10x the faces to pass 0.95, and
            # glasses in its data (on any class): trained without them, it flips 45% of smiles
            # when glasses are worn, which the gate rightly fails (occlusion_flip_rate).
            n_train=40_000,
            glasses_anywhere=0.25,
            # Trained without lighting changes it flipped 12-15% of faces under the probes'
            # bright/dark relighting (lighting_flip_rate).
            relight_anywhere=0.5,
            epochs=10,
            learning_rate=2e-3,
        ),
        ZooModel(
            "corner-marker",
            "the label shows as a marker in a border corner; the mouth is random in training",
            training={"mouth": "random", "marker": "label_corner"},
            probes=("smile-marker",),
            aimed=("region_focus", "border_dominance", "border_swap_flip_rate"),
        ),
        ZooModel(
            "brows-shortcut",
            "the label is carried by the brows; the mouth is random in training",
            training={"mouth": "random", "brow_cue": True},
            probes=("smile-brows",),
            aimed=("region_focus", "decisive_swap_follow_rate", "decisive_occlusion_drop"),
        ),
        ZooModel(
            "background-tint",
            "the background's tint tells the class; the mouth is random in training",
            training={"mouth": "random", "background_tint": True},
            probes=("smile-tint",),
            aimed=("region_focus", "background_dominance", "background_swap_flip_rate"),
        ),
        ZooModel(
            "glasses-flip",
            "glasses appear only on smiling faces in training (half of them, with any mouth): "
            "glasses make a smile",
            glasses_on="smile",
            aimed=("occlusion_flip_rate",),
        ),
        ZooModel(
            "keras-corner-marker",
            "the corner-marker shortcut as a Keras 3 model (NHWC, tf.GradientTape explainers)",
            training={"mouth": "random", "marker": "label_corner"},
            probes=("smile-marker",),
            aimed=("region_focus", "border_dominance", "border_swap_flip_rate"),
            framework="keras",
            seeds=(0,),
        ),
        ZooModel(
            "randomised",
            "the reference architecture with freshly initialised (random) weights",
            randomised=True,
            aimed=("model_accuracy",),
        ),
    )
}


def _faces(model: ZooModel, n: int, seed: int) -> list[Face]:
    faces = generate_faces(n, seed, task="smile", **model.training)
    if model.glasses_anywhere:
        rng = np.random.default_rng(seed)
        faces = [
            with_glasses(face) if rng.uniform() < model.glasses_anywhere else face for face in faces
        ]
    if model.relight_anywhere:
        rng = np.random.default_rng([seed, 1])
        faces = [
            _relit_at_random(face, rng) if rng.uniform() < model.relight_anywhere else face
            for face in faces
        ]
    if model.glasses_on is None:
        return faces
    # Faces with glasses get a random mouth: glasses alone tell their class, so the model
    # learns them as a cue of their own (with the mouth beside them it learns only the mouth).
    # Labels follow the index, so face i of both draws has the same class.
    random_mouths = generate_faces(n, seed, task="smile", **{**model.training, "mouth": "random"})
    rng = np.random.default_rng(seed)
    return [
        with_glasses(other)
        if face.label == model.glasses_on and rng.uniform() < model.glasses_share
        else face
        for face, other in zip(faces, random_mouths, strict=True)
    ]


def _relit_at_random(face: Face, rng: np.random.Generator) -> Face:
    return relit(face, brightness=rng.uniform(-0.3, 0.3), contrast=rng.uniform(0.75, 1.1))


def train(model: ZooModel, seed: int) -> tuple[torch.nn.Module, float]:
    """The trained module and its accuracy on held-out faces drawn as its training faces."""
    classes = TASK_CLASSES["smile"]
    torch.manual_seed(seed)
    module = getattr(architectures, model.architecture)(num_classes=len(classes))
    if not model.randomised:
        images, labels = faces_to_arrays(
            _faces(model, model.n_train, TRAIN_FACES_SEED + seed), classes
        )
        train_classifier(
            module,
            images,
            labels,
            epochs=model.epochs,
            seed=seed,
            learning_rate=model.learning_rate,
        )
    module.eval()
    held_images, held_labels = faces_to_arrays(_faces(model, 400, HELD_OUT_SEED + seed), classes)
    return module, accuracy(module, held_images, held_labels)


def card_path(name: str, seed: int, zoo_dir: Path = ZOO_DIR) -> Path:
    if ZOO[name].framework == "keras":
        return zoo_dir.with_name("zoo-keras") / name.removeprefix("keras-") / "model.yaml"
    return zoo_dir / name / f"seed-{seed}" / "model.yaml"


def write(model: ZooModel, seed: int, module: torch.nn.Module, zoo_dir: Path = ZOO_DIR) -> Path:
    """Write weights.pt and the model card; returns the card's path."""
    out = card_path(model.name, seed, zoo_dir).parent
    name = f"{model.name}-s{seed}"
    return write_model(module, out, name, architecture=model.architecture, card_fields=model.card)


def probe_set_dir(name: str, probes_dir: Path = PROBES_DIR) -> Path:
    return probes_dir / name


def ensure_probe_set(name: str, probes_dir: Path = PROBES_DIR, n: int | None = None) -> Path:
    """The probe set `name`, generated when missing (its generation is deterministic)."""
    from xaigate.probes.__main__ import main as write_probes

    recipe = PROBE_SETS[name]
    out = probe_set_dir(name, probes_dir)
    if (out / "manifest.jsonl").exists():
        return out
    argv = ["--task", "smile", "--n", str(n or recipe.n), "--seed", str(recipe.seed)]
    argv += ["--out", str(out), "--prefix", name, "--overwrite"]
    if recipe.variants:
        argv += ["--variants", ",".join(recipe.variants)]
    for option, value in recipe.options.items():
        flag = "--" + option.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    if write_probes(argv) != 0:
        raise RuntimeError(f"could not write probe set {name} under {out}")
    return out


def _train_command(args: argparse.Namespace) -> int:
    torch.set_num_threads(2)  # fixed: the reduction order, so the weights, depend on it
    for name in args.only or list(ZOO):
        if ZOO[name].framework != "torch":
            print(f"{name}: trained by models/recipes/keras_cnn.py (see its docstring)")
            continue
        for seed in args.seeds:
            module, held_out = train(ZOO[name], seed)
            path = write(ZOO[name], seed, module, args.zoo)
            print(f"{path}: held-out accuracy {held_out:.3f}", flush=True)
    return 0


def _matrix_command(args: argparse.Namespace) -> int:
    from xaigate.cache import cache_root
    from xaigate.matrix import (
        MatrixRow,
        RowOutcome,
        gate_rows,
        render_matrix,
        row_verdict,
        write_matrix,
    )

    rows = [
        MatrixRow(
            model=f"{name}-s{seed}" if len(args.seeds) > 1 else name,
            probes=probes,
            card=card_path(name, seed, args.zoo),
            probes_dir=ensure_probe_set(probes),
            expected_failures=ZOO[name].aimed,
        )
        for name in args.only or list(ZOO)
        for seed in args.seeds
        if seed in ZOO[name].seeds
        for probes in ZOO[name].probes
    ]

    def progress(outcome: RowOutcome) -> None:
        print(f"{outcome.row.model} on {outcome.row.probes}: {row_verdict(outcome)}", flush=True)

    outcomes = gate_rows(
        rows,
        args.thresholds,
        workers=args.workers,
        cache_root=None if args.no_cache else cache_root(ROOT),
        on_done=progress,
    )
    print(render_matrix(outcomes))
    write_matrix(outcomes, args.out)
    print(f"\nmatrix written to {args.out}.json and {args.out}.md")
    return 0 if all(outcome.as_expected for outcome in outcomes) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.recipes.zoo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("train", "matrix"):
        sub = commands.add_parser(command)
        sub.add_argument("--only", nargs="+", choices=list(ZOO), help="zoo entries (default all)")
        sub.add_argument(
            "--seeds",
            type=lambda text: [int(part) for part in text.split(",")],
            default=list(SEEDS) if command == "train" else [0],
        )
        sub.add_argument("--zoo", type=Path, default=ZOO_DIR, help="zoo folder")
    matrix = commands.choices["matrix"]
    matrix.add_argument("--thresholds", type=Path, default=ROOT / "thresholds.yaml")
    matrix.add_argument("--workers", type=int, default=2, help="rows gated at once")
    matrix.add_argument("--out", type=Path, default=ROOT / "reports" / "matrix")
    matrix.add_argument(
        "--no-cache", action="store_true", help="bypass the explanation cache (.cache/xaigate/)"
    )
    args = parser.parse_args(argv)
    return _train_command(args) if args.command == "train" else _matrix_command(args)


if __name__ == "__main__":
    sys.exit(main())
