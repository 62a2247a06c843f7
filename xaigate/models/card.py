"""The model card (`model.yaml`): what the artifact is and how to feed and read the model.

Every key is validated with a message naming the card's line; paths in the card are relative to
the card's folder and are resolved (and checked to exist) by `load_card`.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from xaigate.config_yaml import KeyPath, load_yaml

RANGES: tuple[tuple[float, float], ...] = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))
# The artifact formats each framework reads.
FORMATS: dict[str, tuple[str, ...]] = {
    "torch": ("state_dict", "torchscript", "exported"),
    "keras": ("keras",),
    "onnx": ("onnx",),
}
# Legacy Keras files: Keras ignores safe_mode for them, so loading one could run its code.
LEGACY_KERAS_SUFFIXES = (".h5", ".hdf5")
ARCHITECTURE = re.compile(r"^(?P<target>[^:]+):(?P<cls>[A-Za-z_]\w*)$")
MODULE_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_RULE = "card_rule"


def _rule(key: KeyPath, message: str) -> PydanticCustomError:
    # A cross-field rule fails on the model, whose location is the parent key; carrying the key
    # that is really at fault lets `load_card` point at its line rather than the parent's.
    field = ".".join(map(str, key))
    return PydanticCustomError(
        _RULE, "{field}: {message}", {"key": key, "field": field, "message": message}
    )


class InputSpec(BaseModel):
    """How the model wants its input; probes are RGB in [0, 1] at `size` before conversion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
    channels: Literal[1, 3] = 3
    layout: Literal["NCHW", "NHWC", "flat"] = "NCHW"
    # Required: a wrong range gives plausible-looking but wrong predictions, never an error.
    range: tuple[float, float]
    mean: list[float] | None = None
    std: list[Annotated[float, Field(gt=0)]] | None = None

    @field_validator("range")
    @classmethod
    def _known_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value not in RANGES:
            known = " | ".join(f"[{lo:g}, {hi:g}]" for lo, hi in RANGES)
            raise ValueError(f"must be one of {known}")
        return value

    @model_validator(mode="after")
    def _normalisation(self) -> InputSpec:
        if (self.mean is None) != (self.std is None):
            given, missing = ("mean", "std") if self.std is None else ("std", "mean")
            raise _rule((given,), f"{given} needs {missing}: give both or neither")
        for key in ("mean", "std"):
            values = getattr(self, key)
            if values is not None and len(values) != self.channels:
                raise _rule((key,), f"has {len(values)} values but channels is {self.channels}")
        return self


