# The two commands a newcomer runs: `make run` and `make test`. Both install what is missing first.
# Debian's own interpreter when there is one: it is what a production host installs with (docs/OPERATIONS.md), and
# it is built with PGO and LTO, so the engine spends ~10 % less CPU a call on it than on a plain source build such
# as pyenv's, which may come first on PATH (bench/RESULTS.md "Debian's python3"). Elsewhere: python3 on PATH.
PYTHON ?= $(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SIP_BUILD := build/sip/ivr/sip/SOURCES.sha256

.PHONY: install system-deps run cluster test test-unit lint bench clean

install: $(STAMP) $(SIP_BUILD)

# System packages first: `python3 -m venv` itself needs Debian's python3-venv.
system-deps:
	@scripts/install-system-deps.sh

$(STAMP): pyproject.toml | system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The SIP layer compiled with mypyc (ivr/sip/compiled.py says which modules and why; ~0.85 of the CPU a call), as a
# wheel ships it, but into build/sip, never beside the sources: `ivr.sip` searches it first only while it was built
# from the sources there now, so an edit runs (as pure Python, with a warning) until the next `make`, which builds it
# again (~45 s on two cores; from scratch, so no module of a deleted source lingers). Without gcc and python3-dev
# (scripts/install-system-deps.sh installs them) setup.py says so and the layer stays pure Python; the suite then
# fails its test that the checkout runs compiled (tests/unit/sip/test_compiled.py), so no run tests what does not
# ship without saying so. IVR_MYPYC=0 keeps it pure on purpose, at build and at run time.
$(SIP_BUILD): $(STAMP) setup.py $(wildcard ivr/sip/*.py)
	rm -rf build/sip build/sip-temp
	$(BIN)/python setup.py --quiet build_ext --build-lib build/sip --build-temp build/sip-temp

run: install
	$(BIN)/ivr prompts build
	$(BIN)/ivr serve

# Three engine nodes behind Kamailio with Redis and PostgreSQL, on loopback (docs/CLUSTER.md); Ctrl-C stops it.
cluster: install
	scripts/cluster.sh

# Pytest's exit code 5 ("no tests collected") is a failure here, as every other non-zero code is.
# IVR_REQUIRE_PEERS=1: a skipped test (a peer program not found) fails the run, with its reason (-rs).
# Five workers, one test file each at a time: live-call tests mostly wait on audio (one such file uses 10-40 %
# of the two cores), so they overlap well. tests/conftest.py hands the files out longest first (measured
# seconds in tests/file_seconds.json; tests/integration/cluster/ as one piece): xdist's own order, by number of
# tests, left the one-to-three-minute live-call files for last and the run ended on one busy worker.
# Clean clones on this 2-core machine, other work on it: 4 workers 10 min 9 s with the CPU 28 % idle (the
# workers ending within 2 s of each other); 6 workers saturated the CPU (every live test ~25 % slower, more at
# risk). CI allows 15 minutes.
TEST_WORKERS ?= 5
# Engines the tests start run one process each (IVR_WORKERS, the `workers` key, whose default is one per core),
# to keep the run's time: `make test IVR_WORKERS=null` runs every test engine as a node of one worker per core
# (measured 14.5-15.5 min with 4 test workers, two engine workers each, load 2-5: slower, so 1 stays here).
IVR_WORKERS ?= 1
# PYTHONDONTWRITEBYTECODE is cleared for the run: with it set (as on these machines) every xdist worker compiles
# the test modules again (~10 s CPU each against ~3 s) and every engine a test starts compiles the engine again.
# Before the workers start, once and side by side (~10 s): the prompt cache, as `make run` builds it (the test
# engines read var/prompt-cache; in a fresh clone the first four, starting together, each rendered all ~190
# prompts), and a collection pass that leaves the test modules and the engine compiled (the workers each
# compiled them all, ~9 s CPU apiece, at the start of every clean-clone run). Neither can fail the run: the tests
# themselves report what is wrong.
test: install
	@PYTHONDONTWRITEBYTECODE= $(BIN)/ivr prompts build --quiet & build=$$!; \
	  PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -p no:cacheprovider --collect-only tests >/dev/null 2>&1; \
	  wait $$build || echo "make test: the prompt cache was not built before the run" >&2
	PYTHONDONTWRITEBYTECODE= IVR_WORKERS=$(IVR_WORKERS) IVR_REQUIRE_PEERS=1 $(BIN)/python -m pytest -q -rs -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile \
	  --durations=15 tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

test-unit: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

lint: install
	$(BIN)/ruff check ivr tests bench setup.py
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache build *.egg-info
