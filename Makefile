# tunewell: two commands. `make demo` installs everything and runs the pipeline end to end on
# generated people; `make test` runs the tests. Both work from a fresh clone with only Python.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
STAMP  := $(VENV)/.installed
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120

.PHONY: install demo test test-fast lint format bench bench-quick soak fuzz clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(UV) pip install --python $(BIN)/python --compile-bytecode -q -e '.[dev,scale]'
	bash .ci/typetree
	touch $(STAMP)

demo: install
	$(BIN)/tunewell demo

test: install
	$(BIN)/pytest -n 2 --dist loadgroup

test-fast: install
	$(BIN)/pytest -n 2 --dist loadgroup -m "not slow and not realdata"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	.ci/typecheck

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The issue's size is 100 people x 365 days (~8 min to generate, ~7 min to run both builds);
# `make bench PEOPLE=5` for a quick look. The results table in bench/README.md is rewritten.
PEOPLE ?= 100
bench: install
	$(BIN)/python bench/features_bench.py --people $(PEOPLE) --days 365 --rr-minutes 30 \
		--keep-data bench/out/people
	$(BIN)/python bench/scaling_bench.py backfill --data bench/out/people --work bench/out/backfill \
		--people 50 100 --workers 2 --repeats 3
	$(BIN)/python bench/scaling_bench.py incremental --work bench/out/incremental \
		--history 365 730 --repeats 3
	$(BIN)/python bench/apple_bench.py --mb 250 1000 --repeats 3
	$(BIN)/python bench/fit_bench.py --days 365 --repeats 3
	$(BIN)/python bench/realdata_pass.py

# Quick sizes: equal outputs only, no times worth quoting.
bench-quick: install
	$(BIN)/python bench/features_bench.py --people 2 --days 60 --rr-minutes 10 --no-readme
	$(BIN)/python bench/apple_bench.py --quick
	$(BIN)/python bench/scaling_bench.py --quick

# Reliability: SIGKILL the nightly path at POINTS crash points (forced + random) and compare the
# lake with a clean run after each re-run (~1 min a point on a busy 2-core machine).
POINTS ?= 24
soak: install
	$(BIN)/python tests/soak/crash_soak.py --points $(POINTS)

# Fuzz the FIT and Apple XML readers for FUZZ_SECONDS each from the seed corpus in tests/fuzz/.
FUZZ_SECONDS ?= 60
fuzz: install
	$(BIN)/python tests/fuzz/fuzz_readers.py --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) data/lake data/inbox data/demo .pytest_cache .ruff_cache
