"""The model precondition: accuracy on the probes, run first."""

import pytest

from fixtures.gate import run_case
from xaigate.cases import Case
from xaigate.gate import Gate


@pytest.mark.check("model_accuracy")
def test_model_accuracy(case: Case, gate: Gate) -> None:
    run_case(gate, case)
