# Two commands for a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TUTORIALS_STAMP := $(VENV)/.tutorials-stamp

.PHONY: install demo test test-slow lint format bench tutorials browser clean

install: $(STAMP)

# Reinstall only when the project's dependency files change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,all]'
	# tidecv (the TIDE authors' package) is a test oracle only; its own requirements would
	# replace opencv-python-headless with the GUI build, so it comes without them.
	$(PY) -m pip install --quiet --no-deps -c constraints.txt tidecv seaborn appdirs
	touch $(STAMP)

# Debian's Chromium, for the test that drives frcnn serve's page (skipped without it).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)

demo: $(STAMP)
	$(PY) -m frcnn demo

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks docs/tutorials docs/tools
	$(PY) -m ruff format --check src tests benchmarks docs/tutorials docs/tools

format: $(STAMP)
	$(PY) -m ruff format src tests benchmarks docs/tutorials docs/tools
	$(PY) -m ruff check --fix src tests benchmarks docs/tutorials docs/tools

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
