# Every target bootstraps .venv on first use; a stamp file makes later runs skip the install
# until pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: run test lint bench soak models gpu-wheels gpu-check clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, exactly pinned, so nothing later pulls a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m bot

# Two processes; a file's tests stay together (module-scoped fixtures, tests that check what the
# tests before them in the file did).
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(PY) -m ruff check bot knowledge generation tests benchmarks
	$(PY) -m ruff format --check bot knowledge generation tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks

# The prepared GPU check (about 8 minutes): every default recipe trained on the GPU and timed on 2 CPU
# threads, and the generation speed benchmark on both. It runs on the lent GPU machine, whose python3
# holds CUDA torch but not our settings packages: first, here, `make gpu-wheels` (into the git-ignored
# .whl, pinned to this venv's versions), then carry .whl and run `make gpu-check` there.
GPU_WHEELS := pydantic pydantic[-_]core pydantic[-_]settings python[-_]dotenv annotated[-_]types typing[-_]inspection
gpu-wheels: $(STAMP)
	mkdir -p .whl
	$(PY) -m pip freeze | grep -iE '^($(shell echo $(GPU_WHEELS) | tr ' ' '|'))==' > .whl/requirements.txt
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl -r .whl/requirements.txt

gpu-check:
	python3 -m pip install --quiet --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
	PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu_check

# Retrain the default champions shipped in generation/pretrained/ and knowledge/pretrained/intent/
# (default recipes, fixed seeds).
models: $(STAMP)
	$(PY) -m generation.train.ship
	$(PY) -m knowledge train-intent --ship

# Ten minutes of load with injected faults against the bot (see README "Reliability").
soak: $(STAMP)
	$(PY) -m benchmarks.reliability --soak --minutes 10

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
