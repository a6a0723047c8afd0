# One command surface for people and CI alike.
PYTHON ?= python3
RUNTIME ?= /opt/e2bq/runtime
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := .make
SYSTEM_PACKAGES := redis-server bubblewrap slirp4netns iptables iproute2 e2fsprogs util-linux python3 python3-venv python3-seccomp procps

.PHONY: install system lint typecheck test test-fast bench demo clean

install: $(STAMP)/system $(STAMP)/python $(STAMP)/runtime

$(STAMP)/system:
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES)
	@mkdir -p $(STAMP) && touch $@

$(STAMP)/python: pyproject.toml
	$(PYTHON) -m pip install -q --disable-pip-version-check -e ".[dev]"
	@mkdir -p $(STAMP) && touch $@

$(STAMP)/runtime: e2bq/sandboxd/runtime-requirements.txt e2bq/sandboxd/seccomp_policy.py $(STAMP)/python
	$(SUDO) $(PYTHON) -m e2bq.cli sandboxd install-runtime --target $(RUNTIME)
	@mkdir -p $(STAMP) && touch $@

lint: install
	$(PYTHON) -m ruff check .

typecheck: install
	$(PYTHON) -m mypy

test: install
	$(PYTHON) -m pytest

test-fast: install
	$(PYTHON) -m pytest -m "not slow"

bench: install
	$(PYTHON) bench/sandboxd_bench.py
	$(PYTHON) bench/queue_bench.py
	$(PYTHON) bench/soak.py

demo: install
	$(PYTHON) -m e2bq.cli up -- $(PYTHON) examples/example_usage.py

clean:
	rm -rf $(STAMP) .pytest_cache .mypy_cache .ruff_cache
