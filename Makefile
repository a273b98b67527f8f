# Warden — the commands a developer and CI use. Every target creates the virtualenv if missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo protos bench lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make test: the whole suite (unit, property, integration on loopback, PostgreSQL)
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -q

## make demo: the most complete end-to-end flow that exists, narrated
demo: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash deploy/demo/run.sh

## make protos: regenerate protos/warden/v1/*_pb2*.py and .pyi from the .proto files
protos: $(STAMP)
	$(PY) -m protos.generate

# Each benchmark runs Warden and its peer on the same data in one run and prints the ratio.
# BENCH_ARGS=--quick gives a short run of every one.
BENCHES := fairness drift check_run_10m policy_eval merkle_proofs ledger_ingest agent_decision agent \
           monitoring
BENCH_ARGS ?=

## make bench: every benchmark, Warden beside its peer, ratios printed (~10 min in full)
bench: $(STAMP)
	@for b in $(BENCHES); do echo "== bench/$$b.py $(BENCH_ARGS)"; $(PY) bench/$$b.py $(BENCH_ARGS) || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check trust protos agent hub tests bench deploy
	$(VENV)/bin/mypy trust hub agent

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
