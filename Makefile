# Two commands matter (README): `make run` (the operator on the local default: a local API server and
# the simulated cloud) and `make test` (everything CI runs). Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv binaries lint test test-fast run crd clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Builds kube-apiserver, kube-controller-manager, etcd and helm from pinned Go modules (cached).
binaries:
	bash tools/build-controlplane.sh >/dev/null

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: venv binaries lint
	$(BIN)/pytest

# Unit tests only: no control plane, no build.
test-fast: venv
	$(BIN)/pytest tests/unit tests/client tests/simulator

run: venv binaries
	$(BIN)/python -m devstack

crd: venv
	$(BIN)/rocketmq-operator crd > crds/rocketmqinstances.dms.rocketmq-operator.io.yaml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
