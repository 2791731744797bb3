# xtal: the two set-up commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := build/demo
JOBS   ?= 2

.PHONY: all venv demo test lint bench clean

all: test

# The environment: created and installed from pyproject.toml only.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The main pipeline on the embedded data: simulate -> featurize -> train -> predict a measured scan.
demo: $(STAMP)
	@mkdir -p $(DEMO)
	$(BIN)/xtal simulate --builtin mp-sample --wavelength CuKa1 --augment --seed 0 -j $(JOBS) -o $(DEMO)/patterns.h5 --resume
	$(BIN)/xtal featurize $(DEMO)/patterns.h5 --source profile --lattices -j $(JOBS) -o $(DEMO)/features.h5
	$(BIN)/xtal train-symmetry $(DEMO)/features.h5 --seed 0 -j $(JOBS) -o $(DEMO)/symmetry.h5 --report $(DEMO)/report
	$(BIN)/xtal predict-symmetry $(DEMO)/symmetry.h5 xtal_cli/data/examples/Y2O3/Y2O3.xy --wavelength CuKa --top 5
	@echo "(Y2O3, a measured lab scan, is cubic Ia-3 = 206. The 2,500 embedded structures are enough for the crystal system, not for the space group: see docs/predict-symmetry.md.)"

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(JOBS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check xtal_cli tests bench
	$(BIN)/ruff format --check xtal_cli tests bench

# Long benchmarks: each script prints JSON and writes bench/results/<name>.json.
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf build $(VENV)
