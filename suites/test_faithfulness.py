"""Faithfulness: deletion and insertion against a random pixel order."""

import pytest

from fixtures.gate import run_case
from xaigate.cases import Case
from xaigate.gate import Gate


@pytest.mark.check("deletion_ratio")
def test_deletion_ratio(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("insertion_ratio")
def test_insertion_ratio(case: Case, gate: Gate) -> None:
    run_case(gate, case)
