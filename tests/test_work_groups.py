"""Work groups: which cases share maps (one worker takes them whole) and which go first."""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

from fixtures.gate import GATE
from fixtures.progress import GroupProgress
from fixtures.xdist_groups import _group_of, _param_id, _scheduler
from xaigate.cases import Case
from xaigate.explainers import EXPLAINERS
from xaigate.work_groups import case_groups, group_costs, handout_order, work_group


def _gate(cases: list[Case]) -> Any:
    explainers = {
        name: EXPLAINERS[name](EXPLAINERS[name].config_model())
        for name in ("lime", "gradcam", "integrated_gradients", "shap")
    }
    return SimpleNamespace(configured=cases, context=SimpleNamespace(explainers=explainers))


CASES = [
    Case("smile-cnn", "lime", "region_focus", "smile", "mouth"),
    Case("smile-cnn", "lime", "class_contrast", "smile_vs_not_smile", ""),
    Case("smile-cnn", "lime", "occlusion_similarity", "smile", "glasses", "no variants"),
    Case("smile-cnn", "gradcam", "region_focus", "smile", "mouth"),
    Case("smile-cnn", "gradcam", "border_dominance", "smile", "border"),
    Case("smile-cnn", "gradcam", "class_contrast", "smile_vs_not_smile", ""),
    Case("smile-cnn", "integrated_gradients", "region_focus", "smile", "mouth"),
    Case("smile-cnn", "", "model_accuracy", "all", ""),
    Case("emotion-cnn", "lime", "region_focus", "überrascht", "mouth"),
]


def test_a_group_is_one_model_and_one_explainer() -> None:
    groups = case_groups(_gate(CASES))
    assert groups["smile-cnn-lime-smile-mouth"] == "smile-cnn-lime"
    assert groups["smile-cnn-gradcam-smile-border"] == "smile-cnn-gradcam"
    assert groups["smile-cnn-all"] == work_group(CASES[7]) == "smile-cnn-model"
    assert groups["emotion-cnn-lime-überrascht-mouth"] == "emotion-cnn-lime"


def test_an_explainer_whose_classes_share_no_work_gets_a_group_per_class() -> None:
    assert not EXPLAINERS["shap"].classes_share_work and EXPLAINERS["lime"].classes_share_work
    cases = [
        Case("emotion-cnn", "shap", "region_focus", "happy", "mouth"),
        Case("emotion-cnn", "shap", "stability_rank", "happy", ""),
        Case("emotion-cnn", "shap", "region_focus", "angry", "brows"),
        Case("emotion-cnn", "shap", "stability_rank", "angry", ""),
        Case("emotion-cnn", "shap", "class_contrast", "happy_vs_angry", ""),
        Case("emotion-cnn", "lime", "region_focus", "angry", "brows"),
    ]
    gate = _gate(cases)
    assert case_groups(gate) == {
        "emotion-cnn-shap-happy-mouth": "emotion-cnn-shap-happy",
        "emotion-cnn-shap-happy": "emotion-cnn-shap-happy",
        "emotion-cnn-shap-angry-brows": "emotion-cnn-shap-angry",
        "emotion-cnn-shap-angry": "emotion-cnn-shap-angry",
        "emotion-cnn-shap-happy_vs_angry": "emotion-cnn-shap-happy_vs_angry",
        "emotion-cnn-lime-angry-brows": "emotion-cnn-lime",
    }
    # The contrast, one case against a class's several, goes after the classes: its maps of
    # the pair's images for their own class are the classes' maps, by then in the disk cache.
    assert handout_order(gate) == [
        "emotion-cnn-lime",
        "emotion-cnn-shap-angry",
        "emotion-cnn-shap-happy",
        "emotion-cnn-shap-happy_vs_angry",
    ]


def test_costs_count_running_cases_times_model_passes() -> None:
    costs = group_costs(_gate(CASES))
    # 2 running LIME cases x 1000 samples (the not-applicable one costs nothing) > 1 IG case x
    # 32 steps > 3 Grad-CAM cases x 1 pass > 1 case without an explainer.
    assert costs["smile-cnn-lime"] == 2000.0
    assert costs["smile-cnn-integrated_gradients"] == 32.0
    assert costs["smile-cnn-gradcam"] == 3.0
    assert costs["smile-cnn-model"] == 1.0


def test_the_precondition_goes_first_then_the_costliest() -> None:
    assert handout_order(_gate(CASES)) == [
        "smile-cnn-model",  # model_accuracy: a model that cannot classify stops the run early
        "smile-cnn-lime",
        "emotion-cnn-lime",
        "smile-cnn-integrated_gradients",
        "smile-cnn-gradcam",
    ]


