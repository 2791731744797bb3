"""refine-bbo on the published BBO-Rietveld data: Y2O3 and DSMO, 200 trials, fixed seeds.

Reports best Rwp/GOF, the trial that first reached the published references (BBO GSAS-II 6.610 %
on Y2O3; expert 9.775 % and BBO GSAS-II 9.211 % on DSMO), wall time and seconds per refinement;
GSAS-II in the same run with ``BBO_ENGINES=native,gsas2`` (when it is importable).

With two workers sharing one study, what the TPE sampler has seen at each suggestion depends on
timing, so the same seed gives a different study on every run; the study is therefore repeated
(``BBO_REPEATS``, default 3) and the best Rwp reported over the repeats (min / median / max). The
detailed fields are those of the first repeat. With ``BBO_WORKERS=1`` the study is deterministic.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, require_shared, write_result  # noqa: E402

import xtal_cli as xtal  # noqa: E402
from xtal_cli.refine.gsas2 import available  # noqa: E402

CASES = {
    # name: (pattern, cif, full range used by the published notebooks, seed)
    "Y2O3": ("Y2O3/Y2O3.csv", "Y2O3/Y2O3.cif", (15.0, 150.0), 1024),
    "DSMO": ("DSMO/dsmo.csv", "DSMO/dsmo.cif", (15.0, 100.0), 1024),
}
TARGETS = {"Y2O3": 6.61, "DSMO": 9.21}


def main() -> None:
    data = require_shared() / "measured" / "bbo-rietveld"
    trials = int(os.environ.get("BBO_TRIALS", "200"))
    workers = int(os.environ.get("BBO_WORKERS", "2"))
    repeats = int(os.environ.get("BBO_REPEATS", "3"))
    only = os.environ.get("BBO_CASES", "Y2O3,DSMO").split(",")
    # GSAS-II takes ~8 s a refinement (native ~0.5 s): opt in with BBO_ENGINES=native,gsas2
    engines = os.environ.get("BBO_ENGINES", "native").split(",")
    if "gsas2" in engines and not available():
        print("bench: GSAS-II is not importable; running the native engine only", file=sys.stderr)
        engines = [e for e in engines if e != "gsas2"]
    results = {}
    for name in only:
        pattern, cif, limits, seed = CASES[name]
        folder = data / Path(pattern).parent
        for engine in engines:
            runs = [
                run_case(data / pattern, data / cif, folder / "INST_XRY.PRM", limits, seed,
                         trials, workers, engine, WORK / f"refine_bbo_{name}_{engine}")
                for _ in range(repeats)
            ]  # fmt: skip
            first = runs[0]
            rwps = sorted(r["best_rwp"] for r in runs)
            results[f"{name}/{engine}"] = {
                **first,
                "target_rwp": TARGETS[name],
                "meets_target": first["best_rwp"] <= TARGETS[name],
                "workers": workers,
                "repeats": {
                    "best_rwp": [r["best_rwp"] for r in runs],
                    "first_trial_below_reference": [r["first_trial_below_reference"] for r in runs],
                    "wall_seconds": [r["wall_seconds"] for r in runs],
                    "best_rwp_min": rwps[0],
                    "best_rwp_median": rwps[len(rwps) // 2],
                    "best_rwp_max": rwps[-1],
                    "all_meet_target": all(v <= TARGETS[name] for v in rwps),
                },
            }
    write_result("refine_bbo", {"trials": trials, "repeats": repeats, "results": results})


def run_case(pattern, cif, instrument, limits, seed, trials, workers, engine, out) -> dict:
    """One study from scratch through the public API; the fields the benchmark reports."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.monotonic()
    doc = xtal.refine_bbo(pattern, cif, instrument, out, trials=trials, seed=seed, jobs=workers,
                          two_theta_range=limits, engine=engine)  # fmt: skip
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
