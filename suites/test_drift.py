"""Explanation drift against the baseline (only with --baseline): the candidate's maps beside
the released model's, per probe image."""

import pytest

from fixtures.gate import run_case
from xaigate.cases import Case
from xaigate.gate import Gate


@pytest.mark.check("explanation_drift_rank")
def test_explanation_drift_rank(case: Case, gate: Gate) -> None:
    run_case(gate, case)


@pytest.mark.check("explanation_drift_iou")
def test_explanation_drift_iou(case: Case, gate: Gate) -> None:
    run_case(gate, case)
