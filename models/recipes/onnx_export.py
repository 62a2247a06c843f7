"""Recipe: an ONNX export of a PyTorch reference model (same weights, run by onnxruntime).

    python -m models.recipes.onnx_export --card models/smile-cnn/model.yaml --out models/smile-onnx

exports the card's module with `torch.onnx.export` (NCHW float input, a dynamic batch axis) and
writes `model.onnx` and `model.yaml` beside it, with the torch card's input, output and classes.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
import yaml

from xaigate.models.card import ModelCard, load_card
from xaigate.models.torch_adapter import load_torch_module

OPSET = 18


def export_onnx(card: ModelCard, path: Path) -> Path:
    """Export the card's module to `path` (one file: the weights are embedded)."""
    module = load_torch_module(card)
    height, width = card.input.size
    example = torch.zeros(2, card.input.channels, height, width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's advice on its own future
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["images"],
            output_names=["scores"],
            dynamic_axes={"images": {0: "batch"}, "scores": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def write_onnx_model(card: ModelCard, out: Path, name: str) -> Path:
    """Export `card`'s model to `out/model.onnx` and write its card; returns the card's path."""
    if card.framework != "torch" or card.input.layout != "NCHW":
        raise SystemExit(f"{card.path}: only NCHW PyTorch cards are exported by this recipe")
    out.mkdir(parents=True, exist_ok=True)
    export_onnx(card, out / "model.onnx")
    onnx_card = {
        "name": name,
        "framework": "onnx",
        "format": "onnx",
        "artifact": "model.onnx",
        "input": card.input.model_dump(mode="json", exclude_none=True),
        "output": card.output,
        "classes": list(card.classes),
    }
    path = out / "model.yaml"
    path.write_text(yaml.safe_dump(onnx_card, sort_keys=False), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", type=Path, default=Path("models/smile-cnn/model.yaml"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", help="model name (default: the --out folder's name)")
    args = parser.parse_args(argv)
    card = write_onnx_model(load_card(args.card), args.out, args.name or args.out.name)
    print(f"{card}: exported {args.card}")


if __name__ == "__main__":
    main()
