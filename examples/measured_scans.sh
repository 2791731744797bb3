#!/usr/bin/env bash
# Symmetry of measured scans with the built-in model, and training your own profile CNN:
#   predict-symmetry with no model file (the shipped CNN) on the bundled Y2O3 lab scan, the full
#   scan (3-150°) and the same scan cut to 10-65° (a short lab scan): the same answer is expected
#   -> simulate --augment (embedded structures) -> train-symmetry --model cnn -> predict-symmetry.
#
# Usage:  examples/measured_scans.sh [OUTDIR]           (default OUTDIR: xtal-measured)
#         QUICK=1 examples/measured_scans.sh OUTDIR     (300 structures, 1 epoch)
#         JOBS=4 ... to use 4 processes (default 2)
# Time on 2 cores: about 30 s with QUICK=1; about 10 minutes for 2,500 structures, 10 epochs.
# Outputs in OUTDIR: builtin_full.json, builtin_cut.json, aug.h5, cnn.h5 (+ .metrics.json),
# own_model.json.
set -euo pipefail

out=${1:-xtal-measured}
jobs=${JOBS:-2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
scan="$(cd "$here/.." && pwd)/xtal_cli/data/examples/Y2O3/Y2O3.xy"
if [[ "${QUICK:-0}" != 0 ]]; then
    limit=(--limit 300)
    epochs=1
else
    limit=()
    epochs=10
fi
mkdir -p "$out"

# 1. the built-in model: full scan, then the scan a lab would take (10-65°)
xtal predict-symmetry "$scan" --wavelength CuKa --top 3 --format json > "$out/builtin_full.json"
awk '$1 >= 10 && $1 <= 65' "$scan" > "$out/Y2O3_10-65.xy"
xtal predict-symmetry "$out/Y2O3_10-65.xy" --wavelength CuKa --top 3 --format json \
    > "$out/builtin_cut.json"

# 2. your own profile CNN from augmented simulations
xtal simulate --builtin mp-sample "${limit[@]}" --augment --seed 0 -j "$jobs" -q \
    -o "$out/aug.h5"
xtal train-symmetry "$out/aug.h5" --model cnn --epochs "$epochs" --batch-size 64 -j "$jobs" -q \
    -o "$out/cnn.h5"
xtal predict-symmetry "$out/cnn.h5" "$scan" --wavelength CuKa --top 3 --format json \
    > "$out/own_model.json"

python - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for name in ("builtin_full", "builtin_cut", "own_model"):
    rec = json.load(open(f"{out}/{name}.json"))[0]
    print(f"{name:13s} {rec['crystal_system']:12s} p={rec['crystal_system_probability']:.2f}  "
          f"space group {rec['space_group']} ({rec['space_group_symbol']})")
PY
