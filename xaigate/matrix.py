"""The detection matrix: gate many (model, probe set) rows and tabulate what each check said.

A row is one gate run, on the engine the pytest suites call (`Gate.run` per configured case,
the precondition first). A cell is the check's outcome over all of its cases: `fail` when any
case failed, `error` when any could not run, `pass` when at least one passed and the rest do not
apply, `n/a` when none applies. A row is as expected when a good model (no expected failures)
passes its whole gate and a flawed one fails every check aimed at its flaw.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xaigate.cache import ExplanationCache
from xaigate.context import GateContext
from xaigate.errors import XaigateError
from xaigate.gate import ERROR, FAILED, NOT_APPLICABLE, PASSED, Gate
from xaigate.runtime import share_cores

PRECONDITIONS = ("model_accuracy",)  # run first, as the pytest suites do
CELL_PASS, CELL_FAIL, CELL_NA, CELL_ERROR = "pass", "fail", "n/a", "error"


@dataclass(frozen=True)
class MatrixRow:
    """A model card gated on a probe set; `expected_failures` empty means it must pass."""

    model: str
    probes: str
    card: Path
    probes_dir: Path
    expected_failures: tuple[str, ...] = ()


@dataclass
class RowOutcome:
    row: MatrixRow
    cells: dict[str, str]
    passed: bool
    error: str | None = None  # the gate could not be opened (a usage error)
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def caught(self) -> list[str]:
        """The expected failures that did fail."""
        return [check for check in self.row.expected_failures if self.cells.get(check) == CELL_FAIL]

    @property
    def as_expected(self) -> bool:
        if self.error is not None:
            return False
        if not self.row.expected_failures:
            return self.passed
        return len(self.caught) == len(self.row.expected_failures)


# Latency is timed by `make gate`'s serial suite (suites/test_latency.py): rows gated side by
# side would time each other, and it says nothing about why a model is right.
NOT_IN_MATRIX = ("latency",)


def run_gate(context: GateContext) -> Gate:
    """Run every configured case of `context` but latency's, the precondition first; returns
    the gate with its results (a case that raised is recorded as an error by `Gate.run`)."""
    gate = Gate(context)
    for check in NOT_IN_MATRIX:
        gate.case_lists.pop(check, None)
    for case in sorted(gate.configured, key=lambda case: case.check not in PRECONDITIONS):
        try:
            gate.run(case)
        except Exception:  # noqa: BLE001 - recorded as an error result; the row goes on
            continue
    return gate


def check_cells(results: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each check's outcome over its cases (gate.json results), in order of first appearance."""
    statuses: dict[str, set[str]] = {}
    for result in results:
        statuses.setdefault(result["check"], set()).add(result["status"])
    cells = {}
    for check, seen in statuses.items():
        if ERROR in seen:
            cells[check] = CELL_ERROR
        elif FAILED in seen:
            cells[check] = CELL_FAIL
        elif PASSED in seen:
            cells[check] = CELL_PASS
        else:
            assert seen == {NOT_APPLICABLE}, seen
            cells[check] = CELL_NA
    return cells


def gate_row(row: MatrixRow, thresholds: Path, cache_root: Path | None = None) -> RowOutcome:
    """Gate one row in this process."""
    cache = None if cache_root is None else ExplanationCache(cache_root)
    try:
        context = GateContext.open(thresholds, [row.card], row.probes_dir, cache=cache)
        gate = run_gate(context)
    except XaigateError as exc:
        return RowOutcome(row, {}, passed=False, error=str(exc))
    results = [result.to_json() for result in gate.results.values()]
    return RowOutcome(row, check_cells(results), gate.passed, None, results)


def gate_rows(
    rows: Sequence[MatrixRow],
    thresholds: Path,
    *,
    workers: int = 2,
    cache_root: Path | None = None,
    on_done: Callable[[RowOutcome], None] | None = None,
) -> list[RowOutcome]:
    """Gate every row, `workers` rows at a time (each process gets its share of the cores);
    `on_done` sees each outcome as it arrives (progress), the result keeps the rows' order."""
    report = on_done or (lambda _outcome: None)
    if workers <= 1 or len(rows) <= 1:
        share_cores(1)
        outcomes = []
        for row in rows:
            outcomes.append(gate_row(row, thresholds, cache_root))
            report(outcomes[-1])
        return outcomes
    # Spawned, not forked: a forked child of a process whose torch pool has started can hang.
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=share_cores,
        initargs=(workers,),
    ) as pool:
        futures = [pool.submit(gate_row, row, thresholds, cache_root) for row in rows]
        for future in as_completed(futures):
            report(future.result())
        return [future.result() for future in futures]


def _columns(outcomes: Sequence[RowOutcome]) -> list[str]:
    return list(dict.fromkeys(check for outcome in outcomes for check in outcome.cells))


def _cell(outcome: RowOutcome, check: str) -> str:
    cell = outcome.cells.get(check, "")
    # An aimed check is starred: the flaw it is aimed at must make it fail.
    return f"{cell}*" if check in outcome.row.expected_failures else cell


def row_verdict(outcome: RowOutcome) -> str:
    if outcome.error is not None:
        return "usage error"
    gate = "PASS" if outcome.passed else "FAIL"
    return f"{gate} ({'as expected' if outcome.as_expected else 'UNEXPECTED'})"


def matrix_table(outcomes: Sequence[RowOutcome]) -> list[list[str]]:
    """Header and rows: model, probe set, one column per check, the gate's verdict."""
    columns = _columns(outcomes)
    header = ["model", "probes", *columns, "gate"]
    body = [
        [
            outcome.row.model,
            outcome.row.probes,
            *(_cell(outcome, c) for c in columns),
            row_verdict(outcome),
        ]
        for outcome in outcomes
    ]
    return [header, *body]


def render_matrix(outcomes: Sequence[RowOutcome]) -> str:
    """The matrix as aligned text; `*` marks the checks aimed at a row's flaw."""
    table = matrix_table(outcomes)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in table
    ]
    errors = [f"{o.row.model} on {o.row.probes}: {o.error}" for o in outcomes if o.error]
    return "\n".join([*lines, *errors, "* the check is aimed at the row's flaw: it must fail"])


def markdown_matrix(outcomes: Sequence[RowOutcome]) -> str:
    """The matrix as a Markdown table (for the README and CI summaries)."""
    header, *body = matrix_table(outcomes)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in body]
    return "\n".join(lines) + "\n\n`*` the check is aimed at the row's flaw: it must fail.\n"


def write_matrix(outcomes: Sequence[RowOutcome], out: Path) -> None:
    """`<out>.json` (rows, cells and every result) and `<out>.md`, each written atomically."""
    from xaigate.verdict import write_json_atomic, write_text_atomic

    content = {
        "rows": [
            {
                **{
                    key: str(value) if isinstance(value, Path) else value
                    for key, value in asdict(outcome.row).items()
                },
                "cells": outcome.cells,
                "passed": outcome.passed,
                "as_expected": outcome.as_expected,
                "error": outcome.error,
                "results": outcome.results,
            }
            for outcome in outcomes
        ]
    }
    write_json_atomic(out.with_suffix(".json"), content)
    write_text_atomic(out.with_suffix(".md"), markdown_matrix(outcomes))
