#!/usr/bin/env bash
# Structures for compositions from known ones (CSPML-style template prediction): `xtal
# train-templates` learns from the embedded Materials Project structures which compositions share
# a structure, then `xtal predict-structure` proposes candidate CIFs for new formulas, and the
# reverse query lists compositions that would take a given structure.
#
# Usage: examples/predict_structures.sh [OUTDIR]      (xtal on PATH, e.g. .venv/bin)
#   full: all 2,500 embedded structures, 100 trees, 40 epochs: about 1.5 minutes on 2 cores
#   QUICK=1: the first 800 structures, 30 trees, 10 epochs: about 30 s
set -euo pipefail
OUT=${1:-predict-structures}
JOBS=${JOBS:-2}
mkdir -p "$OUT"
if [[ -n "${QUICK:-}" ]]; then
  TRAIN=(--limit 800 --trees 30 --epochs 10)
else
  TRAIN=()
fi
xtal train-templates --builtin mp-sample "${TRAIN[@]}" -j "$JOBS" -q -o "$OUT/templates" --resume
xtal predict-structure "$OUT/templates" KBr LiCoS2 -k 5 --ranker both -o "$OUT/cifs" \
  --format json > "$OUT/candidates.json"
# which compositions of the library would take the first candidate's structure?
FIRST=$(ls "$OUT"/cifs/KBr_01_*.cif)
xtal predict-structure "$OUT/templates" --structure "$FIRST" -k 5 --format csv > "$OUT/reverse.csv"
