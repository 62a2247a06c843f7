"""Intervention gates, which need no explainer.

Swapping the border or background must not move the prediction; swapping the decisive region
must.
"""

import pytest

from fixtures.gate import run_case
from xaigate.cases import Case
from xaigate.gate import Gate


@pytest.mark.check("border_swap_flip_rate")
def test_border_swap_flip_rate(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("border_swap_shift")
def test_border_swap_shift(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("background_swap_flip_rate")
def test_background_swap_flip_rate(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("background_swap_shift")
def test_background_swap_shift(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("decisive_swap_follow_rate")
def test_decisive_swap_follow_rate(case: Case, gate: Gate) -> None:
    run_case(gate, case)