class ModelCard(BaseModel):
    """A validated `model.yaml`. Use `load_card` so that paths are resolved and checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    framework: Literal["torch", "keras", "onnx"]
    format: Literal["state_dict", "torchscript", "exported", "keras", "onnx"]
    architecture: str | None = None
    architecture_kwargs: dict[str, Any] = Field(default_factory=dict)
    artifact: Path
    input: InputSpec
    output: Literal["logits", "probabilities", "sigmoid"]
    classes: list[Annotated[str, Field(min_length=1)]] = Field(min_length=2)
    target_layer: str | None = Field(None, min_length=1)
    batch_size: int = Field(64, ge=1)

    _path: Path = PrivateAttr(default=Path("model.yaml"))

    @property
    def path(self) -> Path:
        """The card file (`model.yaml` for a card built in code)."""
        return self._path

    @property
    def folder(self) -> Path:
        """The card's folder, against which the card's relative paths were resolved."""
        return self._path.parent

    @property
    def output_units(self) -> int:
        """Width of the model's raw output: one unit for sigmoid, one per class otherwise."""
        return 1 if self.output == "sigmoid" else len(self.classes)

    @field_validator("classes")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"class names must be unique; repeated: {', '.join(repeated)}")
        return value

    @field_validator("architecture")
    @classmethod
    def _architecture_form(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = ARCHITECTURE.match(value)
        target = match["target"] if match else ""
        if not match or not (target.endswith(".py") or MODULE_PATH.match(target)):
            raise ValueError('must be "file.py:ClassName" or "package.module:ClassName"')
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> ModelCard:
        if self.format not in FORMATS[self.framework]:
            raise _rule(
                ("format",),
                f"{self.format!r} is not a {self.framework} format (framework: {self.framework} "
                f"reads format: {' | '.join(FORMATS[self.framework])})",
            )
        if self.framework == "keras":
            _check_keras_artifact(self.artifact)
        if self.format == "state_dict" and self.architecture is None:
            raise _rule(
                ("architecture",),
                'required for format: state_dict ("file.py:ClassName" builds the module '
                "that the weights are loaded into)",
            )
        if self.format != "state_dict" and self.architecture is not None:
            raise _rule(
                ("architecture",),
                f"only used with format: state_dict; a {self.format} artifact holds its own code",
            )
        if self.architecture is None and self.architecture_kwargs:
            raise _rule(("architecture_kwargs",), "given without architecture")
        if self.output == "sigmoid" and len(self.classes) != 2:
            raise _rule(
                ("classes",),
                f"output: sigmoid needs exactly 2 classes (the unit is the probability of the "
                f"second), got {len(self.classes)}",
            )
        return self

    def architecture_parts(self) -> tuple[Path | str, str]:
        """(file path or module name, class name) of a state_dict card's architecture."""
        if self.architecture is None:
            raise ValueError(f"{self.path}: card has no architecture")
        target, class_name = self.architecture.rsplit(":", 1)
        return (Path(target) if target.endswith(".py") else target), class_name


def _check_keras_artifact(artifact: Path) -> None:
    suffix = artifact.suffix.lower()
    if suffix in LEGACY_KERAS_SUFFIXES:
        raise _rule(
            ("artifact",),
            f"{artifact} is a legacy HDF5 model, which Keras loads without safe_mode (it can run "
            "code stored in the file); convert it once where you trust it: "
            'keras.models.load_model("model.h5", compile=False).save("model.keras")',
        )
    if suffix != ".keras":
        raise _rule(
            ("artifact",),
            f'{artifact}: format: keras reads a .keras file (saved with model.save("model.keras"))',
        )


def output_shape_problem(card: ModelCard, shape: tuple[int, ...]) -> str | None:
    """Why a raw model output of `shape` does not fit the card (None when it does)."""
    if card.output == "sigmoid":
        if len(shape) == 1 or shape[1:] == (1,):
            return None
        return f"card says output: sigmoid (1 unit) but the model returned shape {shape}"
    if len(shape) == 2 and shape[1] == len(card.classes):
        return None
    return (
        f"card says output: {card.output} with {len(card.classes)} classes, so shape "
        f"(N, {len(card.classes)}), but the model returned shape {shape}"
    )


def _unknown_key_message(loc: KeyPath) -> str:
    schema = InputSpec if loc[:1] == ("input",) and len(loc) == 2 else ModelCard
    close = difflib.get_close_matches(str(loc[-1]), list(schema.model_fields), n=1)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


def load_card(path: Path | str) -> ModelCard:
    """Read and validate a model card; relative paths become absolute against its folder."""
    doc = load_yaml(path, "model card")
    try:
        card = ModelCard.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors()
        # A misspelt key also makes the intended key "missing"; the misspelling is the news.
        unknown = [error for error in errors if error["type"] == "extra_forbidden"]
        if unknown:
            loc = tuple(unknown[0]["loc"])
            raise doc.error(loc, _unknown_key_message(loc)) from None
        if errors[0]["type"] == _RULE:
            ctx = errors[0]["ctx"]
            raise doc.error((*errors[0]["loc"], *ctx["key"]), ctx["message"]) from None
        raise doc.from_validation_error(exc) from None

    folder = doc.path.resolve().parent
    artifact = folder / card.artifact
    if not artifact.is_file():
        raise doc.error(("artifact",), f"file not found: {artifact}")
    update: dict[str, Any] = {"artifact": artifact}
    if card.architecture is not None:
        target, class_name = card.architecture_parts()
        if isinstance(target, Path):
            file = folder / target
            if not file.is_file():
                raise doc.error(("architecture",), f"file not found: {file}")
            update["architecture"] = f"{file}:{class_name}"
    resolved = card.model_copy(update=update)
    resolved._path = doc.path.resolve()
    return resolved
