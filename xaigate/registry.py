"""Name -> implementation registries for explainers and checks.

`thresholds.yaml` keys are validated against these, so a misspelt explainer or check name is a
usage error rather than a gate that silently never runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Registry(dict[str, T]):
    """A dict of named entries whose decorator refuses duplicate names."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def add(self, name: str, entry: T) -> T:
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(entry: T) -> T:
            return self.add(name, entry)

        return decorate

    def known(self) -> str:
        return ", ".join(sorted(self))
