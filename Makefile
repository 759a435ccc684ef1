# Two commands for a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TUTORIALS_STAMP := $(VENV)/.tutorials-stamp

.PHONY: install demo test test-slow lint format bench tutorials clean

install: $(STAMP)

# Reinstall only when the project's dependency files change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,all]'
	# tidecv (the TIDE authors' package) is a test oracle only; its own requirements would
	# replace opencv-python-headless with the GUI build, so it comes without them.
	$(PY) -m pip install --quiet --no-deps -c constraints.txt tidecv seaborn appdirs
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m frcnn demo

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks docs/tutorials
	$(PY) -m ruff format --check src tests benchmarks docs/tutorials

format: $(STAMP)
	$(PY) -m ruff format src tests benchmarks docs/tutorials
	$(PY) -m ruff check --fix src tests benchmarks docs/tutorials

test: lint
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

bench: $(STAMP)
	$(PY) benchmarks/vs_torchvision.py

# The tutorials' own dependencies (jupytext, nbclient, a kernel, nbconvert, ipywidgets),
# then every tutorial executed; a failing cell fails the target.
$(TUTORIALS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[tutorials]'
	touch $(TUTORIALS_STAMP)

tutorials: $(TUTORIALS_STAMP)
	$(PY) docs/tutorials/build.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
