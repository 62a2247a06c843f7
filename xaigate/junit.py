"""One JUnit XML from the several pytest calls of `make gate` (each model's parallel cases and
its serial latency cases), for CI's test view:

    python -m xaigate.junit reports/junit/*.xml --out reports/junit.xml
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path

from xaigate.errors import UsageError

COUNTERS = ("tests", "failures", "errors", "skipped")


def merge_junit(paths: Sequence[Path]) -> ElementTree.ElementTree:
    """A <testsuites> holding every <testsuite> of `paths`, with summed counters."""
    root = ElementTree.Element("testsuites")
    totals = dict.fromkeys(COUNTERS, 0)
    for path in paths:
        try:
            parsed = ElementTree.parse(path).getroot()
        except (OSError, ElementTree.ParseError) as exc:
            raise UsageError(f"{path}: not a readable JUnit XML file ({exc})") from None
        suites = [parsed] if parsed.tag == "testsuite" else list(parsed.iter("testsuite"))
        for suite in suites:
            suite.set("name", f"{suite.get('name', 'pytest')} ({Path(path).stem})")
            for counter in COUNTERS:
                totals[counter] += int(suite.get(counter, "0"))
            root.append(suite)
    for counter, total in totals.items():
        root.set(counter, str(total))
    return ElementTree.ElementTree(root)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xaigate.junit", description=__doc__)
    parser.add_argument("parts", nargs="+", type=Path, help="JUnit XML files of pytest calls")
    parser.add_argument("--out", type=Path, required=True, help="the merged JUnit XML file")
    arguments = parser.parse_args(argv)
    try:
        merged = merge_junit(arguments.parts)
    except UsageError as exc:
        print(f"xaigate junit: {exc}", file=sys.stderr)
        return 4
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    merged.write(arguments.out, encoding="utf-8", xml_declaration=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
