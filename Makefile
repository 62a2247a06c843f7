# The two commands of the README: `make gate` and `make test`. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROBES := probes/smile
MODEL := models/smile-cnn
VARIANTS := glasses,mouth_mask,bright,dark
PYTEST_ARGS ?=
# Two pytest-xdist workers, each work group (xaigate/work_groups.py) on one; PARALLEL= runs serially.
PARALLEL ?= -n 2 --dist loadgroup

REPORTS := reports
ALLURE_RESULTS := $(REPORTS)/allure-results
LATENCY_SUITE := suites/test_latency.py

.PHONY: gate gate-smile gate-emotion report chromium test install probes models zoo matrix lint clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "xaigate needs Python 3.11, got " + sys.version' 
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

probes: $(PROBES)/manifest.jsonl probes/emotion/manifest.jsonl

probes/%/manifest.jsonl: | $(INSTALLED)
	$(PY) -m xaigate.probes --task $* --n 120 --seed 1 --out probes/$* --variants $(VARIANTS) --overwrite

models: $(MODEL)/weights.pt models/emotion-cnn/weights.pt

models/%-cnn/weights.pt: | $(INSTALLED)
	$(PY) -m models.recipes.face_cnn --task $* --out models/$*-cnn

# $(call gate_model,CARD,PROBES,NAME,VERDICT): one model's cases on the xdist workers, then its
# latency cases in a serial call (workers sharing the cores would time each other), each writing
# a part of the verdict that `xaigate.merge` joins into VERDICT; the worst exit code is kept in
# $$status. Allure results, JUnit XML and the benchmark JSON land under reports/.
define gate_model
GITHUB_STEP_SUMMARY= $(PY) -m pytest suites --model $(1) --probes $(2) $(PARALLEL) \
	--ignore=$(LATENCY_SUITE) --gate-json $(REPORTS)/parts/$(3)-cases.json \
	--junitxml=$(REPORTS)/junit/$(3)-cases.xml --alluredir=$(ALLURE_RESULTS) \
	--manifest $(REPORTS)/manifest.json $(PYTEST_ARGS) || status=$$(( $$? > status ? $$? : status )); \
GITHUB_STEP_SUMMARY= $(PY) -m pytest $(LATENCY_SUITE) --model $(1) --probes $(2) \
	--gate-json $(REPORTS)/parts/$(3)-latency.json --benchmark-json=$(REPORTS)/benchmark-$(3).json \
	--junitxml=$(REPORTS)/junit/$(3)-latency.xml --alluredir=$(ALLURE_RESULTS) \
	--manifest $(REPORTS)/manifest.json $(PYTEST_ARGS) || status=$$(( $$? > status ? $$? : status )); \
$(PY) -m xaigate.merge $(REPORTS)/parts/$(3)-cases.json $(REPORTS)/parts/$(3)-latency.json \
	--out $(4) || status=$$(( $$? > status ? $$? : status ));
endef

# Evidence of this run only: earlier results would mix into the report and the manifest.
define fresh_reports
rm -rf $(ALLURE_RESULTS) $(REPORTS)/parts $(REPORTS)/junit $(REPORTS)/manifest.json \
	$(REPORTS)/benchmark-*.json $(REPORTS)/signoff
endef

define report_paths
echo; $(PY) -m xaigate.ci_outputs $(REPORTS)/gate*.json; \
echo "reports: $(REPORTS)/gate*.json (verdicts), $(REPORTS)/junit.xml, $(REPORTS)/benchmark-*.json,"; \
echo "         $(REPORTS)/manifest.json, $(ALLURE_RESULTS)/ (make report: sign-off HTML)"
endef

# The model zoo (models/recipes/zoo.py): weights are committed; `make zoo` retrains them all.
zoo: | $(INSTALLED)
	$(PY) -m models.recipes.zoo train

# The detection matrix: every zoo model gated on the probe sets that expose its flaw, with the
# shipped thresholds; exit 1 when a good model fails or a flaw is not caught.
matrix: $(INSTALLED)
	$(PY) -m models.recipes.zoo matrix $(MATRIX_ARGS)

# Both reference models, each on its own probe set and verdict; both always run, and the
# worse exit code wins (1 a failed gate, 4 a usage error).
gate: $(INSTALLED) probes models
	@$(fresh_reports); status=0; \
	$(call gate_model,$(MODEL)/model.yaml,$(PROBES),smile-cnn,$(REPORTS)/gate.json) \
	$(call gate_model,models/emotion-cnn/model.yaml,probes/emotion,emotion-cnn,$(REPORTS)/gate-emotion.json) \
	$(PY) -m xaigate.junit $(REPORTS)/junit/*.xml --out $(REPORTS)/junit.xml || status=4; \
	$(report_paths); exit $$status

gate-smile: $(INSTALLED) probes models
	@$(fresh_reports); status=0; \
	$(call gate_model,$(MODEL)/model.yaml,$(PROBES),smile-cnn,$(REPORTS)/gate.json) \
	$(PY) -m xaigate.junit $(REPORTS)/junit/*.xml --out $(REPORTS)/junit.xml || status=4; \
	$(report_paths); exit $$status

gate-emotion: $(INSTALLED) probes models
	@$(fresh_reports); status=0; \
	$(call gate_model,models/emotion-cnn/model.yaml,probes/emotion,emotion-cnn,$(REPORTS)/gate-emotion.json) \
	$(PY) -m xaigate.junit $(REPORTS)/junit/*.xml --out $(REPORTS)/junit.xml || status=4; \
	$(report_paths); exit $$status

# Allure 3, pinned in package-lock.json, installed by npm ci.
NODE_MODULES := node_modules/.package-lock.json
$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The sign-off report: one self-contained HTML file from the Allure results of `make gate`.
report: $(INSTALLED) $(NODE_MODULES)
	$(PY) -m xaigate.signoff $(ALLURE_RESULTS) --out $(REPORTS)/signoff

# Headless Chromium for the report's browser test (tests/test_report.py); Debian/Ubuntu, as root
# (prefix with sudo where needed). `make test` installs it, so a fresh CI machine runs the test.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

test: $(INSTALLED) $(NODE_MODULES) chromium
	$(PY) -m pytest tests $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(PY) -m ruff check xaigate fixtures suites tests models bench
	$(PY) -m ruff format --check xaigate fixtures suites tests models bench

clean:
	rm -rf reports .cache .pytest_cache node_modules
