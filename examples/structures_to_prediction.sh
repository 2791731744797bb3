#!/usr/bin/env bash
# From crystal structures to a symmetry prediction for a measured scan, with the xtal CLI:
#   simulate (embedded Materials Project structures, augmented profiles)
#   -> featurize (peak positions picked in the profiles, as in a measured scan)
#   -> train-symmetry (extremely randomised trees)
#   -> predict-symmetry on the bundled lab scan of Y2O3 (cubic, Ia-3 = 206).
#
# Usage:  examples/structures_to_prediction.sh [OUTDIR]          (default OUTDIR: xtal-example)
#         QUICK=1 examples/structures_to_prediction.sh OUTDIR    (200 structures, 50 trees)
#         JOBS=4 ... to use 4 processes (default 2)
# Time on 2 cores: about 20 s with QUICK=1; about 2 minutes for the full 2,500 structures.
# Outputs in OUTDIR: patterns.h5, features.h5, symmetry.h5 (+ .metrics.json), prediction.json.
set -euo pipefail

out=${1:-xtal-example}
jobs=${JOBS:-2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
scan="$(cd "$here/.." && pwd)/xtal_cli/data/examples/Y2O3/Y2O3.xy"
if [[ "${QUICK:-0}" != 0 ]]; then
    limit=(--limit 200)
    trees=(--trees 50)
else
    limit=()
    trees=()
fi
mkdir -p "$out"

xtal simulate --builtin mp-sample "${limit[@]}" --wavelength CuKa1 --augment --seed 0 \
    -j "$jobs" -q -o "$out/patterns.h5"
xtal featurize "$out/patterns.h5" --source profile --lattices -j "$jobs" -q \
    -o "$out/features.h5"
xtal train-symmetry "$out/features.h5" "${trees[@]}" --seed 0 -j "$jobs" -q \
    -o "$out/symmetry.h5"
xtal predict-symmetry "$out/symmetry.h5" "$scan" --wavelength CuKa --top 5 --format json \
    | tee "$out/prediction.json"
echo "wrote $out/prediction.json (Y2O3 is cubic, Ia-3 = 206)" >&2
