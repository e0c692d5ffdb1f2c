# Needle Outcomes: developer and CI entry points. `make test` works from a clean clone on a fresh machine.

PYTHON_FOR_VENV := $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: all venv system db run test lint bench clean

all: test

venv: $(STAMP)

$(PY):
	$(PYTHON_FOR_VENV) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check --quiet -r requirements.txt
	touch $@

system:
	bash scripts/install-system-packages.sh

db: venv
	$(PY) -m db init
	$(PY) -m db seed --if-empty

run: venv db
	$(PY) -m streamlit run dashboard/app.py --server.port=8501

# Work stealing: the tests run from milliseconds to 20 s (a browser journey), and with load's fixed batches one
# worker could be left with a queue of long ones. One run each: 624 s of pytest, the two workers ending 4 s apart,
# where load took 659 s; the same code varies by about 30 s between runs.
test: venv system
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n auto --dist worksteal

lint: venv
	$(VENV)/bin/ruff check .

# Issue 15's figures on SQLite and PostgreSQL at 10k, 100k and 1M sessions; rewrites bench/RESULTS.md.
# Smaller, for development: `make bench BENCH_ARGS="--sizes 10000,100000 --backends sqlite --keep /tmp/needle-bench"`.
bench: venv system
	$(PY) -m bench --write-results $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
