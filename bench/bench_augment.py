"""bench/augment: augmented profiles from the fused kernel against the numpy reference (issue 17).

``xtal simulate --augment`` renders one augmented profile per structure; the render is now one
compiled kernel (:mod:`xtal_cli.xrd._augment_kernel`) where it was a numpy operation per effect,
kept as :func:`~xtal_cli.xrd.augment.augmented_profile_reference`. On a fixed sample of
../shared/data/mp_structures.csv.gz (``df.sample(n, random_state=6)``), CIFs are parsed and sticks
computed once (fast engine, Cu Kα1, 0–90°; not timed), one draw is made per structure as
``xtal simulate`` makes it (``default_rng([seed, index])``), and each pattern is rendered by both,
one after the other (order alternating), each call timed alone, on xtal simulate's default grid
(2θ 0.02–90°, step 0.02). Reported: ms per pattern (median, mean, p90) and patterns/s on one core,
with the drawn Poisson noise and without it, the ratios, the largest |Δ| between the two (float32
profiles of maximum 1), how many profiles are identical, the medians by number of reflections,
and the reflections per structure.

Usage: python bench/bench_augment.py [--n 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_simulate import parse  # noqa: E402
from common import require_shared, write_result  # noqa: E402

WAVELENGTH = 1.54056  # Cu Kα1, the xtal simulate default
SAMPLE_SEED = 6  # the structures (as bench_simulate samples them)
DRAW_SEED = 17  # the draws: default_rng([DRAW_SEED, index]), as xtal simulate --seed makes them


def _inputs(n: int) -> tuple[list, dict]:
    """(sticks, lattice, draw) per structure, and what could not be used."""
    import pandas as pd

    from xtal_cli.xrd.augment import draw_augmentation
    from xtal_cli.xrd.sticks import compute_sticks

    df = pd.read_csv(require_shared() / "mp_structures.csv.gz")
    df = df.sample(n=min(n, len(df)), random_state=SAMPLE_SEED)
    cases, skipped = [], {"cif_parse": 0, "sticks": 0, "no_reflections": 0}
    for index, s in enumerate(parse(list(df["cif"]))):
        if isinstance(s, Exception):
            skipped["cif_parse"] += 1
            continue
        try:
            sticks = compute_sticks(s, WAVELENGTH, (0.0, 90.0))
        except Exception:
            skipped["sticks"] += 1
            continue
        if len(sticks.two_theta) == 0:  # the reference cannot render these
            skipped["no_reflections"] += 1
            continue
        rng = np.random.default_rng([DRAW_SEED, index])
        cases.append((sticks, s.lattice, draw_augmentation(rng, wavelength=WAVELENGTH)))
    return cases, skipped


def _time_both(grid, cases, noise: bool) -> dict:
    """Per-pattern seconds of both renders on the same draws, and the profiles' differences."""
    from xtal_cli.xrd.augment import augmented_profile, augmented_profile_reference

    fns = {"reference": augmented_profile_reference, "compiled": augmented_profile}
    times = {name: np.empty(len(cases)) for name in fns}
    max_abs, identical = 0.0, 0
    for k, (sticks, lattice, params) in enumerate(cases):
        params = params if noise else {**params, "counts": None}
        out = {}
        for name in list(fns)[:: 1 if k % 2 else -1]:
            t0 = time.perf_counter()
            out[name] = fns[name](sticks, grid, params, WAVELENGTH, lattice=lattice)
            times[name][k] = time.perf_counter() - t0
        diff = np.abs(out["compiled"].astype(float) - out["reference"])
        max_abs = max(max_abs, float(diff.max()))
        identical += int(np.array_equal(out["compiled"], out["reference"]))
    result = {name: _stats(t) for name, t in times.items()}
    result["ratio_mean"] = round(float(times["reference"].mean() / times["compiled"].mean()), 2)
    result["ratio_median"] = round(
        float(np.median(times["reference"]) / np.median(times["compiled"])), 2
    )
    result["max_abs_diff"] = max_abs
    result["identical_profiles"] = identical
    n = np.array([len(st.two_theta) for st, _, _ in cases])
    result["median_ms_by_reflections"] = {
        f"{lo}-{hi}": {
            "structures": int(sel.sum()),
            **{name: round(float(1e3 * np.median(t[sel])), 4) for name, t in times.items()},
        }
        for lo, hi in ((1, 50), (51, 200), (201, 1000), (1001, 10**6))
        if (sel := (n >= lo) & (n <= hi)).any()
    }
    return result


def _stats(seconds: np.ndarray) -> dict:
    ms = 1e3 * seconds
    return {
        "median_ms": round(float(np.median(ms)), 4),
        "mean_ms": round(float(ms.mean()), 4),
        "p90_ms": round(float(np.percentile(ms, 90)), 4),
        "patterns_per_s": round(float(1.0 / seconds.mean()), 1),
    }


def _distribution(values) -> dict:
    v = np.asarray(values, dtype=float)
    p10, p50, p90 = (round(float(q), 1) for q in np.percentile(v, [10, 50, 90]))
    mean = round(float(v.mean()), 1)
    return {"min": int(v.min()), "p10": p10, "median": p50, "mean": mean, "p90": p90,
            "max": int(v.max())}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="structures sampled (default 2,000)")
    opts = ap.parse_args()
    if opts.n < 1:
        ap.error("--n must be at least 1")

    from xtal_cli.xrd.augment import augmented_profile
    from xtal_cli.xrd.profile import ProfileSettings

    grid = ProfileSettings(two_theta_min=0.02, two_theta_max=90.0, step=0.02).grid()
    cases, skipped = _inputs(opts.n)
    if not cases:
        sys.exit("bench: no structure could be used")
    sticks, lattice, params = cases[0]
    t0 = time.perf_counter()
    augmented_profile(sticks, grid, params, WAVELENGTH, lattice=lattice)  # numba cache or JIT
    first_call_s = time.perf_counter() - t0
    draws = [p for _, _, p in cases]
    n_sticks = [len(st.two_theta) for st, _, _ in cases]
    # lines drawn: reflections and impurity lines, twice with Kα2 (at Cu, 2θ ≤ 90°, every
    # reflection has its Kα2 line)
    n_lines = [
        (n + len(p["impurity_two_theta"])) * (2 if p["ka2"] else 1) for n, p in zip(n_sticks, draws)
    ]
    result = {
        "structures": len(cases),
        "skipped": skipped,
        "grid_points": int(grid.size),
        "wavelength": WAVELENGTH,
        "first_call_s": round(first_call_s, 3),
        "with_noise": _time_both(grid, cases, noise=True),
        "without_noise": _time_both(grid, cases, noise=False),
        "reflections_per_structure": _distribution(n_sticks),
        "lines_drawn_per_pattern": _distribution(n_lines),
        "draws": {
            "ka2": sum(p["ka2"] for p in draws),
            "texture": sum(p["texture_r"] != 1.0 for p in draws),
            "impurities": sum(bool(p["impurity_two_theta"]) for p in draws),
            "window": sum(p["window"] is not None for p in draws),
            "synchrotron": sum(p["instrument"] == "synchrotron" for p in draws),
        },
    }
    write_result("augment", result)


if __name__ == "__main__":
    main()
