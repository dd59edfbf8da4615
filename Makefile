# The two commands of the README:
#   make demo   - install, render a synthetic intersection, run the four services, open the review page
#   make test   - install (Python packages and the Debian servers the tests start), run the tests
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
ARGS ?=
PYTEST_ARGS ?=
# the tests run in parallel groups (tests/conftest.py, docs/testing.md); TEST_WORKERS=0: one process
TEST_WORKERS ?= 4

.PHONY: demo test install system-deps

# setuptools tells every editable install to beware of folders named like the package; here the
# folder stopline/ is the package (pyproject.toml's package-dir), so that notice is filtered out
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/stopline demo $(ARGS)

system-deps:
	bash scripts/system-deps.sh

test: $(STAMP) system-deps
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)
