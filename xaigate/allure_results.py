"""What the gate writes into an Allure results folder besides the tests: a case's labels and
title, and at session end `environment.properties` and `categories.json`.

Plain data here; fixtures/allure_evidence.py hands it to allure-pytest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xaigate.cases import Case
from xaigate.gate import NOT_APPLICABLE, Result

ENVIRONMENT_FILE = "environment.properties"
CATEGORIES_FILE = "categories.json"
NO_EXPLAINER = "none"  # the story of checks that run no explainer (precondition, interventions)

# Gate failures apart from errors: a failed case measured the model and found it wanting; a
# broken one could not be judged (an exception), which says nothing about the model.
CATEGORIES = [
    {
        "name": "Gate failures (the model missed a threshold)",
        "matchedStatuses": ["failed"],
        "messageRegex": ".*",
    },
    {
        "name": "Errors (the gate could not judge the case)",
        "matchedStatuses": ["broken"],
        "messageRegex": ".*",
    },
]


def severity(result: Result) -> str:
    """The gate level as an Allure severity: the precondition blocks everything after it,
    every gated check blocks the release, a case that does not apply blocks nothing."""
    if result.status == NOT_APPLICABLE:
        return "trivial"
    return "blocker" if result.case.check == "model_accuracy" else "critical"


def labels(case: Case, category: str) -> dict[str, str]:
    """epic: the model; feature: the check family; story: the explainer."""
    return {"epic": case.model, "feature": category, "story": case.explainer or NO_EXPLAINER}


def title(case: Case) -> str:
    """E.g. ``region_focus: smile-cnn explained by lime, class smile, region mouth``."""
    head = f"{case.check}: {case.model}" + (
        f" explained by {case.explainer}" if case.explainer else ""
    )
    details = [
        f"class {case.target}" if case.target and case.target != "all" else "",
        f"region {case.region}" if case.region else "",
    ]
    return ", ".join([head, *(detail for detail in details if detail)])


def environment(provenance: dict[str, Any]) -> dict[str, str]:
    """Flat key/value provenance for Allure's environment widget."""
    entries: dict[str, str] = {}
    for name, model in provenance.get("models", {}).items():
        entries[f"model.{name}.sha256"] = str(model.get("artifact_sha256"))
        entries[f"model.{name}.card"] = str(model.get("card"))
    probes = provenance.get("probes", {})
    if probes:
        entries[f"probes.{probes.get('path')}.sha256"] = str(probes.get("sha256"))
    thresholds = provenance.get("thresholds", {})
    if thresholds:
        entries["thresholds.sha256"] = str(thresholds.get("sha256"))
    seeds = provenance.get("seeds", {})
    if "root" in seeds:
        entries["seed.root"] = str(seeds["root"])
    for library, version in provenance.get("libraries", {}).items():
        entries[f"library.{library}"] = str(version)
    return entries


ESCAPES = {"\\": "\\\\", "=": "\\=", ":": "\\:", "\n": "\\n"}


def _escape(text: str) -> str:
    return "".join(ESCAPES.get(char, char) for char in text)


def _unescape(text: str) -> str:
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append("\n" if following == "n" else following)
        else:
            out.append(char)
    return "".join(out)


def _split(line: str) -> tuple[str, str]:
    """A properties line at its first unescaped `=`."""
    escaped = False
    for index, char in enumerate(line):
        if char == "=" and not escaped:
            return _unescape(line[:index]), _unescape(line[index + 1 :])
        escaped = char == "\\" and not escaped
    return _unescape(line), ""


def read_properties(path: Path) -> dict[str, str]:
    """The entries of a properties file this module wrote (absent file: none)."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(_split(line) for line in lines if line and not line.startswith("#"))


def write_session_files(results_dir: Path, provenance: dict[str, Any]) -> None:
    """environment.properties (merged with an earlier gate's in the same folder, so gating two
    models into one report keeps both digests) and categories.json."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / ENVIRONMENT_FILE
    entries = {**read_properties(path), **environment(provenance)}
    lines = [f"{_escape(key)}={_escape(value)}" for key, value in sorted(entries.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (results_dir / CATEGORIES_FILE).write_text(json.dumps(CATEGORIES, indent=2) + "\n")
