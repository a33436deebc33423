# The README's two commands: `make demo` and `make test`. Both build .venv
# from pyproject.toml (+ constraints.txt) when it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared/data
DEMO_ROOT ?= demo-data
# A short budget (150 steps = 0.7 epoch) so that 12 runs take ~5 minutes on 2 cores.
DEMO_RUN = --ratio all --seeds 1 --steps 150 --eval-every 75 --profile cpu --device cpu \
	--data-dir $(DEMO_ROOT) --results $(DEMO_ROOT)/results

.PHONY: venv demo lint test test-fast bench dist clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@if [ -d "$(SHARED)/mnist" ]; then src="--source-dir $(SHARED)/mnist"; else src=""; fi; \
	$(BIN)/biasbench generate cmnist --ratio all --out $(DEMO_ROOT) $$src
	$(BIN)/python -c "from datasets import load_dataset; print(load_dataset('$(DEMO_ROOT)/cmnist', '1pct'))"
	$(BIN)/biasbench run --method erm $(DEMO_RUN)
	$(BIN)/biasbench run --method reweighted_erm $(DEMO_RUN)
	$(BIN)/biasbench run --method rest $(DEMO_RUN)
	$(BIN)/biasbench leaderboard --results $(DEMO_ROOT)/results --out $(DEMO_ROOT)/leaderboard

# ruff checks (pyflakes, pycodestyle; settings in pyproject.toml), never reformats.
lint: $(STAMP)
	$(BIN)/ruff check .

# Both suites run on every core (pytest-xdist; tests keep one torch thread each).
test: lint
	$(BIN)/python -m pytest -q -n auto

# The wheel and sdist in dist/ (tests/test_wheel.py, part of `make test`, installs the wheel into a fresh venv).
dist: $(STAMP)
	$(BIN)/python -m build --no-isolation --outdir dist

# The suite without its slow tests (real data, kill-and-resume, the Ray and SLURM launchers): under 2 minutes.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow and not ray and not slurm"

# Every CPU benchmark, each writing benchmarks/results/*.json (commit, torch, threads, load). Pause other
# work on the machine first: the numbers are only as quiet as the cores. benchmarks/device/ needs a GPU.
bench: $(STAMP)
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/train_throughput.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/train_throughput.py --mlp --steps 400 --warmup 20 --methods lff,disent
	$(BIN)/python benchmarks/sparse_overhead.py
	$(BIN)/python benchmarks/cifar10c.py

clean:
	rm -rf $(VENV) $(DEMO_ROOT) build dist *.egg-info
