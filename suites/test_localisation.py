"""Localisation gates: explanations land on the decisive region, not the border or background."""

import pytest

from fixtures.gate import run_case
from xaigate.cases import Case
from xaigate.gate import Gate


@pytest.mark.check("region_focus")
def test_region_focus(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("region_rank")
def test_region_rank(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("pointing_game")
def test_pointing_game(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("border_dominance")
def test_border_dominance(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("background_dominance")
def test_background_dominance(case: Case, gate: Gate) -> None:
    run_case(gate, case)
