"""Runs the gate as users run it (`pytest suites` in a fresh process) and reads its verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_CARD = ROOT / "models" / "smile-cnn" / "model.yaml"


@dataclass
class GateRun:
    returncode: int
    output: str
    verdict: dict[str, Any] | None

    def results(self, **selectors: str) -> list[dict[str, Any]]:
        assert self.verdict is not None, self.output
        return [
            result
            for result in self.verdict["results"]
            if all(result[key] == value for key, value in selectors.items())
        ]


def run_gate(tmp_path: Path, *args: str | Path) -> GateRun:
    """Run `pytest suites` in a fresh process, as a user or CI would, and read gate.json."""
    verdict_path = tmp_path / f"gate-{len(list(tmp_path.glob('gate-*.json')))}.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "suites",
            "-p",
            "no:cacheprovider",
            "--gate-json",
            str(verdict_path),
            *map(str, args),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        timeout=1800,
    )
    verdict = json.loads(verdict_path.read_text()) if verdict_path.exists() else None
    return GateRun(completed.returncode, completed.stdout + completed.stderr, verdict)
