"""refine-bbo on the published BBO-Rietveld data: Y2O3 and DSMO, 200 trials, fixed seeds.

Reports best Rwp/GOF, the trial that first reached the published references (BBO GSAS-II 6.610 %
on Y2O3; expert 9.775 % and BBO GSAS-II 9.211 % on DSMO), wall time and seconds per refinement;
GSAS-II in the same run with ``BBO_ENGINES=native,gsas2`` (when it is importable).

Each case runs one study per seed (``BBO_SEEDS``, default 1024 — the published one — and 1-4)
and reports the best Rwp per seed, their median and the worst; the detailed fields are those of
the first seed. The two workers run ``--deterministic`` rounds (``BBO_DETERMINISTIC=0`` for the
faster shared-storage mode, where a seed does not fix the study), so every figure reproduces.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, require_shared, write_result  # noqa: E402

import xtal_cli as xtal  # noqa: E402
from xtal_cli.refine.gsas2 import available  # noqa: E402

CASES = {
    # name: (pattern, cif, full range used by the published notebooks)
    "Y2O3": ("Y2O3/Y2O3.csv", "Y2O3/Y2O3.cif", (15.0, 150.0)),
    "DSMO": ("DSMO/dsmo.csv", "DSMO/dsmo.cif", (15.0, 100.0)),
}
TARGETS = {"Y2O3": 6.61, "DSMO": 9.21}


def main() -> None:
    data = require_shared() / "measured" / "bbo-rietveld"
    trials = int(os.environ.get("BBO_TRIALS", "200"))
    workers = int(os.environ.get("BBO_WORKERS", "2"))
    seeds = [int(v) for v in os.environ.get("BBO_SEEDS", "1024,1,2,3,4").split(",")]
    deterministic = os.environ.get("BBO_DETERMINISTIC", "1") != "0"
    only = os.environ.get("BBO_CASES", "Y2O3,DSMO").split(",")
    # GSAS-II takes ~8 s a refinement (native ~0.5 s): opt in with BBO_ENGINES=native,gsas2
    engines = os.environ.get("BBO_ENGINES", "native").split(",")
    if "gsas2" in engines and not available():
        print("bench: GSAS-II is not importable; running the native engine only", file=sys.stderr)
        engines = [e for e in engines if e != "gsas2"]
    results = {}
    for name in only:
        pattern, cif, limits = CASES[name]
        folder = data / Path(pattern).parent
        for engine in engines:
            runs = [
                run_case(data / pattern, data / cif, folder / "INST_XRY.PRM", limits, seed,
                         trials, workers, engine, WORK / f"refine_bbo_{name}_{engine}",
                         deterministic)
                for seed in seeds
            ]  # fmt: skip
            first = runs[0]
            rwps = sorted(r["best_rwp"] for r in runs)
            results[f"{name}/{engine}"] = {
                **first,
                "seed": seeds[0],
                "target_rwp": TARGETS[name],
                "meets_target": first["best_rwp"] <= TARGETS[name],
                "workers": workers,
                "deterministic": deterministic,
                "seeds": {
                    "seed": seeds,
                    "best_rwp": [r["best_rwp"] for r in runs],
                    "first_trial_below_reference": [r["first_trial_below_reference"] for r in runs],
                    "negative_uiso": [r["negative_uiso"] for r in runs],
                    "wall_seconds": [r["wall_seconds"] for r in runs],
                    "best_rwp_median": float(np.median(rwps)),
                    "best_rwp_worst": rwps[-1],
                    "best_rwp_best": rwps[0],
                    "all_meet_target": all(v <= TARGETS[name] for v in rwps),
                },
            }
    write_result("refine_bbo", {"trials": trials, "seeds": seeds, "results": results})


def run_case(
    pattern, cif, instrument, limits, seed, trials, workers, engine, out, deterministic
) -> dict:
    """One study from scratch through the public API; the fields the benchmark reports."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.monotonic()
    doc = xtal.refine_bbo(pattern, cif, instrument, out, trials=trials, seed=seed, jobs=workers,
                          two_theta_range=limits, engine=engine,
                          deterministic=deterministic)  # fmt: skip
    wall = time.monotonic() - t0
    best, study = doc["best"], doc["study"]
    return {
        "best_rwp": best["rwp"],
        "best_gof": best["gof"],
        "best_rp": best["rp"],
        "trials": study["trials"],
        "failed": study["failed"],
        "negative_uiso": study["negative_uiso"],
        "first_trial_below_reference": study["first_trial_below_reference"],
        "wall_seconds": wall,
        "seconds_per_refinement": study["seconds_per_refinement"],
        "cell": best["cell"],
        "lattice_change_percent": doc["lattice_change_percent"],
        "min_uiso": min(s["uiso"] for s in best["sites"]),
        "best_configuration": best["configuration"],
    }


if __name__ == "__main__":
    main()
