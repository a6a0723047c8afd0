# One command surface for people and CI alike. Every target runs from the project's own virtual
# environment (.venv), made from $(PYTHON) and filled with exactly the lock: nothing is installed into
# the system's interpreter.
PYTHON ?= python3
VENV ?= .venv
RUNTIME ?= /opt/e2bq/runtime
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := .make
PY := $(VENV)/bin/python
LOCK := requirements/dev.txt
LOWEST_LOCK := requirements/lowest.txt
LOWEST_VENV ?= .venv-lowest
RUNTIME_LOCK := e2bq/sandboxd/runtime-requirements.txt
SYSTEM_PACKAGES := redis-server bubblewrap slirp4netns iptables iproute2 e2fsprogs util-linux python3 python3-venv python3-seccomp procps mmdebstrap \
	nodejs default-jdk-headless r-base-core r-cran-irkernel
# uv resolves against PyPI only, for every platform and Python 3.11+, and records hashes, no URLs.
COMPILE := $(VENV)/bin/uv pip compile --quiet --generate-hashes --universal --python-version 3.11

.PHONY: install system venv templates lock lint typecheck test test-fast test-lowest bench bench-check profile demo doctor clean

install: $(STAMP)/system $(STAMP)/python $(STAMP)/runtime templates

system: $(STAMP)/system
venv: $(STAMP)/python

$(STAMP)/system:
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES)
	# Debian's nodejs comes without npm; NodeSource's has it built in and conflicts with Debian's npm
	command -v npm >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
	@mkdir -p $(STAMP) && touch $@

# A new lock makes a new environment, so it holds exactly what the lock says.
$(STAMP)/python: $(LOCK) pyproject.toml | $(STAMP)/system
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	@mkdir -p $(STAMP) && touch $@

# RUNTIME_FLAGS=--upgrade builds it anew even when it was built from this very lock (CI does).
RUNTIME_FLAGS ?=
$(STAMP)/runtime: $(RUNTIME_LOCK) e2bq/sandboxd/runtime-npm/package-lock.json e2bq/sandboxd/jail/seccomp_policy.py $(STAMP)/python
	$(SUDO) $(PY) -m e2bq.cli sandboxd install-runtime --target $(RUNTIME) $(RUNTIME_FLAGS)
	@mkdir -p $(STAMP) && touch $@

# The templates sandboxes run on by default (E2BQ_SANDBOXD_TEMPLATES_DIR, /var/lib/e2bq/templates):
# code-interpreter-v1 (the code interpreter SDK's) and base (the plain SDK's). Built once from
# Debian's archive, PyPI and npm (a few minutes, 2 GiB); an unchanged definition is reused at once.
templates: $(STAMP)/python
	$(SUDO) $(PY) -m e2bq.cli template build base >/dev/null
	$(SUDO) $(PY) -m e2bq.cli template build code-interpreter-v1 >/dev/null

# The lower bounds pyproject.toml claims: every direct dependency at the oldest release its range
# allows, in an environment of its own, for `make test-lowest`.
$(STAMP)/lowest: $(LOWEST_LOCK) pyproject.toml | $(STAMP)/system
	rm -rf $(LOWEST_VENV)
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r $(LOWEST_LOCK)
	$(LOWEST_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(LOWEST_VENV)/bin/python -m pip check
	@mkdir -p $(STAMP) && touch $@

# Refresh the locks to the newest releases the ranges allow (needs PyPI). UPGRADE= keeps the pins
# that still satisfy the ranges and only adds what is new.
UPGRADE ?= --upgrade
lock: $(STAMP)/python
	$(COMPILE) $(UPGRADE) pyproject.toml requirements/build.in --extra dev --extra frameworks -o $(LOCK)
	$(COMPILE) $(UPGRADE) e2bq/sandboxd/runtime-requirements.in -o $(RUNTIME_LOCK)
	cd e2bq/sandboxd/runtime-npm && npm install --package-lock-only --install-strategy=nested --ignore-scripts --no-audit --no-fund
	$(COMPILE) pyproject.toml requirements/build.in -c $(LOCK) -o requirements/main.txt
	$(COMPILE) --resolution lowest-direct pyproject.toml requirements/build.in --extra dev -o $(LOWEST_LOCK)

lint: $(STAMP)/python
	$(PY) -m ruff check .
	$(PY) requirements/check_lock.py
	PYTHONPATH=. $(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)/python
	$(PY) -m mypy

doctor: install
	$(PY) -m e2bq.cli doctor

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

# The suites that exercise the host side's dependencies (client, queue, workers, sandboxd's HTTP
# front, the SDK) on the oldest releases pyproject.toml allows.
LOWEST_SUITES := tests/unit tests/integration/tasks tests/integration/queue tests/integration/sandboxd
# On these releases (celery/kombu 5.4, redis-py 5.0) Redis sockets of a client that is dropped are
# closed by the garbage collector, with a ResourceWarning; today's releases close them themselves.
# That warning alone is not an error here; every other warning still is.
test-lowest: $(STAMP)/lowest $(STAMP)/runtime templates
	$(LOWEST_VENV)/bin/python -m pytest -W "ignore::pytest.PytestUnraisableExceptionWarning" $(LOWEST_SUITES)

# The hot path's figures are gathered in BENCH_FIGURES and set against their targets at the end.
BENCH_FIGURES ?= $(or $(TMPDIR),/tmp)/e2bq-bench.json
bench: install
	rm -f $(BENCH_FIGURES)
	$(PY) bench/layers_bench.py --json $(BENCH_FIGURES)
	$(PY) bench/sandboxd_bench.py --json $(BENCH_FIGURES)
	$(PY) bench/pause_bench.py --json $(BENCH_FIGURES)
	$(PY) bench/fork_bench.py --json $(BENCH_FIGURES)
	$(PY) bench/envd_fs_bench.py
	$(PY) bench/volumes_bench.py
	$(PY) bench/template_bench.py
	$(PY) bench/queue_bench.py --json $(BENCH_FIGURES)
	$(PY) bench/nodes_bench.py
	$(PY) bench/map_bench.py
	$(PY) bench/notify_bench.py
	$(PY) bench/output_bench.py
	$(PY) bench/frameworks_bench.py
	$(PY) bench/follow_bench.py
	$(PY) bench/pause_tools_bench.py
	$(PY) bench/failover_bench.py
	$(PY) bench/soak.py
	$(PY) bench/targets.py $(BENCH_FIGURES)

# The short benchmarks against the hot path's targets (bench/targets.py); exits 1 when one is missed.
# Not part of `make test`: timings move with the machine's load. Run it before and after a change.
bench-check: install
	$(PY) bench/check.py

# py-spy flame graphs of the worker, sandboxd, the agent, the kernel and a client, under PROFILE_DIR.
PROFILE_DIR ?= $(or $(TMPDIR),/tmp)/e2bq-profile
profile: install
	$(PY) bench/profile.py --out $(PROFILE_DIR)

demo: install
	$(PY) -m e2bq.cli doctor
	$(PY) -m e2bq.cli up -- $(PY) examples/example_usage.py

clean:
	rm -rf $(STAMP) $(VENV) $(LOWEST_VENV) .pytest_cache .mypy_cache .ruff_cache
