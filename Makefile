# The hub's entry points. Every target first runs scripts/bootstrap.sh, which creates .venv and
# installs requirements.txt when needed (and is a no-op otherwise).
#
#   make run     web + Celery worker + beat on embedded defaults (SQLite, filesystem broker) at :8000
#   make test    the whole test suite (PostgreSQL/Redis when reachable; see tests/settings.py)
#   make bench   benchmarks (python -m bench)
#   make lint    ruff check, ruff format --check, makemigrations --check

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
export VENV
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help bootstrap run test bench lint

help:
	@echo "make run    - the hub at http://127.0.0.1:8000 with a worker, beat and demo data (Ctrl-C stops all)"
	@echo "make test   - run the test suite (PYTEST_ARGS='-k name' to narrow it)"
	@echo "make bench  - run the benchmarks"
	@echo "make lint   - ruff check, ruff format --check, makemigrations --check"

bootstrap:
	scripts/bootstrap.sh

run: bootstrap
	$(PY) scripts/run.py

test:
	scripts/bootstrap.sh --with-chromium --with-compose
	$(PY) -m pytest $(PYTEST_ARGS)

bench: bootstrap
	$(PY) -m bench

# makemigrations only compares models with migration files: an in-memory database keeps it off real data.
lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run
