# Thin entry points; CI calls the same targets (.ci/run → make test).
# Every target installs what it needs on a fresh machine and is quick when nothing changed.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export UV_CACHE_DIR ?= $(CURDIR)/.cache/uv
UV_VERSION := 0.13.9
UV := .cache/tools/bin/uv
PY := .venv/bin/python
APT_PACKAGES := docker-registry apache2-utils skopeo

.PHONY: help run test lint unit integration bench world deps system-deps kube-bin fmt

help:
	@echo "make run    start the local world and run a demo rotation"
	@echo "make test   lint, type-check and run every test (unit and integration)"
	@echo "make lint   ruff, ruff format --check, mypy --strict, import-linter"
	@echo "make bench  benchmark rotate --now against its floor and kubectl"

$(UV):
	python3 -m venv .cache/tools
	.cache/tools/bin/pip install -q "uv==$(UV_VERSION)"

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --quiet --frozen --all-extras --python python3.11
	touch $@

deps: .venv/.synced

# The registry, htpasswd and skopeo come from Debian; installed only when one is missing.
system-deps:
	@missing=""; for c in docker-registry htpasswd skopeo; do command -v $$c >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

# kube-apiserver, kube-controller-manager and etcd, built once into .cache/kube.
kube-bin:
	@bash hack/build-kube.sh >/dev/null

world: deps system-deps kube-bin

fmt: deps
	.venv/bin/ruff format rotator tests bench hack
	.venv/bin/ruff check --fix rotator tests bench hack

lint: deps
	.venv/bin/ruff check rotator tests bench hack
	.venv/bin/ruff format --check rotator tests bench hack
	.venv/bin/mypy
	.venv/bin/lint-imports

test: lint world
	$(PY) -m pytest

unit: deps
	$(PY) -m pytest -m "not integration"

run: world
	$(PY) -m hack.demo

bench: world
	$(PY) -m bench.rotate
