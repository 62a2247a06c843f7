"""What CI shows of a verdict: JUnit properties of a result, a Markdown verdict table (for
`$GITHUB_STEP_SUMMARY`), and the one-line states that end `make gate`:

    python -m xaigate.ci_outputs reports/gate.json reports/gate-emotion.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from xaigate.verdict import number_text, threshold_text

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"
PROPERTY_KEYS = ("status", "value", "bound", "threshold", "threshold_rule", "direction", "n")


def junit_properties(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) pairs of a result in its JSON form, e.g. ``("xaigate.value", "0.41")``;
    a value the result lacks is written as an empty string, never left out."""
    return [("xaigate.id", result["id"])] + [
        (f"xaigate.{key}", "" if result.get(key) is None else str(result[key]))
        for key in PROPERTY_KEYS
    ]


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_summary(content: dict[str, Any], *, title: str) -> str:
    """gate.json's verdict as Markdown: the state, counts, and one row per result, failures
    and errors first."""
    results = content.get("results", [])
    state = "PASSED" if content.get("passed") else "FAILED"
    if not content.get("complete", False) and not content.get("errors"):
        state = f"{state} (incomplete: {len(content.get('not_run', []))} configured cases not run)"
    counts = ", ".join(f"{count} {status}" for status, count in content.get("summary", {}).items())
    lines = [f"### xaigate: {_escape(title)}: **{state}**", "", counts or "no results", ""]
    lines.extend(f"- error: {_escape(error)}" for error in content.get("errors", []))
    if results:
        header = ("status", "check", "model", "explainer", "target/region", "value", "bound")
        lines += [
            "",
            "| " + " | ".join((*header, "threshold", "n")) + " |",
            "| --- | --- | --- | --- | --- | ---: | ---: | --- | ---: |",
        ]
        order = {"error": 0, "failed": 1, "passed": 2, "not_applicable": 3}
        for result in sorted(results, key=lambda r: (order.get(r["status"], 0), r["id"])):
            cells = (
                result["status"].upper().replace("_", " "),
                result["check"],
                result["model"],
                result["explainer"] or "-",
                f"{result['target']}/{result['region']}".rstrip("/"),
                number_text(result["value"]),
                number_text(result["bound"]),
                threshold_text(result),
                str(result["n"]),
            )
            lines.append("| " + " | ".join(_escape(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def append_step_summary(content: dict[str, Any], *, title: str) -> Path | None:
    """Append the verdict's Markdown to `$GITHUB_STEP_SUMMARY` when CI sets it."""
    summary = os.environ.get(STEP_SUMMARY)
    if not summary:
        return None
    with Path(summary).open("a", encoding="utf-8") as stream:
        stream.write(markdown_summary(content, title=title))
    return Path(summary)


def state_line(path: Path, content: dict[str, Any]) -> str:
    """E.g. ``reports/gate.json: FAILED (1 failed, 140 passed): latency[smile-cnn-shap]``."""
    state = "PASSED" if content.get("passed") else "FAILED"
    if not content.get("complete", False):
        state = "INCOMPLETE" if not content.get("errors") else state
    counts = ", ".join(f"{n} {status}" for status, n in sorted(content.get("summary", {}).items()))
    failed = [r["id"] for r in content.get("results", []) if r["status"] in ("failed", "error")]
    shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
    return f"{path}: {state} ({counts or 'no results'})" + (f": {shown}" if failed else "")


def main(argv: list[str] | None = None) -> int:
    """Print each verdict's state; exit 0 when all passed, 1 otherwise, 4 when one is unreadable."""
    status = 0
    for name in sys.argv[1:] if argv is None else argv:
        path = Path(name)
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            print(f"{path}: unreadable verdict ({exc})")
            status = 4
            continue
        print(state_line(path, content))
        status = max(status, 0 if content.get("passed") else 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
