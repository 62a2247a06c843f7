"""Root conftest: the gate's pytest plugins live in fixtures/."""

pytest_plugins = [
    "fixtures.options",
    "fixtures.gate",
    "fixtures.xdist_groups",
    "fixtures.allure_evidence",
    "fixtures.ci_outputs",
    "fixtures.progress",
    "fixtures.latency",
]