def test_param_id_of_a_node_id_with_or_without_xdist_suffix() -> None:
    node = "suites/test_localisation.py::test_region_focus[smile-cnn-lime-smile-mouth]"
    assert _param_id(node) == "smile-cnn-lime-smile-mouth"
    assert _param_id(node + "@smile-cnn-lime") == "smile-cnn-lime-smile-mouth"  # pytest < 9.2
    assert _param_id("suites/test_latency.py::test_something") is None
    assert _param_id("suites/test_x.py::test_y[a@b]") == "a@b"  # '@' inside the id is kept


def test_an_id_pytest_escaped_still_finds_its_group() -> None:
    groups = case_groups(_gate(CASES))
    assert _group_of("emotion-cnn-lime-\\xfcberrascht-mouth", groups) == "emotion-cnn-lime"
    assert _group_of("no-such-case", groups) is None


class _Reporter:
    """The terminal reporter's part that the progress lines use."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def test_progress_lines_count_the_cases_each_group_runs() -> None:
    reporter = _Reporter()
    config = SimpleNamespace(
        stash={GATE: _gate(CASES)},
        pluginmanager=SimpleNamespace(get_plugin=lambda name: reporter),
    )
    progress = GroupProgress(config)  # type: ignore[arg-type]
    # What the workers collected after `-k`: one LIME case (its id escaped as pytest escapes
    # it), and both Grad-CAM cases of the configured ones.
    collected = [
        "suites/test_localisation.py::test_region_focus[emotion-cnn-lime-\\xfcberrascht-mouth]",
        "suites/test_localisation.py::test_region_focus[smile-cnn-gradcam-smile-mouth]",
        "suites/test_contrast.py::test_class_contrast[smile-cnn-gradcam-smile_vs_not_smile]",
        "suites/test_latency.py::test_latency",  # not a gate case: not counted
    ]
    progress.pytest_xdist_node_collection_finished(None, collected)
    progress.pytest_xdist_node_collection_finished(None, collected[:1])  # a second worker
    for nodeid in collected:
        progress.pytest_runtest_logstart(nodeid, ("", None, ""))
    assert reporter.lines == [
        "xaigate: emotion-cnn-lime: starting (1 case)",
        "xaigate: smile-cnn-gradcam: starting (2 cases)",
    ]


class _Node:
    """What the scheduler needs of an xdist worker: it records the tests it is sent."""

    def __init__(self, name: str) -> None:
        self.name, self.sent, self.shutting_down = name, [], False
        self.gateway = SimpleNamespace(id=name)

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_the_scheduler_keeps_each_group_on_one_worker_in_handout_order() -> None:
    gate = _gate(CASES)
    collection = [
        f"suites/test_{case.check}.py::test_{case.check}[{case.id}]" for case in CASES
    ] + ["suites/test_other.py::test_not_a_case"]
    options = {"tx": ["2*popen"], "loadscopereorder": True}
    config = SimpleNamespace(getvalue=options.get, option=SimpleNamespace(**options))
    scheduler = _scheduler(config, None, case_groups(gate), handout_order(gate))
    nodes = [_Node("gw0"), _Node("gw1")]
    for node in nodes:
        scheduler.add_node(node)
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    while scheduler.workqueue:  # each worker finishes what it was sent and asks for more
        for node in nodes:
            for index in list(node.sent):
                if not scheduler.assigned_work[node][scheduler._split_scope(collection[index])][
                    collection[index]
                ]:
                    scheduler.mark_test_complete(node, index)
    ran_on = {
        work_group(case): {node.name for node in nodes if position in node.sent}
        for position, case in enumerate(CASES)
    }
    assert all(len(workers) == 1 for workers in ran_on.values()), ran_on
    first_units = [next(iter(scheduler.assigned_work[node])) for node in nodes]
    assert first_units == ["smile-cnn-model", "smile-cnn-lime"]
    assert any(len(collection) - 1 in node.sent for node in nodes)  # a non-case test runs too


def test_only_a_case_outside_every_group_is_warned_about() -> None:
    """A case id the gate does not know (pytest renamed a duplicate id) is warned about once;
    pytest's skipped test of an empty parameter set (drift without a baseline) is not."""
    options = {"tx": ["2*popen"], "loadscopereorder": True}
    config = SimpleNamespace(getvalue=options.get, option=SimpleNamespace(**options))
    scheduler = _scheduler(config, None, case_groups(_gate(CASES)), handout_order(_gate(CASES)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        empty = "suites/test_drift.py::test_explanation_drift_rank[NOTSET]"
        assert scheduler._split_scope(empty) == empty
        assert not caught
        renamed = "suites/test_localisation.py::test_region_focus[smile-cnn-lime-smile-mouth0]"
        assert scheduler._split_scope(renamed) == renamed
        scheduler._split_scope(renamed.replace("mouth0]", "mouth1]"))  # not warned again
    assert [str(warning.message) for warning in caught] == [
        f"xaigate: {renamed} has no work group; its case may run on another worker than the "
        "cases sharing its maps"
    ]
