"""The two Rietveld engines on the same model and the same configuration (issue 18, item 2).

For Y2O3 and DSMO on the published ranges: the native engine refines the best configuration
of the ``refine_bbo`` bench's seed-1024 study (bench/results/refine_bbo.json, written by
``make bench`` just before this one); GSAS-II then computes that refined model without
refining (:mod:`xtal_cli.refine.crosscheck`) and the two Rwp values and curves are compared;
finally GSAS-II refines the same configuration itself (the published scripted sequence), with
its background derivatives corrected (the engine's default) and as installed, and every Rwp
is printed with the per-step ones. Needs GSAS-II.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, require_shared, write_result  # noqa: E402

from xtal_cli.refine import bbo, crosscheck, gsas2  # noqa: E402
from xtal_cli.refine.engine import RefinementFailed  # noqa: E402

CASES = {
    "Y2O3": ("Y2O3/Y2O3.csv", "Y2O3/Y2O3.cif", (15.0, 150.0)),
    "DSMO": ("DSMO/dsmo.csv", "DSMO/dsmo.cif", (15.0, 100.0)),
}


def main() -> None:
    if not gsas2.available():  # optional engine: say so and leave the last results alone
        print(json.dumps({"benchmark": "refine_crosscheck", "skipped": "GSAS-II not importable"}))
        return
    data = require_shared() / "measured" / "bbo-rietveld"
    bench = RESULTS / "refine_bbo.json"
    if not bench.is_file():
        sys.exit(f"bench refine_crosscheck: {bench} missing; run bench_refine_bbo.py first")
    native_bench = json.loads(bench.read_text())["results"]
    results = {}
    for name, (pattern, cif, limits) in CASES.items():
        params = native_bench[f"{name}/native"]["best_configuration"]
        problem = bbo.Problem(
            str(data / pattern), str(data / cif), str(data / name / "INST_XRY.PRM"), limits
        )
        space = bbo.Space()
        native = bbo.Objective(problem, space)
        full = native.full_range()
        cfg = bbo.suggest(optuna.trial.FixedTrial(params), space, full)
        model, result = native.run(cfg)
        check = crosscheck.evaluate_in_gsas2(model, problem)
        refined = {
            key: gsas2_refined(problem, cfg, full, space, exact)
            for key, exact in (("gsas2", True), ("gsas2_as_installed", False))
        }
        results[name] = {
            "model_in_both": check.summary(),
            "same_configuration_refined": {
                "native_rwp": result.rwp,
                "native_seconds": result.seconds,
                "native_negative_uiso": result.negative_uiso,
                "native_steps": [round(s["rwp"], 3) for s in result.stages],
                **{f"{k}_{f}": v for k, r in refined.items() for f, v in r.items()},
            },
            "configuration": params,
        }
    write_result("refine_crosscheck", {"gsas2_version": gsas2.version(), "results": results})


def gsas2_refined(problem, cfg, full, space, exact: bool) -> dict:
    """GSAS-II's refinement of *cfg*: Rwp, seconds, negative Uiso, per-step Rwp (or why not)."""
    try:
        r = gsas2.refine_gsas2(problem, cfg, full, space, exact_derivatives=exact)
    except RefinementFailed as exc:
        return {"failure": str(exc)}
    return {
        "rwp": r.rwp,
        "seconds": r.seconds,
        "negative_uiso": r.negative_uiso,
        "fixed_uiso": r.fixed_uiso,
        "steps": [round(s["rwp"], 3) for s in r.stages],
        "exact_derivatives": list(r.corrected),
    }


if __name__ == "__main__":
    main()
