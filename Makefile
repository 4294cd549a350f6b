# backendlab: `make lab` to learn, `make test` to check everything. See README.md.
PYTHON ?= python3
LAB_PORT ?= 8888
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The learner's copies of the notebooks and labs (git-ignored; see backendlab/workspace.py).
WORKSPACE ?= my-work
# Test processes: three on a 2-core machine, since a test spends about a third of its time waiting
# on a server, a broker or a browser (measured on 2 cores, before bytecode was compiled at install:
# 2 workers 460 s, 3 workers 368 s, 4 workers 381 s with timing tests failing).
TEST_WORKERS ?= 3

# Jupyter, IPython and matplotlib write under $HOME by default; keep their files in the project.
# Jupyter's runtime folder stays in $HOME, where `jupyter server list` looks for running servers.
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export IPYTHONDIR := $(CURDIR)/.cache/ipython
export JUPYTER_CONFIG_DIR := $(CURDIR)/.cache/jupyter/config

.PHONY: install lab refresh progress test test-busy services services-down labs doctor bench browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "backendlab needs Python 3.11 or newer: run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade uv
	@# uv installs in seconds; it trusts the system's certificate store, as pip does. pip is the fallback.
	@# Bytecode is compiled at install (pip does it by default, uv on request): where Python may not
	@# write it (PYTHONDONTWRITEBYTECODE, as on CI machines) every process would compile its imports
	@# again, about 1.8 s of CPU for each server, worker and kernel the suite starts.
	UV_SYSTEM_CERTS=1 $(VENV)/bin/uv pip install --python $(PY) --quiet --compile-bytecode -e '.[dev]' \
		|| $(PY) -m pip install --quiet -e '.[dev]'
	@# rfc3987-syntax (an optional jsonschema format checker) adds ~2.5 s to every Jupyter start.
	$(PY) -m pip uninstall --quiet --yes rfc3987-syntax
	touch $(STAMP)

lab: install
	@mkdir -p $(MPLCONFIGDIR) $(IPYTHONDIR) $(JUPYTER_CONFIG_DIR)
	@$(PY) -m backendlab lab --port $(LAB_PORT) --workspace $(WORKSPACE)

refresh: install
	@[ -n "$(NB)" ] || { echo "usage: make refresh NB=01 (a topic number; NB=labs/01 for the lab alone)"; exit 2; }
	@$(PY) -m backendlab refresh $(NB) --workspace $(WORKSPACE)

progress: install
	@$(PY) -m backendlab progress

browser:
	@[ "$(BACKENDLAB_SKIP_BROWSER)" = 1 ] || scripts/install-browser

test: install browser
	@mkdir -p $(MPLCONFIGDIR) $(IPYTHONDIR) $(JUPYTER_CONFIG_DIR)
	$(PY) -m pytest tests notebooks --nbval -p no:cacheprovider -n $(TEST_WORKERS) $(if $(TOPIC),--topic $(TOPIC))

# The same, three times in a row, with one core kept busy by another program, as on a learner's
# laptop: every timing the suite asserts must hold there too.
test-busy: install browser
	@scripts/test-busy $(MAKE) test $(if $(TOPIC),TOPIC=$(TOPIC))

services:
	docker compose up -d --wait
	cp services.env backendlab.env
	@echo "Real services are up; backendlab.env points the suite at them (make services-down to undo)."

services-down:
	docker compose down
	rm -f backendlab.env

labs: install
	$(PY) -m backendlab labs

doctor: install
	$(PY) -m backendlab doctor

bench: install
	$(PY) -m backendlab bench ratelimit

clean:
	rm -rf $(VENV) .cache
