"""identify-phases on real multiphase scans: which phases, how much, how fast.

* A-Lab precursor mixtures (shared ``measured/alab-mixtures``): 10 weighed mixtures of 2–3
  commercial precursors, each scanned for 2 and 8 minutes. Candidates: every Materials Project
  polymorph of the ten precursor formulas in the shared MP set plus the CIFs written from
  published structures in ``examples/data/phases/`` (``bench/alab_candidates.py``), the same set
  for every scan. Scored: the top hypothesis' formulas equal to the labelled ones; mean
  absolute weight-fraction error over all labelled phases of all scans (a phase not found
  counts as 0 wt %); wall seconds per scan (one process, candidates loaded once).
* xrd-autoanalyzer (shared ``measured/xrd-autoanalyzer``): 8 multiphase and 10 single-phase
  Li–Mn–Ti–O–F scans with the 144 reference CIFs as candidates. Scored: every labelled phase
  found (multiphase); no phase reported that is not labelled (single-phase).

Phases are compared by reduced formula (the labels do not name polymorphs). Prints JSON and
keeps it in bench/results/identify.json.
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alab_candidates import alab_candidates, alab_scans  # noqa: E402
from common import WORK, require_shared, write_result  # noqa: E402


def _formula(text: str) -> str:
    from pymatgen.core import Composition

    return Composition(text).reduced_formula


def _run(scan_path: Path, cands, cache, wavelength=None) -> tuple:
    from xtal_cli.identify.search import identify
    from xtal_cli.io.scans import read_scan

    t0 = time.perf_counter()
    scan = read_scan(scan_path, wavelength=wavelength)
    if wavelength is not None and scan.wavelength2 is None:
        scan.wavelength2, scan.ka2_ratio = 1.544426, 0.5  # Cu Kα lab data without a header
    res = identify(scan, cands, sticks_cache=cache)
    return res, time.perf_counter() - t0


def bench_alab(shared: Path) -> dict:
    from xtal_cli.identify.candidates import load_candidates

    t0 = time.perf_counter()
    paths = alab_candidates(shared, WORK / "alab_candidates")
    cands = load_candidates([str(p) for p in paths])
    load_s = time.perf_counter() - t0
    cache: dict = {}
    rows, errors, walls = [], [], []
    for item in alab_scans(shared):
        res, wall = _run(item["scan"], cands, cache)
        truth = {_formula(p): w for p, w in zip(item["phases"], item["weight_fractions"])}
        got: dict[str, float] = {}
        for p in res.best.phases if res.best else []:
            got[p.formula] = got.get(p.formula, 0.0) + p.weight_fraction  # polymorphs summed
        err = {f: round(abs(got.get(f, 0.0) - w), 4) for f, w in truth.items()}
        errors.extend(err.values())
        walls.append(wall)
        rows.append(
            {
                "scan": item["scan"].name,
                "duration": item["duration"],
                "truth": truth,
                "found": {f: round(w, 4) for f, w in got.items()},
                "phases": [p.name for p in res.best.phases] if res.best else [],
                "exact": sorted(got) == sorted(truth),
                "abs_error": err,
                "rwp": round(res.best.rwp, 3) if res.best else None,
                "seconds": round(wall, 2),
            }
        )
        print(f"{item['scan'].name}: {rows[-1]['exact']} {rows[-1]['found']}", file=sys.stderr)
    return {
        "n_scans": len(rows),
        "n_candidates": len(cands),
        "exact_phase_set": sum(r["exact"] for r in rows),
        "exact_2min": sum(r["exact"] for r in rows if r["duration"] == "2min"),
        "exact_8min": sum(r["exact"] for r in rows if r["duration"] == "8min"),
        "weight_fraction_mae": round(statistics.fmean(errors), 4),
        "weight_fraction_max_error": round(max(errors), 4),
        "median_seconds": round(statistics.median(walls), 2),
        "max_seconds": round(max(walls), 2),
        "candidate_load_seconds": round(load_s, 2),
        "per_scan": rows,
    }


def bench_autoanalyzer(shared: Path) -> dict:
    from xtal_cli.identify.candidates import load_candidates

    root = shared / "measured" / "xrd-autoanalyzer"
    cands = load_candidates([str(root / "References")])
    cache: dict = {}
    rows = []
    with open(root / "labels_from_filenames.csv") as fh:
        labels = [r for r in csv.DictReader(fh) if r["file"].startswith("Spectra/")]
    for row in labels:
        res, wall = _run(root / row["file"], cands, cache, wavelength=1.5406)
        truth = sorted({_formula(p) for p in row["phases"].split(";")})
        got = sorted(set(res.best.formulas)) if res.best else []
        rows.append(
            {
                "scan": Path(row["file"]).name,
                "n_phases": int(row["n_phases"]),
                "truth": truth,
                "found": got,
                "phases": [
                    (p.name, round(p.weight_fraction, 3))
                    for p in (res.best.phases if res.best else [])
                ],
                "all_found": set(truth) <= set(got),
                "extra": sorted(set(got) - set(truth)),
                "rwp": round(res.best.rwp, 3) if res.best else None,
                "seconds": round(wall, 2),
            }
        )
        print(f"{rows[-1]['scan']}: {got}", file=sys.stderr)
    multi = [r for r in rows if r["n_phases"] > 1]
    single = [r for r in rows if r["n_phases"] == 1]
    return {
        "n_candidates": len(cands),
        "multiphase_all_found": sum(r["all_found"] for r in multi),
        "n_multiphase": len(multi),
        "single_phase_no_extra": sum(not r["extra"] for r in single),
        "single_phase_right": sum(r["all_found"] and not r["extra"] for r in single),
        "n_single_phase": len(single),
        "median_seconds": round(statistics.median(r["seconds"] for r in rows), 2),
        "per_scan": rows,
    }


def _one_thread(bench, shared):
    """*bench* with BLAS held to one thread: two processes on two cores, no oversubscription."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return bench(shared)


def main() -> None:
    from concurrent.futures import ProcessPoolExecutor

    shared = require_shared()
    # the two sets in two processes (each one scan at a time, so per-scan times stay serial)
    with ProcessPoolExecutor(2) as pool:
        alab = pool.submit(_one_thread, bench_alab, shared)
        auto = pool.submit(_one_thread, bench_autoanalyzer, shared)
        result = {"alab_precursor_mixtures": alab.result(), "xrd_autoanalyzer": auto.result()}
    write_result("identify", result)


if __name__ == "__main__":
    main()
