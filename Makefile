# Two entry points: `make demo` (the explorer on demo traffic) and `make test` (the suite).
# Both create .venv and install the project with what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench server clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/trace-tui demo

test: lint
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python -m pytest -q

# Style, the layer contracts (pyproject [tool.importlinter]), types, and the start path.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python tests/start_path.py

bench: $(STAMP)
	$(BIN)/python bench/fetch.py
	$(BIN)/python bench/sampler.py
	$(BIN)/python bench/tui.py
	$(BIN)/python bench/eval.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/designer.py

server: $(STAMP)
	$(BIN)/trace-tui server

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
