"""PyTorch models (state dict + architecture, TorchScript, torch.export) behind `ModelAdapter`.

Probes arrive as NHWC float RGB in [0, 1]; `_Preprocess` turns the canonical NCHW view of them
into what the card says the model wants, both for `predict_proba` (no gradients, batched) and
inside `scores_module` (differentiable, for gradient explainers and layer hooks).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import re
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from xaigate.errors import ModelError, UsageError, XaigateError
from xaigate.models.adapter import CardFacts
from xaigate.models.capabilities import NotApplicable
from xaigate.models.card import InputSpec, ModelCard, output_shape_problem

# ITU-R BT.601 luma, the usual RGB -> grayscale conversion (PIL's "L" mode uses it too).
LUMA = (0.299, 0.587, 0.114)
_module_numbers = itertools.count()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class _Preprocess(nn.Module):
    """Canonical (N, 3, H, W) RGB in [0, 1] -> the model's input (channels, range, layout)."""

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.gray = spec.channels == 1
        self.layout = spec.layout
        low, high = spec.range
        mean = spec.mean or [0.0] * spec.channels
        std = spec.std or [1.0] * spec.channels
        # Range scaling and (x - mean) / std folded into one affine map: x * scale + shift.
        scale = [(high - low) / s for s in std]
        shift = [(low - m) / s for m, s in zip(mean, std, strict=True)]
        self.affine = any(a != 1.0 for a in scale) or any(b != 0.0 for b in shift)
        shape = (1, spec.channels, 1, 1)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(scale).view(shape), persistent=False)
        self.register_buffer("shift", torch.tensor(shift).view(shape), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gray:
            x = (x * self.luma).sum(dim=1, keepdim=True)
        if self.affine:
            x = torch.addcmul(self.shift, x, self.scale)
        if self.layout == "NHWC":
            return x.permute(0, 2, 3, 1)
        if self.layout == "flat":
            return x.reshape(x.shape[0], -1)
        return x


class _Scores(nn.Module):
    """Canonical images -> (N, C) differentiable class scores whose softmax is the probability.

    Scores are logits for `logits`, log-probabilities for `probabilities`, and [-z/2, z/2] with
    z = logit(p) for `sigmoid` (softmax of that pair is exactly [1 - p, p]).
    """

    def __init__(self, preprocess: _Preprocess, model: nn.Module, output: str) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.model = model  # a submodule, so hooks on the user's layers fire
        self.output = output
        self.training = False

    def train(self, mode: bool = True) -> _Scores:
        # The wrapped model stays as loaded (eval mode; an exported graph even refuses
        # train()), so an explainer calling .eval() or .train() cannot switch dropout on.
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(self.preprocess(x))
        if self.output == "probabilities":
            return out.clamp_min(1e-12).log()
        if self.output == "sigmoid":
            # Clamping keeps logit finite for saturated units (p of exactly 0 or 1).
            z = torch.logit(out.reshape(out.shape[0]).clamp(1e-7, 1 - 1e-7))
            return torch.stack([-z / 2, z / 2], dim=1)
        return out


class TorchModel(CardFacts):
    """A PyTorch classifier described by a model card; see `ModelAdapter`."""

    def __init__(self, card: ModelCard, module: nn.Module | None = None) -> None:
        """Load the card's artifact, or wrap `module` (built in code) when it is given."""
        self.card = card
        self.module = module if module is not None else load_torch_module(card)
        self.forward_seconds = 0.0  # time inside the model's forward in predict_proba
        # Time of the gradient explainers' batches: their forward and backward passes (the map
        # arithmetic around them, a weighted sum and an upsampling, is small beside them).
        self.gradient_seconds = 0.0
        self._preprocess = _Preprocess(card.input)
        self._scores: _Scores | None = None

    @property
    def supports_gradients(self) -> bool:
        return True  # all three formats are differentiable (tested per format)

    @property
    def supports_layer_hooks(self) -> bool:
        return self.card.format == "state_dict"

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) float RGB in [0, 1] -> (N, C) float64 probabilities."""
        return self._run(images, probabilities=True)

    def raw_output(self, images: np.ndarray) -> np.ndarray:
        """The model's own output (logits, probabilities or sigmoid unit) as float64."""
        return self._run(images, probabilities=False)

    def scores_module(self) -> nn.Module:
        """Canonical (N, 3, H, W) RGB in [0, 1] -> (N, C) scores for gradients (see _Scores)."""
        if self._scores is None:
            self._scores = _Scores(self._preprocess, self.module, self.card.output)
        return self._scores

    def target_layer(self) -> nn.Module:
        """The layer CAM methods hook: the card's `target_layer`, else the last nn.Conv2d."""
        if self.card.format == "torchscript":
            raise NotApplicable("TorchScript modules cannot take layer hooks")
        if self.card.format == "exported":
            raise NotApplicable(
                "torch.export programs are flattened graphs; layer hooks do not fire"
            )
        modules = dict(self.module.named_modules())
        convs = [name for name, layer in modules.items() if isinstance(layer, nn.Conv2d)]
        if self.card.target_layer is not None:
            if self.card.target_layer in modules:
                return modules[self.card.target_layer]
            names = convs or [name for name in modules if name]
            listed = ", ".join(names[-6:]) or "none"
            raise UsageError(
                f"{self.card.path}: target_layer: the model has no layer "
                f"{self.card.target_layer!r}; {'convolution ' if convs else ''}layers include: "
                f"{listed}"
            )
        if not convs:
            raise NotApplicable(
                "model has no convolution layer (Grad-CAM needs one); set target_layer in the "
                "card to choose another layer"
            )
        return modules[convs[-1]]

    def _canonical(self, images: np.ndarray) -> torch.Tensor:
        height, width = self.card.input.size
        if not isinstance(images, np.ndarray) or images.shape[1:] != (height, width, 3):
            got = getattr(images, "shape", type(images).__name__)
            raise ModelError(
                f"{self.card.path}: expected images of shape (N, {height}, {width}, 3), got {got}"
            )
        # A permuted view, not a copy: NHWC memory seen as NCHW is what torch calls
        # channels_last, which is also the faster layout for CPU convolutions.
        array = np.ascontiguousarray(images, dtype=np.float32)
        return torch.from_numpy(array).permute(0, 3, 1, 2)

    def _run(self, images: np.ndarray, probabilities: bool) -> np.ndarray:
        batch = self._canonical(images)
        if batch.shape[0] == 0:
            return np.empty((0, len(self.card.classes)), dtype=np.float64)
        outputs = []
        with torch.inference_mode():
            for start in range(0, batch.shape[0], self.card.batch_size):
                out = self._forward(batch[start : start + self.card.batch_size])
                outputs.append(self._probabilities(out) if probabilities else out)
        return (outputs[0] if len(outputs) == 1 else torch.cat(outputs)).numpy()

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        model_input = self._preprocess(batch)
        started = time.perf_counter()
        try:
            out = self.module(model_input)
        except XaigateError:
            raise
        except Exception as exc:
            hint = (
                " (was it exported with a dynamic batch dimension?)"
                if self.card.format == "exported"
                else ""
            )
            raise ModelError(
                f"{self.card.path}: the model failed on input of shape "
                f"{tuple(model_input.shape)}{hint}: {_first_line(exc)}"
            ) from exc
        finally:
            self.forward_seconds += time.perf_counter() - started
        if not isinstance(out, torch.Tensor):
            raise ModelError(
                f"{self.card.path}: the model returned {type(out).__name__}, not a tensor"
            )
        return out.double()

    def _probabilities(self, out: torch.Tensor) -> torch.Tensor:
        problem = output_shape_problem(self.card, tuple(out.shape))
        if problem is not None:
            raise ModelError(f"{self.card.path}: {problem}")
        if self.card.output == "logits":
            return torch.softmax(out, dim=1)
        if self.card.output == "sigmoid":
            p = out.reshape(out.shape[0])
            return torch.stack([1 - p, p], dim=1)
        return out


