#!/usr/bin/env bash
# Automatic Rietveld refinement of the bundled Y2O3 lab scan (xtal refine-bbo): Optuna TPE
# searches the refinement settings, each trial is a staged Rietveld refinement on the native
# engine. Writes best.cif, report.json, trials.csv, rietveld.png, history.png, candidates/ and
# summary.json (Rwp, cell, ...) into OUTDIR.
#
# Usage:  examples/refine_y2o3.sh [OUTDIR]          (default OUTDIR: y2o3-bbo; 200 trials, the
#                                                    README's Rwp 5.12 %, about 70 s on 2 cores)
#         QUICK=1 examples/refine_y2o3.sh OUTDIR    (4 trials: about 20 s, Rwp well above 5 %)
#         JOBS=1 ... for one worker process (default 2); TRIALS=N for N trials
# Rerunning into the same OUTDIR continues the study (--resume) up to the number of trials.
set -euo pipefail

out=${1:-y2o3-bbo}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data="$here/xtal_cli/data/examples/Y2O3"
if [[ "${QUICK:-0}" != 0 ]]; then default_trials=4; else default_trials=200; fi
trials=${TRIALS:-$default_trials}
resume=()
[[ -e "$out/study.db" ]] && resume=(--resume)
mkdir -p "$out"

xtal refine-bbo "$data/Y2O3.xy" --cif "$data/Y2O3.cif" --instrument "$data/INST_XRY.PRM" \
    --range 15 150 --trials "$trials" --seed 1024 -j "${JOBS:-2}" -q "${resume[@]}" \
    --format json -o "$out" | tee "$out/summary.json"
echo "wrote $out/: best.cif, report.json, rietveld.png, summary.json ..." >&2
