"""Before/after check that a speed-up did not change what the explainers compute.

    .venv/bin/python -m bench.compare_maps save /tmp/before.npz   # on the old commit
    .venv/bin/python -m bench.compare_maps check /tmp/before.npz  # on the new one

Saves, per reference model, the maps of every shipped explainer (thresholds.yaml parameters,
fixed seeds) on 10 original probes (an equal share per class) and the deletion and insertion
curves of the LIME maps and of a random order, then reports each array as bit-identical or by
its largest absolute difference. Exit code 1 when anything differs by more than `--atol`.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from bench.common import (
    REFERENCE_MODELS,
    arrays,
    faithfulness_steps,
    first_originals,
    load_reference,
    set_threads,
    shipped_explainer_configs,
)
from xaigate.explainers import EXPLAINERS
from xaigate.metrics.faithfulness import deletion_curves, insertion_curves, random_maps

IMAGES = 10


def compute() -> dict[str, np.ndarray]:
    configs = shipped_explainer_configs()
    steps = faithfulness_steps()
    out: dict[str, np.ndarray] = {}
    for name in REFERENCE_MODELS:
        model = load_reference(name)
        per_class = IMAGES // len(model.classes)
        images, targets = arrays(model, first_originals(name, per_class))
        seeds = [1000 + i for i in range(len(images))]
        for explainer_name, config in configs.items():
            explainer = EXPLAINERS[explainer_name](config)
            explainer.prepare(model, images)
            maps = explainer.explain(model, images, targets, seeds)
            out[f"{name}/{explainer_name}"] = np.stack([m.attribution for m in maps])
        lime = out[f"{name}/lime"]
        for class_index in np.unique(targets):
            rows = targets == class_index
            references = random_maps(int(rows.sum()), images.shape[1:3], seed=int(class_index))
            for label, maps in (("lime", lime[rows]), ("random", references)):
                for curves in (deletion_curves, insertion_curves):
                    key = f"{name}/{curves.__name__}/{label}/{model.classes[class_index]}"
                    out[key] = curves(
                        model.predict_proba, images[rows], maps, targets[rows], steps=steps
                    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "check"])
    parser.add_argument("file")
    parser.add_argument("--atol", type=float, default=1e-6)
    args = parser.parse_args(argv)
    set_threads()
    current = compute()
    if args.action == "save":
        np.savez_compressed(args.file, **current)
        print(f"saved {len(current)} arrays to {args.file}")
        return 0
    saved = np.load(args.file)
    worst = 0.0
    for key in sorted(set(saved.files) | set(current)):
        if key not in saved.files or key not in current:
            print(f"{key}: only in {'the file' if key in saved.files else 'this run'}")
            worst = np.inf
            continue
        before, after = saved[key], current[key]
        if before.shape != after.shape:
            print(f"{key}: shape {before.shape} -> {after.shape}")
            worst = np.inf
        elif np.array_equal(before, after):
            print(f"{key}: bit-identical")
        else:
            diff = float(np.abs(before.astype(np.float64) - after).max())
            scale = float(np.abs(before).max())
            print(f"{key}: max |diff| {diff:.3g} (max |value| {scale:.3g})")
            worst = max(worst, diff)
    print(f"largest difference: {worst:.3g}")
    return int(worst > args.atol)


if __name__ == "__main__":
    sys.exit(main())
