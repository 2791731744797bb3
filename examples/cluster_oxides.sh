#!/usr/bin/env bash
# Property-dependent clusters of the embedded Materials Project oxides: `xtal describe` computes
# matminer descriptors (composition, density, symmetry, CrystalNN local environments), then
# `xtal cluster` groups the oxides by the paths a random forest on the band gap takes
# (Sato et al. 2024) and says what distinguishes each group; clusters.json, report.json, PNGs.
#
# Usage: examples/cluster_oxides.sh [OUTDIR]      (xtal on PATH, e.g. .venv/bin)
#   full: all 2,500 embedded structures, full preset, 20 clusters: about 3 minutes on 2 cores
#   QUICK=1: the same structures with the fast preset (no CrystalNN), 4 clusters: about 40 s
#   (the embedded set holds 251 oxides with a band gap)
set -euo pipefail
OUT=${1:-cluster-oxides}
JOBS=${JOBS:-2}
mkdir -p "$OUT"
if [[ -n "${QUICK:-}" ]]; then
  DESCRIBE=(--preset fast); K=4
else
  DESCRIBE=(--preset full); K=20
fi
xtal describe --builtin mp-sample "${DESCRIBE[@]}" -j "$JOBS" -q -o "$OUT/descriptors.h5" --resume
xtal cluster "$OUT/descriptors.h5" --property band_gap --select "formula~O" --clusters "$K" \
  -j "$JOBS" -o "$OUT/clusters" --format json > "$OUT/clusters.json"
# the same clusters as a table: xtal cluster ... --format table (the default)
