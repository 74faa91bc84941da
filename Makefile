# Two commands for a newcomer: `make demo` and `make test`. Both install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp changes whenever the pinned set or the project metadata changes, so a second
# run skips the install and an edited lock reinstalls.
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast lint lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing pinned dependencies into $(VENV) (first run only, about a minute)..."
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	@$(BIN)/python -m pip check
	@touch $@

demo: $(STAMP)
	@$(BIN)/kam-dev demo

test: $(STAMP)
	@$(BIN)/ruff check plugins dags tests tools
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

# The unit tests, the dbt unit tests and everything that needs no Airflow run or large load.
test-fast: $(STAMP)
	@$(BIN)/ruff check plugins dags tests tools
	@$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	@$(BIN)/ruff check plugins dags tests tools
	@$(BIN)/ruff format --check plugins dags tests tools

# Re-resolve the pins from pyproject.toml in a scratch venv and write the lock.
lock:
	@rm -rf /tmp/kam-lock-venv && $(PYTHON) -m venv /tmp/kam-lock-venv
	@/tmp/kam-lock-venv/bin/pip install --quiet --upgrade pip
	@/tmp/kam-lock-venv/bin/pip install --quiet -e '.[dev]'
	@/tmp/kam-lock-venv/bin/pip check
	@{ echo "# Exact versions that install together and pass 'pip check' on Python 3.11."; \
	   echo "# Regenerate: make lock (never hand-edit; the resolver must not drift)."; \
	   /tmp/kam-lock-venv/bin/pip freeze --exclude-editable; } > requirements/constraints.txt

clean:
	@test ! -x $(BIN)/kam || $(BIN)/kam warehouse stop || true
	rm -rf var
