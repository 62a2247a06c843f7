"""Recipe: the Keras reference smile classifier, and the Keras twin of a PyTorch SmallCNN.

    python -m models.recipes.keras_cnn --out models/smile-keras
    python -m models.recipes.keras_cnn --out models/zoo-keras/corner-marker \\
        --name keras-corner-marker \\
        --mouth random --marker label_corner

trains `keras_small_cnn` (SmallCNN's layers, channels-last) on the same generated faces and
seeds as `face_cnn.py`, deterministically (`keras.utils.set_random_seed`, TensorFlow op
determinism, one thread), and writes `model.keras` and `model.yaml` beside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from models.recipes.face_cnn import HELD_OUT_SEED, TRAIN_FACES_SEED, recipe_parser
from xaigate.probes import TASK_CLASSES, faces_to_arrays, generate_faces

BN_EPSILON = 1e-5  # torch's BatchNorm2d default (Keras' is 1e-3): twins must agree


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def keras_small_cnn(num_classes: int = 2, width: int = 8, size: int = 64) -> Any:
    """SmallCNN (architectures.py) in Keras: four 3x3 convolutions without bias, each with batch
    norm and ReLU, max pooling after the first two, global average pooling, one dense layer
    giving logits. Channels-last (NHWC) input in [0, 1]."""
    keras = _keras()
    layers = keras.layers
    stack: list[Any] = [keras.Input((size, size, 3), name="images")]
    for index, (channels, pool) in enumerate(
        [(width, True), (2 * width, True), (4 * width, False), (4 * width, False)], start=1
    ):
        stack += [
            layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"conv{index}"),
            layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=f"bn{index}"),
            layers.ReLU(name=f"relu{index}"),
        ]
        if pool:
            stack.append(layers.MaxPooling2D(2, name=f"pool{index}"))
    stack += [
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(num_classes, name="classifier"),
    ]
    return keras.Sequential(stack, name="small_cnn")


def copy_torch_weights(module: Any, model: Any) -> Any:
    """Load a trained PyTorch SmallCNN's weights into `keras_small_cnn`: convolution kernels
    (out, in, kh, kw) -> (kh, kw, in, out), batch-norm weight, bias and running statistics (its
    eval-mode behaviour), the linear layer transposed."""
    state = {name: tensor.detach().cpu().numpy() for name, tensor in module.state_dict().items()}
    convs = sorted({name.rsplit(".", 1)[0] for name in state if state[name].ndim == 4})
    convs.sort(key=lambda name: int(name.split(".")[-1]))
    for index, conv in enumerate(convs, start=1):
        model.get_layer(f"conv{index}").set_weights([state[f"{conv}.weight"].transpose(2, 3, 1, 0)])
        bn = f"{conv.rsplit('.', 1)[0]}.{int(conv.split('.')[-1]) + 1}"
        model.get_layer(f"bn{index}").set_weights(
            [state[f"{bn}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")]
        )
    model.get_layer("classifier").set_weights(
        [state["classifier.weight"].T, state["classifier.bias"]]
    )
    return model


def train_keras_face_cnn(
    task: str = "smile",
    *,
    seed: int = 0,
    n_train: int = 3000,
    epochs: int = 8,
    mouth: str = "label",
    marker: str | None = None,
    batch_size: int = 64,
    learning_rate: float = 5e-3,
) -> tuple[Any, float]:
    """Train `keras_small_cnn` on `task` with face_cnn.py's faces and seeds; returns it and its
    accuracy on held-out faces drawn with the same options."""
    keras = _keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    classes = TASK_CLASSES[task]
    options = {"task": task, "mouth": mouth, "marker": marker}
    images, labels = faces_to_arrays(
        generate_faces(n_train, TRAIN_FACES_SEED + seed, **options), classes
    )
    model = keras_small_cnn(len(classes))
    steps = epochs * int(np.ceil(len(images) / batch_size))
    # A one-cycle schedule like face_cnn.py's: warm up to the peak over 30%, then cosine down.
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate / 25,
        decay_steps=steps - int(0.3 * steps),
        alpha=1e-4 / 25,
        warmup_target=learning_rate,
        warmup_steps=int(0.3 * steps),
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(images, labels, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    held_images, held_labels = faces_to_arrays(
        generate_faces(400, HELD_OUT_SEED + seed, **options), classes
    )
    logits = model.predict_on_batch(held_images)
    return model, float((np.argmax(logits, axis=1) == held_labels).mean())


def write_keras_model(model: Any, out: Path, name: str, task: str = "smile") -> Path:
    """Write `model.keras` (no optimiser state) and a model card; returns the card's path."""
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras", include_optimizer=False)
    card = {
        "name": name,
        "framework": "keras",
        "format": "keras",
        "artifact": "model.keras",
        "input": {"size": [64, 64], "channels": 3, "layout": "NHWC", "range": [0, 1]},
        "output": "logits",
        "classes": list(TASK_CLASSES[task]),
        "target_layer": "conv4",
    }
    path = out / "model.yaml"
    path.write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    args = recipe_parser(__doc__.splitlines()[0]).parse_args(argv)
    # Fixed threads: the reduction order, so the weights, depend on it.
    os.environ.setdefault("XAIGATE_TF_THREADS", "1")
    _keras()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    name = args.name or args.out.name
    model, held_out = train_keras_face_cnn(
        args.task, seed=args.seed, epochs=args.epochs, mouth=args.mouth, marker=args.marker
    )
    card = write_keras_model(model, args.out, name, args.task)
    print(f"{card}: trained {name} (seed {args.seed}); held-out accuracy {held_out:.3f}")


if __name__ == "__main__":
    main()
