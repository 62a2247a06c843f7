"""Occlusion and lighting robustness."""

import pytest

from fixtures.gate import run_case
from xaigate.cases import Case
from xaigate.gate import Gate


@pytest.mark.check("occlusion_flip_rate")
def test_occlusion_flip_rate(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("occlusion_similarity")
def test_occlusion_similarity(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("lighting_flip_rate")
def test_lighting_flip_rate(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("lighting_similarity")
def test_lighting_similarity(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("decisive_occlusion_drop")
def test_decisive_occlusion_drop(case: Case, gate: Gate) -> None:
    run_case(gate, case)
