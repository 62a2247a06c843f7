"""Work groups: which cases share maps (one worker takes them whole) and which go first."""

from __future__ import annotations

from types import SimpleNamespace

from fixtures.xdist_groups import _param_id
from xaigate.cases import Case
from xaigate.explainers import EXPLAINERS
from xaigate.work_groups import case_groups, group_costs, work_group


def _gate(cases: list[Case]) -> SimpleNamespace:
    explainers = {
        name: EXPLAINERS[name](EXPLAINERS[name].config_model())
        for name in ("lime", "gradcam", "integrated_gradients")
    }
    return SimpleNamespace(configured=cases, context=SimpleNamespace(explainers=explainers))


CASES = [
    Case("smile-cnn", "lime", "region_focus", "smile", "mouth"),
    Case("smile-cnn", "lime", "class_contrast", "smile_vs_not_smile", ""),
    Case("smile-cnn", "gradcam", "region_focus", "smile", "mouth"),
    Case("smile-cnn", "gradcam", "border_dominance", "smile", "border"),
    Case("smile-cnn", "gradcam", "class_contrast", "smile_vs_not_smile", ""),
    Case("smile-cnn", "integrated_gradients", "region_focus", "smile", "mouth"),
    Case("smile-cnn", "", "model_accuracy", "all", ""),
    Case("emotion-cnn", "lime", "region_focus", "happy", "mouth"),
]


def test_a_group_is_one_model_and_one_explainer() -> None:
    groups = case_groups(_gate(CASES))
    assert groups["smile-cnn-lime-smile-mouth"] == "smile-cnn-lime"
    assert groups["smile-cnn-gradcam-smile-border"] == "smile-cnn-gradcam"
    assert groups["smile-cnn-all"] == work_group(CASES[6]) == "smile-cnn-model"
    assert groups["emotion-cnn-lime-happy-mouth"] == "emotion-cnn-lime"


def test_costs_rank_sampling_explainers_before_gradients() -> None:
    costs = group_costs(_gate(CASES))
    # 2 LIME cases x 1000 samples > 1 IG case x 32 steps > 3 Grad-CAM cases x 1 pass > 1 case.
    assert costs["smile-cnn-lime"] == 2000.0
    assert costs["smile-cnn-integrated_gradients"] == 32.0
    assert costs["smile-cnn-gradcam"] == 3.0
    assert costs["smile-cnn-model"] == 1.0
    assert max(costs, key=costs.get) == "smile-cnn-lime"


def test_param_id_of_a_node_id_with_or_without_xdist_suffix() -> None:
    node = "suites/test_localisation.py::test_region_focus[smile-cnn-lime-smile-mouth]"
    assert _param_id(node) == "smile-cnn-lime-smile-mouth"
    assert _param_id(node + "@smile-cnn-lime") == "smile-cnn-lime-smile-mouth"  # pytest < 9.2
    assert _param_id("suites/test_latency.py::test_something") is None
    assert _param_id("suites/test_x.py::test_y[a@b]") == "a@b"  # '@' inside the id is kept
