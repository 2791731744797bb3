# xtal: the two set-up commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := build/demo
JOBS   ?= 2

.PHONY: all venv demo test lint bench model clean

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
	$(BIN)/xtal predict-symmetry xtal_cli/data/examples/Y2O3/Y2O3.xy --wavelength CuKa --top 5
	@echo "(the same scan with the built-in model: a profile CNN trained on augmented patterns of 80 % of the formulas of 27,248 Materials Project structures; docs/measured-data.md)"

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(JOBS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check xtal_cli tests bench
	$(BIN)/ruff format --check xtal_cli tests bench

# Long benchmarks: each script prints JSON and writes bench/results/<name>.json.
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# The built-in symmetry model (xtal_cli/data/models/symmetry-cnn.h5, docs/measured-data.md):
# augmented profiles of all shared Materials Project structures, one copy per seed in
# MODEL_SEEDS, then the profile CNN (whole formulas held out, 20 %). Needs ../shared/data.
# Each copy is its own target (made once, resumed if interrupted); training resumes too.
MODEL_DATA   ?= ../shared/data/mp_structures.csv.gz
MODEL_WORK   ?= build/model
MODEL_SEEDS  ?= 0 1 2 3 4 5 6 7
MODEL_EPOCHS ?= 10
MODEL_FILES  := $(foreach s,$(MODEL_SEEDS),$(MODEL_WORK)/aug_s$(s).h5)

$(MODEL_WORK)/aug_s%.h5: | $(STAMP)
	@mkdir -p $(MODEL_WORK)
	$(BIN)/xtal simulate $(MODEL_DATA) --augment --seed $* --resume -j $(JOBS) -q -o $@

model: $(STAMP) $(MODEL_FILES)
	$(BIN)/xtal train-symmetry $(MODEL_FILES) --model cnn --epochs $(MODEL_EPOCHS) --seed 0 \
	  -j $(JOBS) --resume -o xtal_cli/data/models/symmetry-cnn.h5

clean:
	rm -rf build $(VENV)
