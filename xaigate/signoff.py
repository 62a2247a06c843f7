"""The sign-off report: one self-contained HTML file built from the Allure results by Allure 3.

    python -m xaigate.signoff reports/allure-results --out reports/signoff

Allure 3 (npm package `allure`, pinned in package.json, installed by `npm ci`) renders its
Allure 2 style report in single-file mode (allurerc.json): categories, environment, epics and
attachments, with every image inlined. Analytics are switched off, and a report that still
refers to anything outside itself is refused: it is signed and archived, so it must open
offline and unchanged. Exit code 0 built, 4 no results or no Allure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from xaigate.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "allurerc.json"
ALLURE = ROOT / "node_modules" / ".bin" / "allure"
REPORT_FILE = "index.html"
# src/href attributes that load something from elsewhere (data: URIs and fragments are inline).
EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*["']?(?:https?:)?//[^"'\s>]*""",
    re.I,
)


def external_references(html: str) -> list[str]:
    """The tags of `html` that load a resource from outside the file."""
    return [match.group(0) for match in EXTERNAL.finditer(html)]


def build_signoff(results_dir: Path, output_dir: Path, *, name: str = "xaigate sign-off") -> Path:
    """Build the report into `output_dir`; returns the HTML file."""
    results_dir, output_dir = Path(results_dir), Path(output_dir)
    if not any(results_dir.glob("*-result.json")):
        raise UsageError(f"{results_dir}: no Allure results (run `make gate` first)")
    if not ALLURE.exists():
        raise UsageError(f"{ALLURE}: Allure 3 is not installed (run `npm ci` or `make report`)")
    if output_dir.exists():
        shutil.rmtree(output_dir)
    command = [
        str(ALLURE),
        "generate",
        str(results_dir.resolve()),
        "--config",
        str(CONFIG),
        "--output",
        str(output_dir.resolve()),
        "--report-name",
        name,
    ]
    environment = {**os.environ, "ALLURE_NO_ANALYTICS": "true"}
    completed = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    report = output_dir / REPORT_FILE
    if completed.returncode != 0 or not report.exists():
        raise RuntimeError(
            f"allure generate failed ({completed.returncode}): {completed.stderr.strip()[-2000:]}"
        )
    outside = external_references(report.read_text(encoding="utf-8"))
    if outside:
        raise RuntimeError(f"{report}: not self-contained, it loads {outside[0]!r}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xaigate.signoff", description=__doc__)
    parser.add_argument("results", type=Path, help="Allure results folder (pytest --alluredir)")
    parser.add_argument("--out", type=Path, required=True, help="output folder of the report")
    arguments = parser.parse_args(argv)
    try:
        report = build_signoff(arguments.results, arguments.out)
    except UsageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 4
    print(f"sign-off report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
