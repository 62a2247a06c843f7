"""Recipe: the reference face classifiers (and planted-shortcut variants of them).

    python -m models.recipes.face_cnn --task smile --out models/smile-cnn
    python -m models.recipes.face_cnn --task emotion --out models/emotion-cnn

trains SmallCNN on generated faces (never the probe images: the training seeds differ) and writes
`weights.pt` (a plain state dict) and `model.yaml` beside it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
import yaml

from models.recipes.architectures import SmallCNN
from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces
from xaigate.training import accuracy, train_classifier

ARCHITECTURE_FILE = Path(__file__).with_name("architectures.py")
TRAIN_FACES_SEED = 7_000_000  # probe sets use small seeds; training faces never coincide
HELD_OUT_SEED = 8_000_000


def train_face_cnn(
    task: str = "smile",
    *,
    seed: int = 0,
    n_train: int = 3000,
    epochs: int = 8,
    mouth: str = "label",
    marker: str | None = None,
) -> tuple[SmallCNN, float]:
    """Train SmallCNN on `task`; returns it and its accuracy on held-out faces drawn with the
    same `mouth`/`marker` options."""
    classes = TASK_CLASSES[task]
    options = {"task": task, "mouth": mouth, "marker": marker}
    images, labels = faces_to_arrays(
        generate_faces(n_train, TRAIN_FACES_SEED + seed, **options), classes
    )
    torch.manual_seed(seed)
    module = SmallCNN(num_classes=len(classes))
    train_classifier(module, images, labels, epochs=epochs, seed=seed)
    held_images, held_labels = faces_to_arrays(
        generate_faces(400, HELD_OUT_SEED + seed, **options), classes
    )
    return module, accuracy(module, held_images, held_labels)


def write_model(
    module: torch.nn.Module,
    out: Path,
    name: str,
    task: str = "smile",
    *,
    architecture: str = "SmallCNN",
    card_fields: dict[str, Any] | None = None,
) -> Path:
    """Write `weights.pt` and a model card for `architecture` (a class in architectures.py);
    `card_fields` replace the card's fields (a mapping field, such as `input`, is updated).
    Returns the card's path."""
    out.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), out / "weights.pt")
    architecture_file = os.path.relpath(ARCHITECTURE_FILE, out.resolve())
    card: dict[str, Any] = {
        "name": name,
        "framework": "torch",
        "format": "state_dict",
        "architecture": f"{architecture_file}:{architecture}",
        "architecture_kwargs": {"num_classes": len(TASK_CLASSES[task])},
        "artifact": "weights.pt",
        "input": {"size": [64, 64], "channels": 3, "layout": "NCHW", "range": [0, 1]},
        "output": "logits",
        "classes": list(TASK_CLASSES[task]),
    }
    for key, value in (card_fields or {}).items():
        card[key] = {**card[key], **value} if isinstance(value, dict) else value
    path = out / "model.yaml"
    path.write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return path


def recipe_parser(description: str) -> argparse.ArgumentParser:
    """The options every face-classifier recipe takes (task, output, seed, training faces)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--task", choices=sorted(TASK_CLASSES), default="smile")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", help="model name (default: the --out folder's name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--mouth", choices=["label", "random"], default="label")
    parser.add_argument("--marker", choices=["label_corner"], default=None)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = recipe_parser(__doc__.splitlines()[0]).parse_args(argv)
    torch.set_num_threads(2)  # fixed: the reduction order, so the weights, depend on it
    name = args.name or args.out.name
    module, held_out = train_face_cnn(
        args.task, seed=args.seed, epochs=args.epochs, mouth=args.mouth, marker=args.marker
    )
    # 100 images per forward pass: the CNN's fastest batch on 2 cores (bench.explainer_floor).
    card = write_model(module, args.out, name, args.task, card_fields={"batch_size": 100})
    print(f"{card}: trained {name} (seed {args.seed}); held-out accuracy {held_out:.3f}")


if __name__ == "__main__":
    main()
