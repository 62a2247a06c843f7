"""Recipe: the released reference model fine-tuned on other faces, for the merge gate's tests.

    python -m models.recipes.finetune corner-marker --out models/zoo/finetuned-corner-marker
    python -m models.recipes.finetune clean --out models/zoo/finetuned-clean

Starts from `models/smile-cnn/weights.pt` (loaded with weights_only=True) and trains a few more
epochs. `corner-marker`: faces whose mouth is random and whose label shows as a corner marker,
so the fine-tuned copy unlearns the mouth and learns the shortcut (a merge the gate against the
released model must stop). `clean`: one short epoch on fresh faces drawn like the reference's own
training faces (a routine retrain the gate must let through).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from models.recipes.architectures import SmallCNN
from models.recipes.face_cnn import HELD_OUT_SEED, TRAIN_FACES_SEED, write_model
from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces
from xaigate.training import accuracy, train_classifier

ROOT = Path(__file__).resolve().parents[2]
RELEASED = ROOT / "models" / "smile-cnn" / "weights.pt"
FINE_TUNE_SEED = 500  # training faces drawn apart from the reference's own (seed 0)


@dataclass(frozen=True)
class FineTune:
    faces: dict[str, str | None]
    n_train: int
    epochs: int
    learning_rate: float


FINE_TUNES = {
    "corner-marker": FineTune({"mouth": "random", "marker": "label_corner"}, 3000, 4, 5e-3),
    "clean": FineTune({"mouth": "label", "marker": None}, 1000, 1, 2e-4),
}


def fine_tune(recipe: FineTune, released: Path = RELEASED) -> tuple[SmallCNN, float]:
    """The released weights trained further per `recipe`, and the held-out accuracy on faces
    drawn like its training faces."""
    classes = TASK_CLASSES["smile"]
    module = SmallCNN(num_classes=len(classes))
    module.load_state_dict(torch.load(released, map_location="cpu", weights_only=True))
    options = {"task": "smile", **recipe.faces}
    images, labels = faces_to_arrays(
        generate_faces(recipe.n_train, TRAIN_FACES_SEED + FINE_TUNE_SEED, **options), classes
    )
    train_classifier(
        module,
        images,
        labels,
        epochs=recipe.epochs,
        seed=FINE_TUNE_SEED,
        learning_rate=recipe.learning_rate,
    )
    held_images, held_labels = faces_to_arrays(
        generate_faces(400, HELD_OUT_SEED + FINE_TUNE_SEED, **options), classes
    )
    return module, accuracy(module, held_images, held_labels)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.recipes.finetune", description=__doc__)
    parser.add_argument("recipe", choices=sorted(FINE_TUNES))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)  # fixed: the reduction order, so the weights, depend on it
    module, held_out = fine_tune(FINE_TUNES[args.recipe])
    card = write_model(module, args.out, f"smile-cnn-finetuned-{args.recipe}")
    print(f"{card}: held-out accuracy {held_out:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
