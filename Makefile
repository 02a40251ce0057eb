# mlportal: `make run` starts the portal, `make test` runs the test suite.
# Needs only python3 (with its venv module) and make; everything else comes from PyPI into .venv.

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
# Four test processes (pytest-xdist): much of the suite waits on live servers, browsers and
# database flushes rather than on the CPU, so even two cores gain from four.
PYTEST_ARGS ?= -n 4

BIN := $(VENV)/bin
# Stamps live inside the venv, so deleting .venv starts over; they are rebuilt when
# pyproject.toml is newer than they are.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: run test install install-test migrate clean help
.DEFAULT_GOAL := help

help:
	@echo "make run    install, migrate, create the first admin, serve http://$(HOST):$(PORT)"
	@echo "make test   install with the test extra, run the whole test suite"
	@echo "make clean  remove .venv (var/ with the embedded database is kept)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $@

install: $(RUN_STAMP)
install-test: $(TEST_STAMP)

migrate: $(RUN_STAMP)
	$(BIN)/python manage.py migrate --noinput

# --insecure serves the admin's static files while DEBUG is off; runserver is bound to
# loopback and is the embedded default only. Production runs gunicorn (see README).
run: migrate
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py runserver --insecure $(HOST):$(PORT)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV)
