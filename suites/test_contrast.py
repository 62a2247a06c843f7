"""Class contrast: explanations of different classes differ."""

import pytest

from fixtures.gate import run_case
from xaigate.cases import Case
from xaigate.gate import Gate


@pytest.mark.check("class_contrast")
def test_class_contrast(case: Case, gate: Gate) -> None:
    run_case(gate, case)
