"""Stability gates of stochastic explainers (LIME, SHAP)."""

import pytest

from fixtures.gate import run_case
from xaigate.cases import Case
from xaigate.gate import Gate


@pytest.mark.check("reproducibility")
def test_reproducibility(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("stability_rank")
def test_stability_rank(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("stability_iou")
def test_stability_iou(case: Case, gate: Gate) -> None:
    run_case(gate, case)
