# The two commands of the README: `make gate` and `make test`. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROBES := probes/smile
MODEL := models/smile-cnn
VARIANTS := glasses,mouth_mask,bright,dark
PYTEST_ARGS ?=
# Two pytest-xdist workers, cases of one model and explainer on one worker; PARALLEL= runs serially.
PARALLEL ?= -n 2 --dist loadgroup

.PHONY: gate gate-smile gate-emotion test install probes models zoo matrix lint clean

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
	@status=0; \
	$(PY) -m pytest suites $(PARALLEL) $(PYTEST_ARGS) || status=$$?; \
	$(PY) -m pytest suites --model models/emotion-cnn/model.yaml --probes probes/emotion \
		--gate-json reports/gate-emotion.json $(PARALLEL) $(PYTEST_ARGS) || status=$$((status > $$? ? status : $$?)); \
	exit $$status

gate-smile: $(INSTALLED) probes models
	$(PY) -m pytest suites $(PARALLEL) $(PYTEST_ARGS)

gate-emotion: $(INSTALLED) probes models
	$(PY) -m pytest suites --model models/emotion-cnn/model.yaml --probes probes/emotion \
		--gate-json reports/gate-emotion.json $(PARALLEL) $(PYTEST_ARGS)

test: $(INSTALLED)
	$(PY) -m pytest tests $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(PY) -m ruff check xaigate fixtures suites tests models bench
	$(PY) -m ruff format --check xaigate fixtures suites tests models bench

clean:
	rm -rf reports .cache .pytest_cache
