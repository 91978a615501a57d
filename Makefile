# Every target installs the project into .venv first when it is missing (scripts/install.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
MODELS_DIR ?= models
NAME ?= sentiment
PYTEST_ARGS ?=

.PHONY: install serve train test test-fast lint bench bench-quick bursts bursts-quick clean

$(VENV)/.installed: pyproject.toml scripts/install.sh
	bash scripts/install.sh

install: $(VENV)/.installed

## Run the service; trains and publishes the default model first when none exists.
serve: install
	@if ! $(VENV)/bin/sentiment-models --models-dir $(MODELS_DIR) list --name $(NAME) --quiet >/dev/null 2>&1; then \
		echo "no published model under $(MODELS_DIR)/$(NAME): training the default one first"; \
		$(VENV)/bin/sentiment-train --models-dir $(MODELS_DIR) --name $(NAME); \
	fi
	$(VENV)/bin/sentiment-serve --models-dir $(MODELS_DIR) --name $(NAME)

train: install
	$(VENV)/bin/sentiment-train --models-dir $(MODELS_DIR) --name $(NAME)

test: install
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -ra -m "not integration and not docker" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

bench: install
	$(PY) -m bench.run --mode full

bench-quick: install
	$(PY) -m bench.run --mode quick

bursts: install  # issue 16's targets: 10 bursts x 1,000 clients, every mode and scenario (docs/operations.md)
	mkdir -p runs && $(PY) -m bench.bursts --out runs/bursts.json

bursts-quick: install
	$(PY) -m bench.bursts --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
