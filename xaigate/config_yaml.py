"""Load YAML files (thresholds, model cards) into pydantic models with errors that name the line.

PyYAML's composed node tree carries line numbers; pydantic's errors carry the key path. Joining
the two gives messages like ``thresholds.yaml:12: checks.region_focs: unknown key``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from xaigate.errors import UsageError

KeyPath = tuple[str | int, ...]
Model = TypeVar("Model", bound=BaseModel)


class _DuplicateKey(Exception):
    def __init__(self, path: KeyPath, line: int) -> None:
        self.path, self.line = path, line


def _node_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                # PyYAML keeps the last of two equal keys silently; a gate must not.
                raise _DuplicateKey((*path, key), key_node.start_mark.line + 1)
            seen.add(key)
            _node_lines(value_node, (*path, key), lines)
            # The key's own line (its value may start on the next one).
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _node_lines(item, (*path, index), lines)


class YamlDocument:
    """A parsed YAML mapping with the line of every key, for error messages."""

    def __init__(self, path: Path, data: dict[str, Any], lines: dict[KeyPath, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line_of(self, key_path: KeyPath) -> int:
        """The line of the deepest existing key on `key_path` (1 when nothing matches)."""
        for end in range(len(key_path), -1, -1):
            line = self.lines.get(tuple(key_path[:end]))
            if line is not None:
                return line
        return 1

    def error(self, key_path: KeyPath, message: str) -> UsageError:
        """A usage error naming file, line and key, e.g. ``card.yaml:3: input.size: ...``."""
        key = ".".join(str(part) for part in key_path) or "<top level>"
        return UsageError(f"{self.path}:{self.line_of(key_path)}: {key}: {message}")

    def validate(self, model: type[Model], data: Any = None, prefix: KeyPath = ()) -> Model:
        """Validate `data` (default: the whole document) as `model`; the first error is raised."""
        try:
            return model.model_validate(self.data if data is None else data)
        except ValidationError as exc:
            raise self.from_validation_error(exc, prefix) from None

    def from_validation_error(self, exc: ValidationError, prefix: KeyPath = ()) -> UsageError:
        errors = exc.errors()
        # A misspelt key also makes the intended key "missing": the misspelling is the news.
        unknown = [error for error in errors if error["type"] == "extra_forbidden"]
        first = (unknown or errors)[0]
        loc = (*prefix, *(part for part in first["loc"] if not _is_union_tag(part)))
        kind = first["type"]
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = f"{first['msg']} (got {first.get('input')!r})"
        return self.error(loc, message)


def _is_union_tag(part: str | int) -> bool:
    # pydantic adds the name of the union member it tried ("function-after[...]", a class name)
    return isinstance(part, str) and ("[" in part or part[:1].isupper())


def load_yaml(path: Path | str, what: str) -> YamlDocument:
    """Read a YAML mapping; `what` ("thresholds file", "model card") is used in errors."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: {what} not found")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}{line}: malformed YAML in {what}: {problem}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}:1: {what} must be a YAML mapping, got {type(data).__name__}")
    lines: dict[KeyPath, int] = {}
    try:
        _node_lines(node, (), lines)
    except _DuplicateKey as duplicate:
        key = ".".join(str(part) for part in duplicate.path)
        raise UsageError(f"{path}:{duplicate.line}: {key}: duplicate key in {what}") from None
    return YamlDocument(path, data, lines)
