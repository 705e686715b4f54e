# The two commands a newcomer runs: `make run` and `make test`. Both install what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps run cluster test test-unit lint bench clean

install: $(STAMP)

# System packages first: `python3 -m venv` itself needs Debian's python3-venv.
system-deps:
	@scripts/install-system-deps.sh

$(STAMP): pyproject.toml | system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/ivr prompts build
	$(BIN)/ivr serve

# Three engine nodes behind Kamailio with Redis and PostgreSQL, on loopback (docs/CLUSTER.md); Ctrl-C stops it.
cluster: install
	scripts/cluster.sh

# Pytest's exit code 5 ("no tests collected") is a failure here, as every other non-zero code is.
# IVR_REQUIRE_PEERS=1: a skipped test (a peer program not found) fails the run, with its reason (-rs).
# Four workers, one test file each at a time: live-call tests mostly wait on audio (one such file uses 10-40 %
# of the two cores), so they overlap well. tests/conftest.py hands the files out longest first (measured
# seconds in tests/file_seconds.json; tests/integration/cluster/ as one piece): xdist's own order, by number of
# tests, left the one-to-three-minute live-call files for last and the run ended on one busy worker.
# Clean clones here, other work on the machine: 12 min 43 s, the four workers ending within 3 s of each other
# (was 12-14 min, one worker last); 6 workers: 12 min 13 s with the CPU saturated (every live test ~25 % slower,
# more at risk), so 4 stays. CI allows 15 minutes.
TEST_WORKERS ?= 4
# Engines the tests start run one process each (IVR_WORKERS, the `workers` key), to keep the run's time;
# `make test IVR_WORKERS=null` runs every test engine as a node of one worker per core (docs/OPERATIONS.md,
# "Workers", says which tests still expect one process).
IVR_WORKERS ?= 1
# PYTHONDONTWRITEBYTECODE is cleared for the run: with it set (as on these machines) every xdist worker compiles
# the test modules again (~10 s CPU each against ~3 s) and every engine a test starts compiles the engine again.
test: install
	PYTHONDONTWRITEBYTECODE= IVR_WORKERS=$(IVR_WORKERS) IVR_REQUIRE_PEERS=1 $(BIN)/python -m pytest -q -rs -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile \
	  --durations=15 tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

test-unit: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

lint: install
	$(BIN)/ruff check ivr tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache build *.egg-info
