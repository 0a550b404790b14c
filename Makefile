# The verbs people type. Every target bootstraps .venv itself (once; a second
# run reuses it until pyproject.toml or requirements.lock change).
#
# Python: PYTHON if given (a name or a path; a pyenv shim that does not run is
# resolved through pyenv), else the first supported interpreter on PATH; see
# scripts/find-python. The default interpreter's venv is .venv, another
# version's is .venv-X.Y, so `make test PYTHON=python3.13` rebuilds neither.
PYTHON  ?=
PY      := $(shell scripts/find-python $(PYTHON) 2>/dev/null)
PY_ERR   = $(shell scripts/find-python $(PYTHON) 2>&1 >/dev/null)
PY_VER  := $(if $(PY),$(shell "$(PY)" -c 'import sys; print("%d.%d" % sys.version_info[:2])'))
DEF_VER := $(if $(PYTHON),$(shell "$$(scripts/find-python 2>/dev/null || echo false)" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null),$(PY_VER))
VENV    := $(if $(filter-out $(DEF_VER),$(PY_VER)),.venv-$(PY_VER),.venv)
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(PY_VER)
PROBES  := $(BIN)/probes

N      ?= 5
LABEL  ?= manual
TARGET ?= local

.PHONY: help venv lock test demo fixtures sim probe-local probe-prod report bench bench-quick load load-distributed clean

help:
	@echo "make demo         local (fast) vs prod (stale-32) on two embedded simulators, full report"
	@echo "make test         the test suite (PYTHON=python3.13: on another interpreter, in .venv-3.13)"
	@echo "make lock         regenerate requirements.lock for Python 3.11-3.13 (UPGRADE=1: newest allowed pins)"
	@echo "make fixtures     generate audio fixtures and fixtures/manifest.json"
	@echo "make sim          run the embedded simulator (SCENARIO=fast PORT=8765 SCALE=1)"
	@echo "make probe-local  probe targets.local (starts its simulator if nothing answers), N=5"
	@echo "make probe-prod   deploy check on targets.prod: LABEL=before-deploy, then LABEL=after-deploy (compares; exit 1 on a regression or broken SLO)"
	@echo "make canary       one canary run: TARGET=prod (docs/canary.md); make trend SINCE=30d: trend.html from the history"
	@echo "make report RUNS='reports/runs/A reports/runs/B'  render a report"
	@echo "make load         Locust load run: TARGET=local USERS=10 MODEL=closed|open|ramp RATE=0 DURATION=60s"
	@echo "make load-distributed WORKERS=2  the same with a Locust master and workers on loopback"
	@echo "make bench        benchmarks (figures go into BENCHMARKS.md)"
	@echo "make bench-quick  the probe engine at 1,000 and 2,000 flows beside BASE (default HEAD~1) and bare aiohttp, < 2 min"
	@echo "make clean        remove generated fixtures and reports"

venv: $(STAMP)

# The stamp names the Python version: a venv another version left here is rebuilt (--clear).
$(STAMP): pyproject.toml requirements.lock
	$(if $(PY),,$(error $(PY_ERR)))
	@$(BIN)/python -c 'import sys; sys.exit("%d.%d" % sys.version_info[:2] != "$(PY_VER)")' 2>/dev/null \
	  || { echo "$(PY) -m venv --clear $(VENV)"; "$(PY)" -m venv --clear $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# requirements.lock: one universal lock for every supported Python (environment
# markers, e.g. audioop-lts on 3.13+), made by uv from pyproject.toml, installed
# by pip. Existing pins are kept unless UPGRADE=1. Then a check that every pin
# has a wheel for each supported CPython on $(LOCK_PLATFORM).
SUPPORTED     := $(shell scripts/find-python --supported)
UV_VERSION    := 0.13.9
TOOLS         := .venv-tools
UV_STAMP      := $(TOOLS)/.uv-$(UV_VERSION)
LOCK_PLATFORM := x86_64-manylinux_2_28

$(UV_STAMP):
	$(if $(PY),,$(error $(PY_ERR)))
	"$(PY)" -m venv --clear $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@touch $@

lock: $(UV_STAMP)
	$(TOOLS)/bin/uv pip compile --quiet pyproject.toml --extra dev --universal \
	  --python-version $(firstword $(SUPPORTED)) $(if $(UPGRADE),--upgrade) \
	  --custom-compile-command "make lock" -o requirements.lock
	@for v in $(SUPPORTED); do \
	  $(TOOLS)/bin/uv pip install --quiet --dry-run --no-deps --only-binary :all: --target $(TOOLS)/wheel-check \
	    --python-version $$v --python-platform $(LOCK_PLATFORM) -r requirements.lock || exit 1; \
	  echo "requirements.lock: a wheel for every pin on CPython $$v, $(LOCK_PLATFORM)"; \
	done

fixtures: $(STAMP)
	$(PROBES) fixtures

fixtures/manifest.json: | $(STAMP)
	$(PROBES) fixtures

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP) fixtures/manifest.json
	$(BIN)/python -m probes.demo

