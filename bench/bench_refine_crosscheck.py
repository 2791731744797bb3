"""The two Rietveld engines on the same model and the same configuration (issue 18, item 2).

For Y2O3 and DSMO on the published ranges: the native engine refines the best configuration
of the ``refine_bbo`` bench's seed-1024 study (run by ``make bench`` just before this one);
GSAS-II then computes that refined model without refining (:mod:`xtal_cli.refine.crosscheck`)
and the two Rwp values and curves are compared; finally GSAS-II refines the same configuration
itself (the published scripted sequence) and both Rwp values are printed. Needs GSAS-II.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, require_shared, write_result  # noqa: E402

from xtal_cli.refine import bbo, crosscheck, gsas2  # noqa: E402

CASES = {
    "Y2O3": ("Y2O3/Y2O3.csv", "Y2O3/Y2O3.cif", (15.0, 150.0)),
    "DSMO": ("DSMO/dsmo.csv", "DSMO/dsmo.cif", (15.0, 100.0)),
}


def main() -> None:
    if not gsas2.available():  # optional engine: say so and leave the last results alone
        print(json.dumps({"benchmark": "refine_crosscheck", "skipped": "GSAS-II not importable"}))
        return
    data = require_shared() / "measured" / "bbo-rietveld"
    results = {}
    for name, (pattern, cif, limits) in CASES.items():
        study = WORK / f"refine_bbo_{name}_native_seed1024" / "report.json"
        if not study.is_file():
            sys.exit(f"bench refine_crosscheck: {study} missing; run bench_refine_bbo.py first")
        params = json.loads(study.read_text())["best"]["configuration"]
        problem = bbo.Problem(
            str(data / pattern), str(data / cif), str(data / name / "INST_XRY.PRM"), limits
        )
        space = bbo.Space()
        native = bbo.Objective(problem, space)
        cfg = bbo.suggest(optuna.trial.FixedTrial(params), space, native.full_range())
        model, result = native.run(cfg)
        check = crosscheck.evaluate_in_gsas2(model, problem)
        refined = bbo.Objective(problem, space, engine="gsas2").run(cfg)[1]
        results[name] = {
            "model_in_both": check.summary(),
            "same_configuration_refined": {
                "native_rwp": result.rwp,
                "gsas2_rwp": refined.rwp,
                "native_seconds": result.seconds,
                "gsas2_seconds": refined.seconds,
                "native_negative_uiso": result.negative_uiso,
                "gsas2_negative_uiso": refined.negative_uiso,
            },
            "configuration": params,
        }
    write_result("refine_crosscheck", {"gsas2_version": gsas2.version(), "results": results})


if __name__ == "__main__":
    main()
