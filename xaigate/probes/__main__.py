"""Write a probe set of generated faces.

    python -m xaigate.probes --task smile --n 80 --seed 1000 --out probes/smile \\
        [--mouth random] [--marker label_corner] [--variants glasses,mouth_mask] [--overwrite]

Each variant adds a derived image per face, with id `<id>-<variant>` and tags `variant` and
`source`, right after the face it derives from.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from xaigate.errors import UsageError
from xaigate.probes.faces import TASK_CLASSES, VARIANTS, Face, generate_faces
from xaigate.probes.probe_set import write_probe_set


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _variants(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown variant {unknown[0]!r} (choose from {', '.join(VARIANTS)})"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a variant is listed twice in {text!r}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xaigate.probes", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--task", choices=sorted(TASK_CLASSES), default="smile")
    parser.add_argument("--n", type=_positive, required=True, help="faces, balanced over classes")
    parser.add_argument("--seed", type=int, required=True, help="seed of the generator")
    parser.add_argument("--out", type=Path, required=True, help="probe-set folder to write")
    parser.add_argument("--size", type=_positive, default=64, help="image side in pixels")
    parser.add_argument("--mouth", choices=["label", "random"], default="label")
    parser.add_argument("--brows", choices=["label", "random"], default="label")
    parser.add_argument("--marker", choices=["label_corner"], default=None)
    parser.add_argument(
        "--brow-cue", action="store_true", help="smile task: the brows carry the label too"
    )
    parser.add_argument(
        "--background-tint", action="store_true", help="tint the background by class"
    )
    parser.add_argument(
        "--variants",
        type=_variants,
        default=[],
        help=f"comma-separated derived images per face: {', '.join(VARIANTS)}",
    )
    parser.add_argument("--prefix", help="id prefix (default: the task)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing set")
    return parser


def _with_variants(
    faces: Sequence[Face], prefix: str, variants: Sequence[str]
) -> tuple[list[Face], list[str]]:
    """Each face followed by its variants, and the ids to write them under."""
    out: list[Face] = []
    ids: list[str] = []
    for index, face in enumerate(faces):
        source = f"{prefix}-{index:04d}"
        out.append(face)
        ids.append(source)
        for name in variants:
            derived = VARIANTS[name](face)
            out.append(replace(derived, tags={**derived.tags, "variant": name, "source": source}))
            ids.append(f"{source}-{name}")
    return out, ids


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    prefix = args.prefix or args.task
    try:
        faces = generate_faces(
            args.n,
            args.seed,
            task=args.task,
            size=args.size,
            mouth=args.mouth,
            marker=args.marker,
            brows=args.brows,
            brow_cue=args.brow_cue,
            background_tint=args.background_tint,
        )
        faces, ids = _with_variants(faces, prefix, args.variants)
        probe_set = write_probe_set(args.out, faces, ids=ids, overwrite=args.overwrite)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    variants = f", variants {','.join(args.variants)}" if args.variants else ""
    print(
        f"wrote {len(probe_set)} probes ({args.n} {args.task} faces, seed {args.seed}{variants}) "
        f"to {args.out} (sha256 {probe_set.digest[:12]})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