def load_torch_module(card: ModelCard) -> nn.Module:
    """The card's artifact as an eval-mode float32 CPU module."""
    if card.format == "state_dict":
        module = _load_state_dict_module(card)
    elif card.format == "torchscript":
        try:
            with warnings.catch_warnings():
                # torch.jit.load warns that TorchScript is deprecated; the card chose it.
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(card.artifact), map_location="cpu")
        except Exception as exc:
            raise _artifact_error(card, "is not a TorchScript archive", exc) from exc
    else:
        try:
            module = torch.export.load(str(card.artifact)).module()
        except Exception as exc:
            raise _artifact_error(card, "is not a torch.export program (.pt2)", exc) from exc
        # An exported graph is fixed at export time: eval() is refused, and training-mode
        # dropout cannot be switched off here (check_model_outputs catches its randomness).
        return module
    return module.float().eval()


def _artifact_error(card: ModelCard, problem: str, exc: BaseException) -> UsageError:
    return UsageError(
        f"{card.path}: artifact: {card.artifact} {problem} (format: {card.format}): "
        f"{_first_line(exc)}"
    )


def _load_state_dict_module(card: ModelCard) -> nn.Module:
    module = _build_architecture(card)
    try:
        # weights_only only: a full pickle could run arbitrary code while loading.
        state = torch.load(card.artifact, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _artifact_error(
            card,
            "could not be loaded safely; it must be a plain state dict saved with "
            "torch.save(model.state_dict())",
            exc,
        ) from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in state.values()
    ):
        what = (
            f"a dict with keys {', '.join(map(str, list(state)[:5]))}"
            if isinstance(state, Mapping)
            else f"a {type(state).__name__}"
        )
        raise UsageError(
            f"{card.path}: artifact: {card.artifact} holds {what}, not a state dict of "
            "tensors; save it with torch.save(model.state_dict())"
        )
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when strict=False
        detail = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise UsageError(
            f"{card.path}: artifact: {card.artifact} does not fit architecture "
            f"{card.architecture}: {detail[-1] if detail else exc}"
        ) from exc
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing key {missing[0]!r} ({len(missing)} missing)")
        if unexpected:
            parts.append(f"unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected)")
        raise UsageError(
            f"{card.path}: artifact: {card.artifact} does not fit architecture "
            f"{card.architecture}: {'; '.join(parts)}"
        )
    return module


def _build_architecture(card: ModelCard) -> nn.Module:
    target, class_name = card.architecture_parts()
    try:
        if isinstance(target, Path):
            source = _import_file(target)
        else:
            source = importlib.import_module(target)
    except Exception as exc:
        raise UsageError(
            f"{card.path}: architecture: cannot import {target}: {_first_line(exc)}"
        ) from exc
    cls = getattr(source, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        found = "is not an nn.Module class" if cls is not None else "is not defined"
        raise UsageError(f"{card.path}: architecture: {class_name} {found} in {target}")
    try:
        return cls(**card.architecture_kwargs)
    except Exception as exc:
        raise UsageError(
            f"{card.path}: architecture_kwargs: {class_name}(**{card.architecture_kwargs}) "
            f"failed: {_first_line(exc)}"
        ) from exc


def _import_file(path: Path) -> ModuleType:
    # A unique name per load: two cards may both use "arch.py", with different contents.
    stem = re.sub(r"\W", "_", path.stem)
    name = f"xaigate_architecture_{next(_module_numbers)}_{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look their module up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