SCENARIO ?= fast
PORT     ?= 8765
SCALE    ?= 1
sim: $(STAMP)
	$(PROBES) sim --scenario $(SCENARIO) --port $(PORT) --time-scale $(SCALE)

probe-local: $(STAMP) fixtures/manifest.json
	$(BIN)/python -m probes.probe.local --target local -n $(N) --label $(LABEL)

# The deploy check (README "Deploy check"): 3 probes one after the other; LABEL=after-deploy compares
# itself with the newest run labelled before-deploy (BASELINE=... for another) and fails on a regression.
PROD_N   ?= 3
BASELINE ?= $(if $(filter after-deploy,$(LABEL)),latest:before-deploy)
probe-prod: $(STAMP) fixtures/manifest.json
	$(PROBES) run --target prod -n $(PROD_N) --concurrency 1 --label $(LABEL) $(if $(BASELINE),--baseline $(BASELINE))

RUNS ?=
report: $(STAMP)
	$(PROBES) report $(RUNS)

bench: $(STAMP) fixtures/manifest.json
	$(BIN)/python bench/run_all.py $(BENCH)

# The guard against the next P2 regression: quote its last lines in the closing note of a performance change.
BASE ?= HEAD~1
bench-quick: $(STAMP) fixtures/manifest.json
	$(BIN)/python bench/bench_probe.py --steps 1000,2000 --seconds 12 $(if $(BASE),--against $(BASE))

USERS    ?= 10
RATE     ?= 0
DURATION ?= 60s
MODEL    ?= closed
WORKERS  ?= 2

load: $(STAMP) fixtures/manifest.json
	$(PROBES) load --target $(TARGET) --users $(USERS) --rate $(RATE) --duration $(DURATION) --model $(MODEL)

load-distributed: $(STAMP) fixtures/manifest.json
	$(PROBES) load --target $(TARGET) --users $(USERS) --rate $(RATE) --duration $(DURATION) --model $(MODEL) --workers $(WORKERS)

clean:
	rm -rf fixtures/*.m4a fixtures/*.wav fixtures/*.mp3 fixtures/*.webm fixtures/manifest.json reports/runs reports/demo reports/load

# --- canary (docs/canary.md) ---------------------------------------------------------------------------
# make canary TARGET=prod [CANARY_ARGS='--jitter 30 --keep 30d']   one canary run; exit 0 healthy, 1 SLO broken, 3 unreachable
# make trend [SINCE=30d]                                             reports/trend/trend.html from the history
# The history, webhook and Pushgateway come from PROBES_HISTORY_URL, PROBES_WEBHOOK_URL, PROBES_PUSHGATEWAY_URL.
CANARY_ARGS ?=
SINCE       ?= 30d
.PHONY: canary trend

canary: $(STAMP) fixtures/manifest.json
	$(PROBES) canary --target $(TARGET) $(CANARY_ARGS)

trend: $(STAMP)
	$(PROBES) trend --since $(SINCE)
