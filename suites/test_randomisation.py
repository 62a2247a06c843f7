"""Randomisation sanity (Adebayo et al. 2018)."""

import pytest

from fixtures.gate import run_case
from xaigate.cases import Case
from xaigate.gate import Gate


@pytest.mark.check("randomisation_sanity")
def test_randomisation_sanity(case: Case, gate: Gate) -> None:
    run_case(gate, case)
