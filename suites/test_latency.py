"""Explanation latency per image, per model and explainer (pytest-benchmark); runs serially."""

import pytest

from fixtures.latency import run_latency_case
from xaigate.cases import Case
from xaigate.gate import Gate


@pytest.mark.check("latency")
def test_latency(case: Case, gate: Gate, benchmark) -> None:  # noqa: ANN001 - pytest-benchmark's fixture
    run_latency_case(gate, case, benchmark)
