# Fieldbook: `make run` serves on http://127.0.0.1:8000, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export FIELDBOOK_DATA_DIR ?= $(CURDIR)/data
# The browser tests use Debian's /usr/bin/chromium; Playwright must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: install run migrate test lint typecheck test-sqlite test-pg bench fuzz audit clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'setuptools>=78.1.1'  # the bundled one of the venv has advisories
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/fieldbook serve --host 127.0.0.1 --port 8000

migrate: install
	$(BIN)/fieldbook migrate

# The browser scenarios (SQLite only; their modules are marked `browser`) run first, on their own:
# their timeouts are a phone's, and a busy machine made them flaky. Then the two legs run side by
# side without them: each keeps about one core busy (pytest is one process), so on 2 cores both take
# little longer than one. Each leg's output is shown when it ends.
test: install lint typecheck
	@echo "== browser tests (SQLite) =="
	$(BIN)/pytest -q -m browser
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-pg LEG_PYTEST_ARGS='-m "not browser"'

lint: install
	$(BIN)/ruff check api storage tests bench alembic
	$(BIN)/ruff format --check api storage tests bench alembic

typecheck: install
	$(BIN)/mypy api storage

test-sqlite: install
	@echo "== tests on SQLite =="
	$(BIN)/pytest -q $(LEG_PYTEST_ARGS)

# Runs when PostgreSQL answers at PG_TEST_URL; FIELDBOOK_REQUIRE_PG=1 (CI) makes its absence an error.
test-pg: install
	@if $(BIN)/python -c "import sqlalchemy as sa; sa.create_engine('$(PG_TEST_URL)').connect().close()" 2>/dev/null; then \
		echo "== tests on PostgreSQL ($(PG_TEST_URL)) =="; \
		FIELDBOOK_TEST_DATABASE_URL='$(PG_TEST_URL)' $(BIN)/pytest -q $(LEG_PYTEST_ARGS); \
	elif [ "$$FIELDBOOK_REQUIRE_PG" = "1" ]; then \
		echo "PostgreSQL is required but does not answer at $(PG_TEST_URL)"; exit 1; \
	else \
		echo "== PostgreSQL leg SKIPPED: nothing answers at $(PG_TEST_URL) (set PG_TEST_URL to run it) =="; \
	fi

bench: install
	$(BIN)/python -m bench

# A longer schemathesis run than the suite's (which is bounded and seeded).
fuzz: install
	FIELDBOOK_FUZZ_EXAMPLES=$${FIELDBOOK_FUZZ_EXAMPLES:-300} $(BIN)/pytest -q tests/test_fuzz.py

# Known advisories in what is installed (runtime and dev). Needs PyPI's per-release JSON API; --strict makes a
# package it could not look up an error, not a silent skip (without it pip-audit says "No known
# vulnerabilities found" even when it reached nothing). Not part of `make test`: it needs the internet.
audit: install
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off || { \
		echo "pip-audit failed: an advisory above, or the advisory database could not be reached"; exit 1; }

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
